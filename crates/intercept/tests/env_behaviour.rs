//! Behaviour of `InterceptEnv`: determinism, state round trip, scenario
//! loading, strict keys, domain randomisation, no truth leak, finite
//! observations, the success definition and CPA termination.

use hlynr_env::{Env, Info, PolicyInput};
use hlynr_intercept::env::EpisodeSeeds;
use hlynr_intercept::physics_config::Span;
use hlynr_intercept::reward::TerminationReason;
use hlynr_intercept::scenario::ObservationMode;
use hlynr_intercept::units::G0_MPS2;
use hlynr_intercept::{InterceptEnv, ScenarioConfig, Vec3, make_policy};
use hlynr_rng::Rng;

fn buffers(env: &InterceptEnv) -> (Vec<f32>, Vec<f32>, Info) {
    (
        vec![0.0; env.observation_space().flat_dim()],
        vec![0.0; env.action_space().flat_dim()],
        Info::default(),
    )
}

/// Runs `steps` decisions with a constant action, returning the true
/// interceptor and threat positions after each.
fn trajectory(
    env: &mut InterceptEnv,
    seed: u64,
    action: &[f32],
    steps: usize,
) -> Vec<(Vec3, Vec3)> {
    let (mut obs, _, mut info) = buffers(env);
    env.reset(Some(seed), (&mut obs).into(), &mut info).unwrap();
    let mut out = Vec::new();
    for _ in 0..steps {
        info.clear();
        let s = env.step(action, (&mut obs).into(), &mut info).unwrap();
        let e = env.engagement();
        out.push((e.interceptor.position_m(), e.threat.state.position_m));
        if s.done() {
            break;
        }
    }
    out
}

#[test]
fn every_shipped_scenario_loads_and_builds() {
    for name in ["easy", "medium", "hard", "extreme", "legacy"] {
        let c = ScenarioConfig::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.name, name);
        let mut env = InterceptEnv::new(&c).unwrap();
        let (mut obs, act, mut info) = buffers(&env);
        env.reset(Some(1), (&mut obs).into(), &mut info).unwrap();
        env.step(&act, (&mut obs).into(), &mut info).unwrap();
        assert!(obs.iter().all(|x| x.is_finite()), "{name}");
    }
    // The embedded copies parse too (the binary works from any directory).
    for (name, text) in hlynr_intercept::scenario::SHIPPED_SCENARIOS {
        ScenarioConfig::from_yaml::<&str>(text, name, &[]).unwrap();
    }
    let err = ScenarioConfig::load("medum").unwrap_err().to_string();
    assert!(err.contains("did you mean `medium`"), "{err}");
    // A file path loads the file; it resolves like the built-in copy.
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/scenarios/hard.yaml");
    let from_file = ScenarioConfig::load_resolved::<&str>(file.to_str().unwrap(), &[]).unwrap();
    let built_in = ScenarioConfig::load_resolved::<&str>("hard", &[]).unwrap();
    assert_eq!(from_file.1, built_in.1);
}

#[test]
fn unknown_keys_name_the_key_and_suggest() {
    let err = ScenarioConfig::from_yaml::<&str>("kill_radius: 5\n", "t", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("kill_radius") && err.contains("kill_radius_m"),
        "{err}"
    );
    let err = ScenarioConfig::from_yaml::<&str>("radar:\n  sigma_range: 3\n", "t", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("radar.sigma_range") && err.contains("sigma_range_m"),
        "{err}"
    );
    let err = ScenarioConfig::from_yaml::<&str>(
        "threats:\n  - start:\n      spawn: cruise\n      range: 5\n",
        "t",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("range_m"), "{err}");
    let err = ScenarioConfig::from_yaml::<&str>("decision_rate_hz: 30\n", "t", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("decision_rate_hz"), "{err}");
    // Overrides go through the same strict path.
    let (c, _) = ScenarioConfig::from_yaml("{}", "t", &["kill_radius_m=7"]).unwrap();
    assert_eq!(c.kill_radius_m, 7.0);
    assert!(ScenarioConfig::from_yaml("{}", "t", &["kill_radius_mm=7"]).is_err());
}

#[test]
fn same_seed_same_episode_and_different_seed_differs() {
    let c = ScenarioConfig::load("medium").unwrap();
    let mut a = InterceptEnv::new(&c).unwrap();
    let mut b = InterceptEnv::new(&c).unwrap();
    let act = [0.3f32, -0.2];
    let ta = trajectory(&mut a, 42, &act, 100);
    let tb = trajectory(&mut b, 42, &act, 100);
    assert_eq!(ta, tb);
    let tc = trajectory(&mut b, 43, &act, 100);
    assert_ne!(ta[0], tc[0]);
}

