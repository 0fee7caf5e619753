//! Physics tests against closed-form results (model reference section 11).

use hlynr_env::config::{ConfigError, from_yaml_str};
use hlynr_intercept::Vec3;
use hlynr_intercept::atmosphere::Atmosphere;
use hlynr_intercept::cpa::CpaTracker;
use hlynr_intercept::integrate::{Engagement, World};
use hlynr_intercept::interceptor::{
    AeroInterceptor, AeroParams, DragTable, Interceptor, ThrusterInterceptor,
};
use hlynr_intercept::physics_config::{
    AeroConfig, PhysicsConfig, RandomizationSample, Span, ThrusterConfig,
};
use hlynr_intercept::threat::{
    Maneuver, ManeuverCapability, ManeuverKind, Threat, ThreatMotion, ThreatState, back_propagate,
    impact_velocity, predicted_intercept_point,
};
use hlynr_intercept::units::G0_MPS2;
use hlynr_intercept::wind::WindParams;
use hlynr_rng::Rng;

fn ballistic(beta: f64, r: Vec3, v: Vec3) -> Threat {
    Threat {
        motion: ThreatMotion::Ballistic {
            ballistic_coefficient_kgpm2: beta,
        },
        maneuver: Maneuver::none(),
        capability: ManeuverCapability::unlimited(0.0),
        state: ThreatState {
            position_m: r,
            velocity_mps: v,
        },
    }
}

fn default_aero(dr: &RandomizationSample) -> AeroParams {
    AeroConfig::default().build(dr)
}

/// Steps a lone threat `n` times at `h`.
fn fly_threat(t: &mut Threat, world: &World, h: f64, n: usize) {
    let mut rng = Rng::seed_from_u64(0);
    for k in 0..n {
        let time = k as f64 * h;
        t.begin_step(time, h, &mut rng);
        t.integrate(world, Vec3::ZERO, time, h);
        t.finish_step();
    }
}

#[test]
fn drag_free_ballistic_matches_closed_form() {
    // Vacuum: zero density via an infinite ballistic coefficient.
    let world = World::standard();
    let v0 = Vec3::new(300.0 * 0.5f64.sqrt(), 0.0, 300.0 * 0.5f64.sqrt());
    let mut t = ballistic(f64::INFINITY, Vec3::ZERO, v0);
    let h = 0.01;
    fly_threat(&mut t, &world, h, 6000);
    let g = world.gravity_mps2;
    let exact = v0 * 60.0 + g * (0.5 * 3600.0);
    let err = (t.state.position_m - exact).norm() / exact.norm();
    assert!(err < 1e-9, "relative error {err}");
    // Time of flight and range at 300 m/s, 45 deg over flat ground:
    // 2 v sin45 / g0 = 43.2629 s and v^2 / g0 = 9177.45 m. Fly again and
    // find the ground crossing (linear between steps: the error is below
    // g h^2 / 8 = 0.1 mm in height, well under a microsecond).
    let mut t = ballistic(f64::INFINITY, Vec3::ZERO, v0);
    let mut rng = Rng::seed_from_u64(0);
    let (mut time, mut prev) = (0.0, t.state.position_m);
    while t.state.position_m.z >= 0.0 || time == 0.0 {
        prev = t.state.position_m;
        t.begin_step(time, h, &mut rng);
        t.integrate(&world, Vec3::ZERO, time, h);
        t.finish_step();
        time += h;
        assert!(time < 100.0, "never landed");
    }
    let p = t.state.position_m;
    let frac = prev.z / (prev.z - p.z);
    let tof = time - h + frac * h;
    let range = prev.x + frac * (p.x - prev.x);
    assert!((tof - 43.2629).abs() < 1e-4, "time of flight {tof}");
    assert!((range - 9177.45).abs() < 1e-2, "range {range}");
}

