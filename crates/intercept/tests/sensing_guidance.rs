//! Guidance laws and pipeline: PN zero miss in a kinematic harness, the linear
//! homing loop, OGL against autopilot lag, and the pipeline rules.

use hlynr_intercept::Vec3;
use hlynr_intercept::guidance::{
    Guidance, GuidanceConfig, GuidanceInput, GuidanceLaw, GuidanceMode, InterceptorKinematics,
    TGoForm, TargetKinematics, VehicleKind, ZemPn, geometry,
};

const G: Vec3 = Vec3::new(0.0, 0.0, -9.80665);

/// Rotates `v` about the unit axis `k` by `angle` (Rodrigues).
fn rotate(v: Vec3, k: Vec3, angle: f64) -> Vec3 {
    let (s, c) = angle.sin_cos();
    v * c + k.cross(v) * s + k * (k.dot(v) * (1.0 - c))
}

/// Collision-course direction for an interceptor of speed `vm` against a
/// constant-velocity target at relative position `r0` with velocity `vt`.
fn collision_course(r0: Vec3, vt: Vec3, vm: f64) -> Vec3 {
    // |r0 + vt t| = vm t  =>  (vt.vt - vm^2) t^2 + 2 r0.vt t + r0.r0 = 0.
    let a = vt.norm_sq() - vm * vm;
    let b = 2.0 * r0.dot(vt);
    let c = r0.norm_sq();
    let disc = b * b - 4.0 * a * c;
    let t = (-b - disc.sqrt()) / (2.0 * a);
    let t = if t > 0.0 {
        t
    } else {
        (-b + disc.sqrt()) / (2.0 * a)
    };
    ((r0 + vt * t) / (vm * t)).unit_or_zero()
}

/// Point-mass engagement with a first-order lag `tau` (0: none): returns the miss
/// distance (minimum intra-step closest approach).
fn engage(cfg: &GuidanceConfig, heading_error_deg: f64, tau: f64, dt: f64) -> f64 {
    let mut guidance = Guidance::new(cfg).unwrap();
    let mut rm = Vec3::new(0.0, 0.0, 1000.0);
    let mut rt = Vec3::new(1500.0, 5000.0, 2000.0);
    let vt = Vec3::new(-220.0, -80.0, 0.0);
    let vm_speed = 700.0;
    let course = collision_course(rt - rm, vt, vm_speed);
    let axis = course.cross(Vec3::new(0.3, -0.2, 1.0)).unit_or_zero();
    let mut vm = rotate(course, axis, heading_error_deg.to_radians()) * vm_speed;
    let mut a_l = Vec3::ZERO;
    let mut miss = f64::INFINITY;
    let mut closing_seen = false;
    for _ in 0..(30.0 / dt) as usize {
        let input = GuidanceInput {
            time_s: 0.0,
            interceptor: InterceptorKinematics {
                position_m: rm,
                velocity_mps: vm,
                body_axis: Vec3::ZERO,
                lateral_accel_mps2: a_l,
                a_max_mps2: 1e6,
                autopilot_tau_s: tau,
                kind: VehicleKind::Aero,
            },
            target: TargetKinematics {
                position_m: rt,
                velocity_mps: vt,
                ..Default::default()
            },
            gravity_mps2: G,
            boost_phase: false,
            pip_m: None,
        };
        let cmd = guidance.command(&input).accel_mps2;
        let xb = vm.unit_or_zero();
        a_l = if tau > 0.0 {
            a_l + (cmd - a_l) * (dt / tau)
        } else {
            cmd
        };
        a_l = a_l.perp_to(xb);
        let r0 = rt - rm;
        let acc = a_l + G;
        rm += vm * dt + acc * (0.5 * dt * dt);
        vm += acc * dt;
        rt += vt * dt;
        let r1 = rt - rm;
        let w = (r1 - r0) / dt;
        let s = if w.norm_sq() < 1e-12 {
            0.0
        } else {
            (-r0.dot(w) / w.norm_sq()).clamp(0.0, dt)
        };
        miss = miss.min((r0 + w * s).norm());
        let rdot = r1.dot(vt - vm);
        if rdot < 0.0 {
            closing_seen = true;
        } else if closing_seen {
            break;
        }
    }
    miss
}