#[test]
fn radar_noise_seed_leaves_the_threat_unchanged() {
    let c = ScenarioConfig::load("hard").unwrap();
    let mut env = InterceptEnv::new(&c).unwrap();
    let (mut obs, act, mut info) = buffers(&env);
    let seeds = EpisodeSeeds::from_seed(5);
    let run = |env: &mut InterceptEnv, seeds: EpisodeSeeds, obs: &mut Vec<f32>, info: &mut Info| {
        env.reset_with_seeds(seeds, obs, info).unwrap();
        let mut threat = Vec::new();
        let mut est = Vec::new();
        for _ in 0..60 {
            let s = env.step(&act, obs.into(), info).unwrap();
            threat.push(env.engagement().threat.state.position_m);
            est.push(env.estimate().position_m());
            if s.done() {
                break;
            }
        }
        (threat, est)
    };
    let (t1, e1) = run(&mut env, seeds, &mut obs, &mut info);
    let other = EpisodeSeeds {
        radar: seeds.radar ^ 0xdead_beef,
        ..seeds
    };
    let (t2, e2) = run(&mut env, other, &mut obs, &mut info);
    assert_eq!(t1, t2, "threat trajectory depends on the radar seed");
    assert_ne!(e1, e2, "the radar seed has no effect on the measurements");
}

#[test]
fn state_round_trip_continues_exactly() {
    let c = ScenarioConfig::load("hard").unwrap();
    let mut env = InterceptEnv::new(&c).unwrap();
    let (mut obs, _, mut info) = buffers(&env);
    env.reset(Some(9), (&mut obs).into(), &mut info).unwrap();
    let act = [0.5f32, 0.1];
    for _ in 0..20 {
        env.step(&act, (&mut obs).into(), &mut info).unwrap();
    }
    let saved = env.state();
    let mut rest = Vec::new();
    for _ in 0..40 {
        let s = env.step(&act, (&mut obs).into(), &mut info).unwrap();
        rest.push((obs.clone(), s.reward.to_bits()));
    }
    let mut other = InterceptEnv::new(&c).unwrap();
    other.set_state(&saved).unwrap();
    // Saved right after reset (infinite miss so far) also restores exactly.
    let mut fresh = InterceptEnv::new(&c).unwrap();
    let mut o = obs.clone();
    fresh.reset(Some(9), (&mut o).into(), &mut info).unwrap();
    let s0 = fresh.state();
    let mut copy = InterceptEnv::new(&c).unwrap();
    copy.set_state(&s0).unwrap();
    assert_eq!(copy.miss_distance_m(), f64::INFINITY);
    assert_eq!(copy.state(), s0);
    for (o, r) in &rest {
        let s = other.step(&act, (&mut obs).into(), &mut info).unwrap();
        assert_eq!(&obs, o);
        assert_eq!(s.reward.to_bits(), *r);
    }
    // Reset without a seed continues the generator identically too.
    let mut o1 = obs.clone();
    env.reset(None, (&mut o1).into(), &mut info).unwrap();
    let mut o2 = obs.clone();
    other.reset(None, (&mut o2).into(), &mut info).unwrap();
    assert_eq!(o1, o2);
    assert!(other.set_state(&serde_json::json!({"bogus": 1})).is_err());
}

/// Interceptor position after `steps` decisions of the easy scenario with
/// `edit` applied to its config.
fn interceptor_after(edit: impl Fn(&mut ScenarioConfig), steps: usize) -> (Vec3, Info) {
    let mut c = ScenarioConfig::load("easy").unwrap();
    edit(&mut c);
    let mut env = InterceptEnv::new(&c).unwrap();
    let (mut obs, act, mut info) = buffers(&env);
    env.reset(Some(3), (&mut obs).into(), &mut info).unwrap();
    let reset_info = info.clone();
    for _ in 0..steps {
        env.step(&act, (&mut obs).into(), &mut info).unwrap();
    }
    (env.engagement().interceptor.position_m(), reset_info)
}