#[test]
fn terminal_velocity_matches_tanh_law() {
    // m = 100 kg, CD S = 0.05 m^2 -> beta = 2000 kg/m^2, constant rho.
    let world = World {
        atmosphere: Atmosphere::uniform(1.225, 340.0),
        ..World::standard()
    };
    let mut t = ballistic(2000.0, Vec3::new(0.0, 0.0, 50_000.0), Vec3::ZERO);
    let vt = (2.0 * 100.0 * G0_MPS2 / (1.225 * 0.05)).sqrt();
    assert!((vt - 178.95).abs() < 0.01);
    let h = 0.01;
    let mut done = 0;
    for (time, expected) in [(5.0, 47.84), (10.0, 89.30), (20.0, 142.99)] {
        let n = (time / h) as usize - done;
        fly_threat_from(&mut t, &world, h, done, n);
        done += n;
        let v = t.state.velocity_mps.norm();
        let exact = vt * (G0_MPS2 * time / vt).tanh();
        assert!(
            ((v - exact) / exact).abs() < 1e-6,
            "t={time}: {v} vs {exact}"
        );
        assert!((v - expected).abs() < 0.01);
    }
    // Gravity-free coast: V = V0 / (1 + k V0 t).
    let world0 = World {
        gravity_mps2: Vec3::ZERO,
        ..world
    };
    let mut t = ballistic(
        2000.0,
        Vec3::new(0.0, 0.0, 1000.0),
        Vec3::new(500.0, 0.0, 0.0),
    );
    fly_threat(&mut t, &world0, h, 1000);
    let k = 1.225 / (2.0 * 2000.0);
    let exact = 500.0 / (1.0 + k * 500.0 * 10.0);
    assert!(((t.state.velocity_mps.norm() - exact) / exact).abs() < 1e-6);
}

fn fly_threat_from(t: &mut Threat, world: &World, h: f64, start: usize, n: usize) {
    let mut rng = Rng::seed_from_u64(0);
    for k in start..start + n {
        let time = k as f64 * h;
        t.begin_step(time, h, &mut rng);
        t.integrate(world, Vec3::ZERO, time, h);
        t.finish_step();
    }
}

fn step_interceptor(i: &mut Interceptor, world: &World, t0: f64, h: f64) {
    // Same splitting as the engagement loop.
    let mut t = t0;
    let end = t0 + h;
    while t < end - 1e-9 {
        let next = match i.next_event_after_s(t) {
            Some(e) if e < end - 1e-9 => e,
            _ => end,
        };
        i.integrate(world, Vec3::ZERO, t, next - t);
        t = next;
    }
    i.finish_step(world, Vec3::ZERO, end);
}

#[test]
fn mass_depletes_at_thrust_over_isp_and_thrust_stops_at_burnout() {
    let params = default_aero(&RandomizationSample::NOMINAL);
    let m0 = params.launch_mass_kg();
    let world = World::standard();
    let mut i = Interceptor::Aero(AeroInterceptor::launch(
        params.clone(),
        Vec3::ZERO,
        Vec3::new(1.0, 0.0, 1.0),
        30.0,
    ));
    let h = 0.01;
    for k in 0..150 {
        step_interceptor(&mut i, &world, k as f64 * h, h);
    }
    let mdot = 23_500.0 / (240.0 * G0_MPS2);
    assert!(((m0 - i.mass_kg()) - mdot * 1.5).abs() < 1e-9);
    for k in 150..1200 {
        step_interceptor(&mut i, &world, k as f64 * h, h);
    }
    // Burnout at 9 s: mass exactly at burnout mass, and stays there.
    assert!((i.mass_kg() - params.burnout_mass_kg).abs() < 1e-9);
    assert_eq!(params.motor_at(9.5), (0.0, 0.0));
    assert!(!i.has_propulsion(12.0));
    // Ideal rocket equation check of the parameter set.
    let dv = 240.0 * G0_MPS2 * (m0 / params.burnout_mass_kg).ln();
    assert!(dv > 1000.0 && dv < 1300.0, "{dv}");
}

#[test]
fn default_interceptor_flyout_is_in_the_reference_band() {
    let params = default_aero(&RandomizationSample::NOMINAL);
    let world = World::standard();
    let dir = Vec3::new(15f64.to_radians().cos(), 0.0, 15f64.to_radians().sin());
    let mut i = Interceptor::Aero(AeroInterceptor::launch(params, Vec3::ZERO, dir, 30.0));
    let h = 0.01;
    for k in 0..300 {
        step_interceptor(&mut i, &world, k as f64 * h, h);
    }
    let v3 = i.velocity_mps().norm();
    assert!((800.0..980.0).contains(&v3), "speed at 3 s {v3}");
}