#[test]
fn pn_family_has_zero_miss_against_a_constant_velocity_target() {
    for law in ["zem-pn", "tpn", "ppn"] {
        for n in [3.0, 4.0, 5.0] {
            for he in [0.0, 10.0, 20.0] {
                let cfg = GuidanceConfig {
                    law: law.into(),
                    nav_gain: Some(n),
                    ..Default::default()
                };
                let miss = engage(&cfg, he, 0.0, 2e-4);
                assert!(miss < 0.1, "{law} N={n} HE={he}: miss {miss} m");
            }
        }
    }
}

#[test]
fn zero_action_misses_with_heading_error() {
    let zero = engage(
        &GuidanceConfig {
            law: "zero".into(),
            ..Default::default()
        },
        10.0,
        0.0,
        1e-3,
    );
    assert!(
        zero > 100.0,
        "doing nothing with 10 deg heading error must miss: {zero}"
    );
}

#[test]
fn ogl_compensates_autopilot_lag() {
    // With a 0.3 s lag and 20 deg heading error, OGL's lag-compensated ZEM keeps
    // the miss small; plain ZEM-PN at N = 3 suffers.
    let tau = 0.3;
    let ogl = engage(
        &GuidanceConfig {
            law: "ogl".into(),
            ogl_gain_cap: 50.0,
            ..Default::default()
        },
        20.0,
        tau,
        2e-4,
    );
    let pn = engage(
        &GuidanceConfig {
            law: "zem-pn".into(),
            nav_gain: Some(3.0),
            ..Default::default()
        },
        20.0,
        tau,
        2e-4,
    );
    assert!(ogl < 0.5, "OGL miss with lag {ogl}");
    assert!(pn > ogl, "PN {pn} vs OGL {ogl}");
}

/// Planar linear homing loop: relative lateral position `y`, constant closing
/// speed, zero lag. The command is the ZEM-PN law (t_go = R/V_c) evaluated on the
/// 3D geometry with the interceptor on the x axis.
fn linear_loop(n: f64, t_f: f64, y_dot0: f64, n_t: f64, probe: &mut dyn FnMut(f64, f64, f64)) {
    let vc = 1000.0;
    let law = ZemPn { nav_gain: n };
    let dt = 1e-5;
    let (mut y, mut ydot) = (0.0, y_dot0);
    let steps = (t_f / dt).round() as usize;
    for k in 0..steps {
        let t = k as f64 * dt;
        let t_go = t_f - t;
        let input = GuidanceInput {
            interceptor: InterceptorKinematics {
                velocity_mps: Vec3::new(vc, 0.0, 0.0),
                a_max_mps2: 1e9,
                ..Default::default()
            },
            target: TargetKinematics {
                position_m: Vec3::new(vc * t_go, y, 0.0),
                velocity_mps: Vec3::new(0.0, ydot, 0.0),
                ..Default::default()
            },
            gravity_mps2: Vec3::ZERO,
            ..Default::default()
        };
        let g = geometry(&input, TGoForm::Range);
        let n_c = law.accel(&g, &input).y;
        probe(t, n_c, y + ydot * t_go);
        let a = n_t - n_c;
        y += ydot * dt + 0.5 * a * dt * dt;
        ydot += a * dt;
    }
}

#[test]
fn linear_homing_loop_matches_closed_forms() {
    let t_f = 10.0;
    let vm = 1000.0;
    let he = 1e-3;
    for n in [3.0, 4.0, 5.0] {
        // Heading error: n_c(t) = -(V_M HE N/t_f)(1 - t/t_f)^(N-2).
        let mut at_half = None;
        let mut zem_end = None;
        linear_loop(n, t_f, -vm * he, 0.0, &mut |t, n_c, zem| {
            if at_half.is_none() && t >= 0.5 * t_f {
                at_half = Some(n_c);
            }
            if zem_end.is_none() && t >= t_f - 0.01 {
                zem_end = Some(zem);
            }
        });
        let want = -(vm * he * n / t_f) * 0.5f64.powf(n - 2.0);
        let got = at_half.unwrap();
        assert!(
            (got / want - 1.0).abs() < 0.01,
            "N={n}: HE command {got}, want {want}"
        );
        assert!(
            zem_end.unwrap().abs() < 0.01,
            "ZEM at t_go = 0.01 s: {:?}",
            zem_end
        );
        // Step target maneuver: n_c/n_T at 0.99 t_f = (N/(N-2))(1 - 0.01^(N-2)).
        let n_t = 0.05;
        let mut ratio = None;
        linear_loop(n, t_f, 0.0, n_t, &mut |t, n_c, _| {
            if ratio.is_none() && t >= 0.99 * t_f {
                ratio = Some(n_c / n_t);
            }
        });
        let want = (n / (n - 2.0)) * (1.0 - 0.01f64.powf(n - 2.0));
        let got = ratio.unwrap();
        assert!(
            (got / want - 1.0).abs() < 0.01,
            "N={n}: step ratio {got}, want {want}"
        );
    }
}