#[test]
fn every_randomisation_factor_is_applied_and_recorded() {
    let base = interceptor_after(|_| {}, 40).0;
    type Edit = fn(&mut ScenarioConfig);
    let cases: [(&str, &str, Edit); 6] = [
        ("drag", "dr_drag_factor", |c| {
            c.physics.randomization.drag_factor = Span::fixed(1.3)
        }),
        ("mass", "dr_mass_factor", |c| {
            c.physics.randomization.mass_factor = Span::fixed(1.2)
        }),
        ("thrust", "dr_thrust_factor", |c| {
            c.physics.randomization.thrust_factor = Span::fixed(1.2)
        }),
        ("density", "dr_density_factor", |c| {
            c.physics.randomization.density_factor = Span::fixed(0.8)
        }),
        ("temperature", "dr_temperature_offset_k", |c| {
            c.physics.randomization.temperature_offset_k = Span::fixed(20.0)
        }),
        ("wind", "dr_wind_factor", |c| {
            c.physics.wind.reference_speed_mps = Span::fixed(10.0);
            c.physics.randomization.wind_factor = Span::fixed(2.0);
        }),
    ];
    for (what, key, edit) in cases {
        let (p, info) = interceptor_after(edit, 40);
        assert!(
            (p - base).norm() > 1e-3,
            "{what} factor has no effect on the flight"
        );
        let nominal = if key == "dr_temperature_offset_k" {
            0.0
        } else {
            1.0
        };
        assert_ne!(info.get(key), Some(nominal), "{what} not recorded");
    }
    // Wind factor applies to the wind actually flown (compare with factor 1).
    let w1 = interceptor_after(
        |c| c.physics.wind.reference_speed_mps = Span::fixed(10.0),
        40,
    )
    .0;
    let w2 = interceptor_after(
        |c| {
            c.physics.wind.reference_speed_mps = Span::fixed(10.0);
            c.physics.randomization.wind_factor = Span::fixed(2.0);
        },
        40,
    )
    .0;
    assert!((w1 - w2).norm() > 1e-3);
}

/// Mean absolute position error of the estimate over an episode prefix.
fn estimate_error(edit: impl Fn(&mut ScenarioConfig)) -> (f64, Info) {
    let mut c = ScenarioConfig::load("medium").unwrap();
    edit(&mut c);
    let mut env = InterceptEnv::new(&c).unwrap();
    let (mut obs, act, mut info) = buffers(&env);
    env.reset(Some(11), (&mut obs).into(), &mut info).unwrap();
    let reset_info = info.clone();
    let mut err = 0.0;
    for _ in 0..60 {
        if env.step(&act, (&mut obs).into(), &mut info).unwrap().done() {
            break;
        }
        let est = env.estimate();
        if est.track_valid() {
            err += (est.position_m() - env.engagement().threat.state.position_m).norm();
        }
    }
    (err, reset_info)
}

#[test]
fn sensor_noise_and_delay_factors_change_the_measurements() {
    let (base, _) = estimate_error(|_| {});
    let (noisy, info) = estimate_error(|c| c.radar.noise_factor_range = [3.0, 3.0]);
    assert_eq!(info.get("radar_noise_factor"), Some(3.0));
    assert!(
        noisy > 1.5 * base,
        "noise factor 3: error {noisy} vs {base}"
    );
    let (late, info) = estimate_error(|c| c.radar.latency_factor_range = [3.0, 3.0]);
    assert!((info.get("radar_latency_s").unwrap() - 0.15).abs() < 1e-12);
    assert_ne!(late, base, "latency factor has no effect");
}

#[test]
fn observation_ignores_truth_after_the_last_measurement() {
    for mode in [
        ObservationMode::Los,
        ObservationMode::World,
        ObservationMode::Body,
        ObservationMode::RawRadar,
    ] {
        let mut c = ScenarioConfig::load("medium").unwrap();
        c.observation.mode = mode;
        let mut env = InterceptEnv::new(&c).unwrap();
        let (mut obs, act, mut info) = buffers(&env);
        env.reset(Some(4), (&mut obs).into(), &mut info).unwrap();
        for _ in 0..30 {
            env.step(&act, (&mut obs).into(), &mut info).unwrap();
        }
        let mut before = vec![0.0f32; obs.len()];
        env.observe(&mut before);
        assert_eq!(before, obs);
        let e = env.engagement_mut();
        e.threat.state.position_m += Vec3::new(500.0, -300.0, 200.0);
        e.threat.state.velocity_mps += Vec3::new(50.0, 20.0, -10.0);
        let mut after = vec![0.0f32; obs.len()];
        env.observe(&mut after);
        assert_eq!(
            before.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            after.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "{mode:?}"
        );
        assert!(before.iter().any(|&x| x != 0.0));
        // The own state, by contrast, is read afresh after an edit.
        if let hlynr_intercept::interceptor::Interceptor::Aero(a) =
            &mut env.engagement_mut().interceptor
        {
            a.state.velocity_mps *= 1.1;
        }
        env.observe(&mut after);
        assert_ne!(before, after, "{mode:?}");
    }
}