#[test]
fn autopilot_lag_step_response_is_first_order() {
    let world = World {
        gravity_mps2: Vec3::ZERO,
        ..World::standard()
    };
    let mut params = default_aero(&RandomizationSample::NOMINAL);
    params.stages.clear();
    let tau = params.autopilot_tau_s;
    let mut a = AeroInterceptor::launch(
        params,
        Vec3::new(0.0, 0.0, 1000.0),
        Vec3::new(1.0, 0.0, 0.0),
        800.0,
    );
    let cmd = 20.0;
    let h = 0.01;
    for k in 0..100 {
        let x_b = a.state.velocity_mps.unit_or_zero();
        a.command_mps2 = Vec3::new(0.0, 0.0, 1.0).perp_to(x_b).unit_or_zero() * cmd;
        let mut i = Interceptor::Aero(a);
        step_interceptor(&mut i, &world, k as f64 * h, h);
        let Interceptor::Aero(next) = i else {
            unreachable!()
        };
        a = next;
        let t = (k + 1) as f64 * h;
        let expected = cmd * (1.0 - (-t / tau).exp());
        let got = a.state.lateral_accel_mps2.norm();
        assert!(
            ((got - expected) / expected).abs() < 1e-4,
            "t={t}: {got} vs {expected}"
        );
    }
}

#[test]
fn lateral_accel_is_perpendicular_and_saturation_is_a_norm_clip() {
    // Drag-free, gravity-free: a pure lateral acceleration keeps speed constant.
    let world = World {
        gravity_mps2: Vec3::ZERO,
        ..World::standard()
    };
    let mut params = default_aero(&RandomizationSample::NOMINAL);
    params.stages.clear();
    params.k_induced = 0.0;
    params.drag = DragTable {
        mach: vec![0.0],
        cd0: vec![0.0],
        base_drag: vec![0.0],
    };
    let mut a = AeroInterceptor::launch(
        params,
        Vec3::new(0.0, 0.0, 2000.0),
        Vec3::new(1.0, 1.0, 0.0),
        600.0,
    );
    a.command_mps2 = Vec3::ZERO;
    let mut i = Interceptor::Aero(a);
    let h = 0.01;
    for k in 0..500 {
        // A huge command perpendicular to the velocity, re-aimed every step:
        // it saturates at a_max and the vehicle circles horizontally.
        if let Interceptor::Aero(a) = &mut i {
            let x_b = a.state.velocity_mps.unit_or_zero();
            a.command_mps2 = x_b.cross(Vec3::new(0.0, 0.0, 1.0)).unit_or_zero() * 1e4;
        }
        step_interceptor(&mut i, &world, k as f64 * h, h);
    }
    let Interceptor::Aero(a) = &i else {
        unreachable!()
    };
    assert!(
        (a.state.velocity_mps.norm() - 600.0).abs() < 1e-6 * 600.0,
        "{}",
        a.state.velocity_mps.norm()
    );
    let x_b = a.state.velocity_mps.unit_or_zero();
    assert!(a.state.lateral_accel_mps2.dot(x_b).abs() < 1e-9);
    let a_max = a.max_lateral_accel_mps2(&world, Vec3::ZERO, 5.0);
    let a_l = a.state.lateral_accel_mps2.norm();
    assert!(
        a_l <= a_max * (1.0 + 1e-12) && a_l > 0.99 * a_max,
        "{a_l} vs {a_max}"
    );
    // The norm clip keeps the command's direction.
    let p = a.params.max_lateral_accel_mps2(1e6, 60.0, 0.0);
    let c = Vec3::new(3.0, 4.0, 0.0) * 1e3;
    let s = c.clamp_norm(p);
    assert!((s.norm() - p).abs() < 1e-9 && (s.x / s.y - 0.75).abs() < 1e-12);
    assert!(
        (p - 40.0 * G0_MPS2).abs() < 1e-9,
        "structural cap binds at high q"
    );
}