fn input_with(rm: Vec3, vm: Vec3, rt: Vec3, vt: Vec3, a_max: f64) -> GuidanceInput {
    GuidanceInput {
        time_s: 0.0,
        interceptor: InterceptorKinematics {
            position_m: rm,
            velocity_mps: vm,
            a_max_mps2: a_max,
            autopilot_tau_s: 0.15,
            ..Default::default()
        },
        target: TargetKinematics {
            position_m: rt,
            velocity_mps: vt,
            ..Default::default()
        },
        gravity_mps2: G,
        boost_phase: false,
        pip_m: None,
    }
}

#[test]
fn pipeline_projects_clips_and_compensates_gravity_once() {
    // Level collision course: zero LOS rate. PPN then commands only the gravity
    // compensation, perpendicular to the velocity and exactly -g_perp.
    let rm = Vec3::new(0.0, 0.0, 1000.0);
    let vm = Vec3::new(0.0, 600.0, 0.0);
    let rt = Vec3::new(0.0, 6000.0, 1000.0);
    let vt = Vec3::new(0.0, -200.0, 0.0);
    let mut ppn = Guidance::new(&GuidanceConfig {
        law: "ppn".into(),
        ..Default::default()
    })
    .unwrap();
    let c = ppn.command(&input_with(rm, vm, rt, vt, 400.0));
    assert_eq!(c.mode, GuidanceMode::Law);
    assert!(
        (c.accel_mps2 - Vec3::new(0.0, 0.0, 9.80665)).norm() < 1e-9,
        "{:?}",
        c.accel_mps2
    );
    // Without compensation: zero.
    let mut raw = Guidance::new(&GuidanceConfig {
        law: "ppn".into(),
        gravity_compensation: false,
        ..Default::default()
    })
    .unwrap();
    assert!(
        raw.command(&input_with(rm, vm, rt, vt, 400.0))
            .accel_mps2
            .norm()
            < 1e-12
    );
    // ZEM-PN carries gravity in its ZEM (a_rel = -g): N/2 g, not N/2 g + g.
    let mut zem = Guidance::new(&GuidanceConfig::default()).unwrap();
    let a = zem.command(&input_with(rm, vm, rt, vt, 400.0)).accel_mps2;
    assert!((a.z - 2.0 * 9.80665).abs() < 1e-6, "{a:?}");
    // Aero projection and norm clip: a large crossing target saturates at a_max,
    // perpendicular to the velocity.
    let c = zem.command(&input_with(
        rm,
        vm,
        Vec3::new(3000.0, 2000.0, 1500.0),
        Vec3::new(300.0, 0.0, 0.0),
        50.0,
    ));
    assert!(c.saturated);
    assert!((c.accel_mps2.norm() - 50.0).abs() < 1e-9);
    assert!(c.accel_mps2.dot(vm).abs() < 1e-9);
}