#[test]
fn observations_are_finite_for_random_actions() {
    for name in ["easy", "medium", "hard", "extreme", "legacy"] {
        for mode in [
            ObservationMode::Los,
            ObservationMode::World,
            ObservationMode::Body,
            ObservationMode::RawRadar,
        ] {
            let mut c = ScenarioConfig::load(name).unwrap();
            c.observation.mode = mode;
            let mut env = InterceptEnv::new(&c).unwrap();
            let (mut obs, mut act, mut info) = buffers(&env);
            let mut rng = Rng::seed_from_u64(77);
            let episodes = if mode == ObservationMode::Los {
                100
            } else {
                25
            };
            for ep in 0..episodes {
                env.reset(Some(ep), (&mut obs).into(), &mut info).unwrap();
                loop {
                    env.action_space().sample(&mut rng, &mut act);
                    info.clear();
                    let s = env.step(&act, (&mut obs).into(), &mut info).unwrap();
                    assert!(
                        obs.iter().all(|x| x.is_finite() && x.abs() <= 5.0),
                        "{name} {mode:?} episode {ep}: {obs:?}"
                    );
                    assert!(s.reward.is_finite());
                    if s.done() {
                        break;
                    }
                }
            }
        }
    }
}

#[test]
fn success_is_the_miss_within_the_kill_radius() {
    let c = ScenarioConfig::load("easy").unwrap();
    let mut env = InterceptEnv::new(&c).unwrap();
    let mut pn = make_policy("zem-pn", &c).unwrap();
    let (mut obs, mut act, mut info) = buffers(&env);
    let mut view = vec![0.0; env.controller_view_dim()];
    let mut outcomes = [0, 0];
    for seed in 0..20 {
        env.reset(Some(seed), (&mut obs).into(), &mut info).unwrap();
        pn.reset_rows(&[0]);
        let zero = seed % 2 == 0;
        loop {
            if zero {
                act.fill(0.0);
            } else {
                env.write_controller_view(&mut view);
                pn.act(
                    &PolicyInput {
                        n: 1,
                        obs: &obs,
                        obs_bytes: &[],
                        controller_view: &view,
                    },
                    true,
                    &mut act,
                )
                .unwrap();
            }
            info.clear();
            if env.step(&act, (&mut obs).into(), &mut info).unwrap().done() {
                break;
            }
        }
        let miss = info.get("miss_distance_m").unwrap();
        assert_eq!(miss, env.miss_distance_m());
        assert_eq!(info.is_success, Some(miss <= c.kill_radius_m));
        assert!(info.get("final_distance_m").unwrap() >= miss);
        for key in [
            "time_to_intercept_s",
            "track_lost_s",
            "energy_used",
            "termination_reason",
        ] {
            assert!(info.get(key).is_some(), "{key}");
        }
        outcomes[usize::from(info.is_success == Some(true))] += 1;
    }
    // Both outcomes occur, so the check above exercised both branches.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn cpa_terminates_a_known_fly_by_with_the_exact_miss() {
    // Zero maneuvers, no wind: replace the drawn geometry with a straight
    // fly-by. The interceptor coasts at 600 m/s along +y at 3 km altitude
    // after burnout; the threat flies -y at 250 m/s, offset 7 m east.
    let c = ScenarioConfig::load("easy").unwrap();
    let mut env = InterceptEnv::new(&c).unwrap();
    let (mut obs, act, mut info) = buffers(&env);
    env.reset(Some(1), (&mut obs).into(), &mut info).unwrap();
    let e = env.engagement_mut();
    e.time_s = 20.0; // motor burnt out: no thrust
    if let hlynr_intercept::interceptor::Interceptor::Aero(a) = &mut e.interceptor {
        a.state.position_m = Vec3::new(0.0, 0.0, 3000.0);
        a.state.velocity_mps = Vec3::new(0.0, 600.0, 0.0);
        a.state.mass_kg = a.params.burnout_mass_kg;
        a.state.lateral_accel_mps2 = Vec3::ZERO;
    }
    e.threat.state.position_m = Vec3::new(7.0, 1700.0, 3000.0);
    e.threat.state.velocity_mps = Vec3::new(0.0, -250.0, 0.0);
    e.threat.maneuver = hlynr_intercept::threat::Maneuver::none();
    e.threat.motion = hlynr_intercept::threat::ThreatMotion::Cruise {
        speed_mps: 250.0,
        altitude_hold: None,
    };
    let mut steps = 0;
    // Relative position (threat - interceptor) before and after the last step.
    let mut before = env.engagement().relative_position_m();
    let mut after = before;
    loop {
        steps += 1;
        info.clear();
        before = after;
        let s = env.step(&act, (&mut obs).into(), &mut info).unwrap();
        after = env.engagement().relative_position_m();
        if s.done() {
            assert!(s.terminated && !s.truncated);
            break;
        }
        assert!(steps < 100);
    }
    assert_eq!(env.termination_reason(), TerminationReason::Cpa);
    let miss = info.get("miss_distance_m").unwrap();
    // The closest approach recomputed from the two recorded positions: the
    // distance from the origin to the segment between them. The episode ends
    // on the physics step where closing turns to opening, here the first of
    // the last decision, so the segment is that one 10 ms step, over which
    // relative motion is a straight line to rounding.
    let d = after - before;
    let s = (-before.dot(d) / d.dot(d)).clamp(0.0, 1.0);
    assert!(s > 0.0 && s < 1.0, "the pass is inside the last step ({s})");
    let at_pass = before + d * s;
    let closest = at_pass.norm();
    assert!(
        (miss - closest).abs() < 1e-6,
        "miss {miss} m, recomputed {closest} m"
    );
    // It is the 7 m east offset combined with the interceptor's drop below
    // the threat's altitude, which gravity makes under 0.5 g0 t^2 (drag on the
    // descending interceptor holds it up a little).
    let t = info.get("time_to_intercept_s").unwrap() - 20.0;
    let free_fall = 0.5 * G0_MPS2 * t * t;
    assert!((at_pass.x - 7.0).abs() < 0.01, "east offset {}", at_pass.x);
    assert!(
        at_pass.z > 0.8 * free_fall && at_pass.z < free_fall,
        "drop {} m in {t} s",
        at_pass.z
    );
    let t_ca = info.get("time_to_intercept_s").unwrap();
    // Drag slows the coasting interceptor, so the pass comes a little later
    // than at the initial closing speed of 850 m/s.
    assert!(
        t_ca > 20.0 + 1700.0 / 850.0 && t_ca < 20.0 + 1700.0 / 750.0,
        "t_ca {t_ca}"
    );
    assert!(info.get("final_distance_m").unwrap() > miss);
}