#[test]
fn thruster_fuel_runs_out_and_thrust_stops() {
    let cfg = ThrusterConfig::default();
    let params = cfg.build(&RandomizationSample::NOMINAL);
    let world = World::standard();
    let mut t = ThrusterInterceptor::launch(
        params,
        Vec3::new(0.0, 0.0, 100.0),
        Vec3::new(20.0, 0.0, 0.0),
    );
    let burn = t.remaining_burn_time_s();
    t.command_n = Vec3::new(1e6, 1e6, 1e6); // norm-limited to F_max
    let mut i = Interceptor::Thruster(t);
    let h = 0.01;
    let mut k = 0;
    while i.has_propulsion(0.0) && k < 100_000 {
        step_interceptor(&mut i, &world, k as f64 * h, h);
        k += 1;
    }
    let t_out = k as f64 * h;
    // Ran out close to the ideal full-thrust burn time (thrust lag adds ~tau).
    assert!((t_out - burn).abs() < 0.2, "{t_out} vs {burn}");
    let Interceptor::Thruster(t) = &i else {
        unreachable!()
    };
    assert_eq!(t.state.mass_kg, params.dry_mass_kg);
    assert_eq!(t.state.thrust_n, Vec3::ZERO);
    assert!(i.max_accel_mps2(&world, Vec3::ZERO, 0.0) == 0.0);
    // After burnout, only gravity and drag act: one more step leaves thrust 0.
    step_interceptor(&mut i, &world, t_out, h);
    let Interceptor::Thruster(t) = &i else {
        unreachable!()
    };
    assert_eq!(t.state.thrust_n, Vec3::ZERO);
}

#[test]
fn each_maneuver_has_its_configured_magnitude() {
    let world = World::standard();
    let n = 5.0 * G0_MPS2;
    let mut rng = Rng::seed_from_u64(11);
    for kind in [
        ManeuverKind::Step,
        ManeuverKind::BangBang,
        ManeuverKind::Weave,
        ManeuverKind::Spiral,
        ManeuverKind::Jink,
    ] {
        let m = Maneuver {
            kind,
            accel_mps2: n,
            omega_radps: 2.0,
            phase_rad: 0.3,
            jink_rate_hz: 0.5,
            direction_rad: 1.0,
            ..Maneuver::none()
        };
        let mut threat = Threat {
            motion: ThreatMotion::Cruise {
                speed_mps: 250.0,
                altitude_hold: None,
            },
            maneuver: m,
            capability: ManeuverCapability::unlimited(30.0 * G0_MPS2),
            state: ThreatState {
                position_m: Vec3::new(0.0, 0.0, 3000.0),
                velocity_mps: Vec3::new(-250.0, 0.0, 0.0),
            },
        };
        let mut peak: f64 = 0.0;
        for k in 0..600 {
            let t = k as f64 * 0.01;
            threat.begin_step(t, 0.01, &mut rng);
            let a = threat.maneuver_accel_mps2(&world, t, &threat.state, Vec3::ZERO);
            let v_hat = threat.state.velocity_mps.unit_or_zero();
            assert!(a.dot(v_hat).abs() < 1e-9 * n, "{kind:?} not perpendicular");
            if kind != ManeuverKind::Weave {
                assert!((a.norm() - n).abs() < 1e-9 * n, "{kind:?}: {}", a.norm());
            }
            peak = peak.max(a.norm());
            threat.integrate(&world, Vec3::ZERO, t, 0.01);
            threat.finish_step();
        }
        assert!((peak - n).abs() < 1e-3 * n, "{kind:?} peak {peak}");
        assert!((threat.state.velocity_mps.norm() - 250.0).abs() < 1e-9);
        // Capability clip: a 2 g limit caps every pattern at 2 g.
        threat.capability = ManeuverCapability::unlimited(2.0 * G0_MPS2);
        threat.maneuver.active = true;
        let a = threat.maneuver_accel_mps2(&world, 1.0, &threat.state, Vec3::ZERO);
        assert!(a.norm() <= 2.0 * G0_MPS2 + 1e-9);
    }
}

#[test]
fn back_propagated_ballistic_threat_arrives_at_the_aim_point() {
    let world = World::standard();
    let t = ballistic(8000.0, Vec3::ZERO, Vec3::ZERO);
    let aim = Vec3::new(300.0, -200.0, 0.0);
    let v_imp = impact_velocity(900.0, 50f64.to_radians(), 1.0);
    let start = back_propagate(&t, &world, &WindParams::calm(), aim, v_imp, 15.0, 0.01);
    let mut fwd = ballistic(8000.0, start.position_m, start.velocity_mps);
    fly_threat(&mut fwd, &world, 0.01, 1500);
    assert!(
        (fwd.state.position_m - aim).norm() < 1e-3,
        "{:?}",
        fwd.state.position_m
    );
    // PIP by bisection for a threat faster than the mean flyout speed.
    let r0 = Vec3::new(8000.0, 0.0, 2000.0);
    let v = Vec3::new(-1500.0, 0.0, 0.0);
    let pip = predicted_intercept_point(Vec3::ZERO, 700.0, 60.0, 0.25, |t| r0 + v * t).unwrap();
    let f = (r0 + v * pip.time_s).norm() - 700.0 * pip.time_s;
    assert!(f.abs() < 1e-5, "{pip:?}");
}