#[test]
fn turnaround_mode_has_hysteresis_and_blind_time_holds_the_command() {
    let mut g = Guidance::new(&GuidanceConfig::default()).unwrap();
    let rm = Vec3::new(0.0, 0.0, 1000.0);
    // Target behind the interceptor: look angle 180 deg, opening.
    let behind = input_with(
        rm,
        Vec3::new(0.0, 300.0, 0.0),
        Vec3::new(0.0, -3000.0, 1000.0),
        Vec3::ZERO,
        100.0,
    );
    let c = g.command(&behind);
    assert_eq!(c.mode, GuidanceMode::TurnAround);
    assert!((c.accel_mps2.norm() - 100.0).abs() < 1e-9);
    assert!(
        c.accel_mps2.z > 99.0,
        "anti-parallel LOS: turn prefers up {:?}",
        c.accel_mps2
    );
    // Look angle 75 deg, closing 78 m/s: between the thresholds, so still turning.
    let mid_dir = Vec3::new(0.0, 75f64.to_radians().cos(), 75f64.to_radians().sin());
    let mid = input_with(
        rm,
        Vec3::new(0.0, 300.0, 0.0),
        rm + mid_dir * 3000.0,
        Vec3::ZERO,
        100.0,
    );
    assert_eq!(g.command(&mid).mode, GuidanceMode::TurnAround);
    // A fresh pipeline does not enter turn-around at the same geometry.
    let mut fresh = Guidance::new(&GuidanceConfig::default()).unwrap();
    assert_eq!(fresh.command(&mid).mode, GuidanceMode::Law);
    // Ahead and closing fast: leaves the mode.
    let ahead = input_with(
        rm,
        Vec3::new(0.0, 300.0, 0.0),
        Vec3::new(100.0, 3000.0, 1000.0),
        Vec3::new(0.0, -300.0, 0.0),
        100.0,
    );
    assert_eq!(g.command(&ahead).mode, GuidanceMode::Law);
    // Blind time: under 0.1 s to go the previous command is held.
    let last = g.command(&ahead).accel_mps2;
    let close = input_with(
        rm,
        Vec3::new(0.0, 300.0, 0.0),
        Vec3::new(1.0, 30.0, 1000.0),
        Vec3::new(0.0, -300.0, 0.0),
        100.0,
    );
    let held = g.command(&close);
    assert_eq!(held.mode, GuidanceMode::BlindHold);
    assert_eq!(held.accel_mps2, last);
}

#[test]
fn boost_phase_steers_to_the_pip_and_ground_avoidance_pulls_up() {
    let mut g = Guidance::new(&GuidanceConfig::default()).unwrap();
    let mut input = input_with(
        Vec3::new(0.0, 0.0, 10.0),
        Vec3::new(0.0, 30.0, 30.0),
        Vec3::new(0.0, 8000.0, 3000.0),
        Vec3::new(0.0, -300.0, 0.0),
        400.0,
    );
    input.boost_phase = true;
    input.pip_m = Some(Vec3::new(2000.0, 3000.0, 1500.0));
    let c = g.command(&input);
    assert_eq!(c.mode, GuidanceMode::Boost);
    assert!(
        c.accel_mps2.x > 0.0,
        "turns toward the PIP: {:?}",
        c.accel_mps2
    );
    // Descending below 50 m: full pull-up.
    let mut low = input_with(
        Vec3::new(0.0, 0.0, 30.0),
        Vec3::new(0.0, 500.0, -20.0),
        Vec3::new(0.0, 5000.0, 10.0),
        Vec3::new(0.0, -200.0, 0.0),
        300.0,
    );
    low.boost_phase = false;
    let c = g.command(&low);
    assert_eq!(c.mode, GuidanceMode::PullUp);
    assert!(c.accel_mps2.z > 299.0);
}

#[test]
fn apn_augmentation_is_gated_by_time_to_go() {
    let rm = Vec3::new(0.0, 0.0, 1000.0);
    let vm = Vec3::new(0.0, 600.0, 0.0);
    let vt = Vec3::new(0.0, -200.0, 0.0);
    let a_t = Vec3::new(50.0, 0.0, 0.0);
    let cfg = GuidanceConfig {
        law: "apn".into(),
        gravity_compensation: false,
        ..Default::default()
    };
    let make = |range: f64| {
        let mut g = Guidance::new(&cfg).unwrap();
        let mut input = input_with(rm, vm, rm + Vec3::new(0.0, range, 0.0), vt, 1e4);
        input.target.acceleration_mps2 = a_t;
        g.command(&input).accel_mps2
    };
    // t_go = 8 s: gated off, no LOS rate, no command.
    assert!(make(6400.0).norm() < 1e-9);
    // t_go = 1 s: (N/2) a_T = 75 m/s^2 along x.
    let a = make(800.0);
    assert!((a - Vec3::new(75.0, 0.0, 0.0)).norm() < 1e-9, "{a:?}");
}