#[test]
fn policies_reject_unknown_names_with_a_suggestion() {
    let c = ScenarioConfig::load("easy").unwrap();
    let err = make_policy("zem-pm", &c).err().unwrap().to_string();
    assert!(err.contains("zem-pn"), "{err}");
    for name in hlynr_intercept::policies::POLICY_NAMES {
        make_policy(name, &c).unwrap();
    }
}

#[test]
fn oracle_view_carries_truth_and_normal_view_the_estimate() {
    let mut c = ScenarioConfig::load("medium").unwrap();
    let mut env = InterceptEnv::new(&c).unwrap();
    let (mut obs, act, mut info) = buffers(&env);
    env.reset(Some(2), (&mut obs).into(), &mut info).unwrap();
    for _ in 0..10 {
        env.step(&act, (&mut obs).into(), &mut info).unwrap();
    }
    let mut view = vec![0.0; env.controller_view_dim()];
    env.write_controller_view(&mut view);
    let v = hlynr_intercept::observation::ControllerView::read(&view).unwrap();
    assert_eq!(v.target_position_m, env.estimate().position_m());
    c.oracle = true;
    let mut oracle = InterceptEnv::new(&c).unwrap();
    oracle.reset(Some(2), (&mut obs).into(), &mut info).unwrap();
    for _ in 0..10 {
        oracle.step(&act, (&mut obs).into(), &mut info).unwrap();
    }
    oracle.write_controller_view(&mut view);
    let v = hlynr_intercept::observation::ControllerView::read(&view).unwrap();
    assert_eq!(
        v.target_position_m,
        oracle.engagement().threat.state.position_m
    );
}