fn engagement(
    seed: u64,
    rotate: f64,
    shift: Vec3,
    dr: &RandomizationSample,
    wind_speed: f64,
) -> (f64, Vec3) {
    let cfg = PhysicsConfig::default();
    let world = cfg.build_world(dr);
    let rot = |v: Vec3| {
        let (s, c) = rotate.sin_cos();
        Vec3::new(c * v.x - s * v.y, s * v.x + c * v.y, v.z)
    };
    let params = AeroConfig::default().build(dr);
    let launch = Interceptor::Aero(AeroInterceptor::launch(
        params,
        shift,
        rot(Vec3::new(1.0, 0.2, 0.6)),
        30.0,
    ));
    let threat = Threat {
        motion: ThreatMotion::Cruise {
            speed_mps: 250.0,
            altitude_hold: None,
        },
        maneuver: Maneuver {
            kind: ManeuverKind::Jink,
            accel_mps2: 3.0 * G0_MPS2,
            jink_rate_hz: 1.0,
            ..Maneuver::none()
        },
        capability: ManeuverCapability::unlimited(5.0 * G0_MPS2),
        state: ThreatState {
            position_m: rot(Vec3::new(5000.0, 1000.0, 1500.0)) + shift,
            velocity_mps: rot(Vec3::new(-250.0, 0.0, 0.0)),
        },
    };
    // Wind through the config path, so the wind factor is applied by it.
    let mut wcfg = cfg.clone();
    wcfg.wind.reference_speed_mps = Span::fixed(wind_speed);
    wcfg.wind.direction_deg = Span::fixed(-rotate.to_degrees());
    let wind = wcfg.build_wind(dr, &mut Rng::seed_from_u64(0));
    let mut wind_rng = Rng::from_stream(seed, 1);
    let mut man_rng = Rng::from_stream(seed, 2);
    let mut e = Engagement::new(launch, threat, wind, &mut wind_rng);
    let mut cpa = CpaTracker::new();
    let h = cfg.step_s();
    for _ in 0..4000 {
        // Pure pursuit, rotation-equivariant.
        let r = e.relative_position_m();
        let v_m = e.interceptor.velocity_mps();
        let cmd = r.unit_or_zero().perp_to(v_m.unit_or_zero()) * (4.0 * v_m.norm())
            - world.gravity_mps2.perp_to(v_m.unit_or_zero());
        e.interceptor.set_accel_command_mps2(cmd);
        let g = e.step(&world, h, &mut wind_rng, &mut man_rng);
        assert!(
            e.interceptor.position_m().is_finite(),
            "non-finite at {}: {:?}",
            e.time_s,
            e
        );
        if cpa.update(&g) {
            break;
        }
    }
    (cpa.miss_distance_m, e.interceptor.position_m() - shift)
}

#[test]
fn determinism_and_horizontal_invariance() {
    let nominal = RandomizationSample::NOMINAL;
    let a = engagement(5, 0.0, Vec3::ZERO, &nominal, 0.0);
    let b = engagement(5, 0.0, Vec3::ZERO, &nominal, 0.0);
    assert_eq!(a.0.to_bits(), b.0.to_bits());
    assert_eq!(a.1, b.1);
    let c = engagement(6, 0.0, Vec3::ZERO, &nominal, 0.0);
    assert_ne!(a.0.to_bits(), c.0.to_bits(), "maneuver stream must matter");
    let r = engagement(5, 1.1, Vec3::new(12_345.0, -6_789.0, 0.0), &nominal, 8.0);
    let r0 = engagement(5, 0.0, Vec3::ZERO, &nominal, 8.0);
    assert!((r.0 - r0.0).abs() < 1e-6, "miss {} vs {}", r.0, r0.0);
}

/// Flies the default aero interceptor (a 9 s burn) for `seconds` with no
/// steering command, in a wind of `wind_speed` m/s blowing toward north
/// (+y) set through the config path; returns its position, velocity and mass.
fn unguided_flight(dr: &RandomizationSample, wind_speed: f64, seconds: f64) -> (Vec3, Vec3, f64) {
    let mut cfg = PhysicsConfig::default();
    let world = cfg.build_world(dr);
    cfg.wind.reference_speed_mps = Span::fixed(wind_speed);
    cfg.wind.direction_deg = Span::fixed(0.0);
    let wind = cfg.build_wind(dr, &mut Rng::seed_from_u64(0));
    let launch = Interceptor::Aero(AeroInterceptor::launch(
        AeroConfig::default().build(dr),
        Vec3::ZERO,
        Vec3::new(1.0, 0.0, 0.6),
        30.0,
    ));
    let far_away = ballistic(
        f64::INFINITY,
        Vec3::new(1e6, 0.0, 1e4),
        Vec3::new(0.0, 0.0, 0.0),
    );
    let (mut wind_rng, mut man_rng) = (Rng::from_stream(1, 1), Rng::from_stream(1, 2));
    let mut e = Engagement::new(launch, far_away, wind, &mut wind_rng);
    for _ in 0..(seconds / cfg.step_s()).round() as usize {
        e.interceptor.set_accel_command_mps2(Vec3::ZERO);
        e.step(&world, cfg.step_s(), &mut wind_rng, &mut man_rng);
    }
    let i = &e.interceptor;
    (i.position_m(), i.velocity_mps(), i.mass_kg())
}

#[test]
fn every_randomization_factor_moves_the_dynamics_its_own_way() {
    let nominal = RandomizationSample::NOMINAL;
    // Speeds 3 s into the burn and after burnout.
    let speeds = |dr: RandomizationSample| {
        (
            unguided_flight(&dr, 0.0, 3.0).1.norm(),
            unguided_flight(&dr, 0.0, 12.0).1.norm(),
        )
    };
    let (v3, v12) = speeds(nominal);
    // More drag, more inert mass, denser air: slower during the burn and after.
    for (what, dr) in [
        (
            "drag x1.2",
            RandomizationSample {
                drag_factor: 1.2,
                ..nominal
            },
        ),
        (
            "mass x1.1",
            RandomizationSample {
                mass_factor: 1.1,
                ..nominal
            },
        ),
        (
            "density x1.1",
            RandomizationSample {
                density_factor: 1.1,
                ..nominal
            },
        ),
    ] {
        let (a, b) = speeds(dr);
        assert!(
            a < v3 - 1.0 && b < v12 - 1.0,
            "{what}: {a} and {b} m/s, nominal {v3} and {v12} m/s"
        );
    }
    // A hot day at standard pressure: thinner air, less drag, faster.
    let (a, b) = speeds(RandomizationSample {
        temperature_offset_k: 15.0,
        ..nominal
    });
    assert!(
        a > v3 + 1.0 && b > v12 + 1.0,
        "hot day: {a} and {b} m/s, nominal {v3} and {v12} m/s"
    );
    // Less thrust, same total impulse: slower early, still burning at 9.5 s
    // (the burn stretches to 10 s) when the nominal motor is spent.
    let weak = RandomizationSample {
        thrust_factor: 0.9,
        ..nominal
    };
    let (a, _) = speeds(weak);
    assert!(a < v3 - 1.0, "thrust x0.9: {a} m/s, nominal {v3} m/s");
    let spent = unguided_flight(&nominal, 0.0, 9.5).2;
    let burning = unguided_flight(&weak, 0.0, 9.5).2;
    assert!(
        burning > spent + 0.1,
        "mass at 9.5 s: {burning} vs {spent} kg"
    );
    // A crosswind at the 30 m/s launch turns the air-relative velocity, and
    // with it the thrust, into the wind (weathercocking): the unguided flight
    // ends upwind (-y), further upwind when the wind factor doubles.
    let north = |factor: f64| {
        unguided_flight(
            &RandomizationSample {
                wind_factor: factor,
                ..nominal
            },
            10.0,
            12.0,
        )
        .0
        .y
    };
    let (calm, once, twice) = (north(0.0), north(1.0), north(2.0));
    assert!(calm.abs() < 1e-6, "drift {calm} m without wind");
    assert!(
        once < -100.0 && twice < 1.5 * once,
        "drift {once} m, doubled wind {twice} m"
    );
    // Sampling draws i.i.d. factors inside the configured ranges.
    let cfg: PhysicsConfig =
        from_yaml_str("randomization:\n  drag_factor: [0.8, 1.2]\n", "t").unwrap();
    let mut rng = Rng::seed_from_u64(1);
    let a = cfg.sample_randomization(&mut rng);
    let b = cfg.sample_randomization(&mut rng);
    assert_ne!(a.drag_factor, b.drag_factor);
    assert!((0.8..=1.2).contains(&a.drag_factor) && b.mass_factor == 1.0);
}

#[test]
fn physics_config_is_strict_and_validated() {
    let ok: PhysicsConfig = from_yaml_str(
        "physics_rate_hz: 200\ninterceptor:\n  model: thruster\n  max_thrust_n: 50\nwind:\n  reference_speed_mps: [0, 10]\n",
        "t",
    )
    .unwrap();
    assert_eq!(ok.physics_rate_hz, 200.0);
    let err = from_yaml_str::<PhysicsConfig>("interceptor:\n  model: aero\n  mass_kg: 80\n", "t")
        .unwrap_err();
    match &err {
        ConfigError::UnknownKey { path, .. } => assert!(path.ends_with("mass_kg"), "{err}"),
        other => panic!("{other}"),
    }
    let err =
        from_yaml_str::<PhysicsConfig>("interceptor:\n  model: aero\n  autopilot_tau_s: 0\n", "t")
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "interceptor.autopilot_tau_s = 0 is out of range [0.001, 5]"
    );
    let err = from_yaml_str::<PhysicsConfig>("wind:\n  gust_sigma_mps: [3, 1]\n", "t").unwrap_err();
    assert!(err.to_string().starts_with("wind.gust_sigma_mps"), "{err}");
    let err = from_yaml_str::<PhysicsConfig>("randomization:\n  drag_factr: 1\n", "t").unwrap_err();
    assert!(
        err.to_string().contains("did you mean `drag_factor`"),
        "{err}"
    );
}

#[test]
fn coarse_back_propagation_matches_the_physics_step() {
    // The engagement draw back-propagates ballistic threats at a coarser step
    // than the physics rate. Over the configured ranges (heavy drag at low
    // altitude included) its start state must agree with a converged
    // (500 Hz) back-propagation to within centimetres, about as well as a
    // back-propagation at the 100 Hz physics rate does (the tabulated
    // atmosphere's kinks every 10 m limit both).
    let world = World::standard();
    let step = hlynr_intercept::engagement::BACK_PROPAGATION_STEP_S;
    assert!(
        step > 0.01,
        "the draw step {step} s is not coarser than 100 Hz"
    );
    let mut worst = [0.0f64; 4];
    for (beta, speed, descent_deg, t_imp) in [
        (5000.0, 1000.0, 20.0, 20.0),
        (5000.0, 600.0, 60.0, 10.0),
        (20_000.0, 1600.0, 30.0, 20.0),
        (100_000.0, 1000.0, 70.0, 15.0),
    ] {
        let t = ballistic(beta, Vec3::ZERO, Vec3::ZERO);
        let aim = Vec3::new(300.0, -200.0, 0.0);
        let v_imp = impact_velocity(speed, f64::to_radians(descent_deg), 1.0);
        let wind = WindParams::calm();
        let start = |h: f64| back_propagate(&t, &world, &wind, aim, v_imp, t_imp, h);
        let reference = start(0.002);
        for (k, h) in [(0, 0.01), (2, step)] {
            let s = start(h);
            worst[k] = worst[k].max((s.position_m - reference.position_m).norm());
            worst[k + 1] = worst[k + 1].max((s.velocity_mps - reference.velocity_mps).norm());
        }
    }
    println!(
        "back-propagation error vs 500 Hz: 100 Hz {:.2e} m {:.2e} m/s, {step} s {:.2e} m {:.2e} m/s",
        worst[0], worst[1], worst[2], worst[3]
    );
    assert!(worst[2] < 0.05 && worst[3] < 0.01, "{worst:?}");
    assert!(worst[2] < 2.0 * worst[0].max(1e-3), "{worst:?}");
}
