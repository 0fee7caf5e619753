//! The `raw_radar` observation: layout, the new-detection flag and the
//! detection age against the radar and decision rates, dropouts, the
//! features against the delivered detection, independence from the tracker,
//! config parsing, determinism and the unchanged baselines.

use hlynr_env::{Env, Info, PolicyInput};
use hlynr_intercept::observation::{observation_dim, velocity_frame};
use hlynr_intercept::radar::Detection;
use hlynr_intercept::radar::spherical_to_cartesian;
use hlynr_intercept::scenario::{ActionMode, ObservationMode};
use hlynr_intercept::{InterceptEnv, ScenarioConfig, Vec3, make_policy};

/// Indices of the `aero` (A = 2) layout.
const VALID: usize = 0;
const NEW: usize = 1;
const AGE: usize = 2;
const MISSED: usize = 3;
const LOG_RANGE: usize = 4;
const DIRECTION: usize = 5;
const DIRECTION_LAUNCH: usize = 8;
const RANGE_RATE: usize = 11;
const RADAR_LOS_LAUNCH: usize = 12;
const VELOCITY_VALID: usize = 15;
const RELATIVE_VELOCITY: usize = 16;
const OWN_VELOCITY_LAUNCH: usize = 19;
const ALTITUDE: usize = 25;
const CLIMB_RATE: usize = 26;
const TIME: usize = 28;

fn raw_radar(tier: &str, edit: impl Fn(&mut ScenarioConfig)) -> InterceptEnv {
    let mut c = ScenarioConfig::load(tier).unwrap();
    c.observation.mode = ObservationMode::RawRadar;
    edit(&mut c);
    InterceptEnv::new(&c).unwrap()
}

fn buffers(env: &InterceptEnv) -> (Vec<f32>, Vec<f32>, Info) {
    (
        vec![0.0; env.observation_space().flat_dim()],
        vec![0.0; env.action_space().flat_dim()],
        Info::default(),
    )
}

/// The observations of one episode with a constant action (reset included).
fn episode(env: &mut InterceptEnv, seed: u64, action: &[f32], max_steps: usize) -> Vec<Vec<f32>> {
    let (mut obs, _, mut info) = buffers(env);
    env.reset(Some(seed), (&mut obs).into(), &mut info).unwrap();
    let mut out = vec![obs.clone()];
    for _ in 0..max_steps {
        info.clear();
        let s = env.step(action, (&mut obs).into(), &mut info).unwrap();
        out.push(obs.clone());
        if s.done() {
            break;
        }
    }
    out
}

#[test]
fn layout_length_matches_observation_dim() {
    for (tier, act_dim) in [("easy", 2), ("medium", 2), ("legacy", 3)] {
        let mut env = raw_radar(tier, |_| {});
        let dim = observation_dim(ObservationMode::RawRadar, act_dim);
        assert_eq!(dim, 27 + 2 * act_dim);
        assert_eq!(env.observation_space().flat_dim(), dim, "{tier}");
        assert_eq!(env.action_space().flat_dim(), act_dim, "{tier}");
        let (mut obs, act, mut info) = buffers(&env);
        env.reset(Some(1), (&mut obs).into(), &mut info).unwrap();
        env.step(&act, (&mut obs).into(), &mut info).unwrap();
        assert!(obs.iter().all(|x| x.is_finite()));
        // The previous action closes the layout.
        let act: Vec<f32> = (0..act_dim).map(|i| 0.25 + 0.125 * i as f32).collect();
        env.step(&act, (&mut obs).into(), &mut info).unwrap();
        assert_eq!(&obs[dim - act_dim..], &act[..], "{tier}");
    }
}

#[test]
fn slow_radar_repeats_the_detection_with_growing_age() {
    // 5 Hz radar, 20 Hz decisions, no latency: a detection arrives on every
    // fourth decision and ages by one decision period (0.05 s) in between.
    let mut env = raw_radar("easy", |c| c.radar.update_rate_hz = 5.0);
    let obs = episode(&mut env, 3, &[0.0, 0.0], 40);
    assert!(obs.len() > 40);
    let mut flagged = 0;
    for (k, o) in obs.iter().enumerate() {
        assert_eq!(o[VALID], 1.0, "step {k}");
        let expected_age = 0.05 * (k % 4) as f32;
        assert!(
            (o[AGE] - expected_age).abs() < 1e-5,
            "step {k}: age {}",
            o[AGE]
        );
        assert_eq!(o[NEW], if k % 4 == 0 { 1.0 } else { 0.0 }, "step {k}");
        assert_eq!(o[MISSED], 0.0, "step {k}");
        assert!((o[TIME] - 0.005 * k as f32).abs() < 1e-5, "step {k}");
        flagged += usize::from(o[NEW] == 1.0);
        if k % 4 != 0 {
            // The repeated detection keeps its range rate and radar line of
            // sight; only the own-motion-dependent features move.
            assert_eq!(o[RANGE_RATE], obs[k - 1][RANGE_RATE]);
        }
    }
    assert_eq!(flagged, obs.len().div_ceil(4));
}

#[test]
fn latency_shows_as_age_at_arrival() {
    // 5 Hz radar with 50 ms latency: the scan at 0 arrives at the first
    // decision (0.05 s), already 0.05 s old.
    let mut env = raw_radar("easy", |c| {
        c.radar.update_rate_hz = 5.0;
        c.radar.latency_ms = 50.0;
    });
    let obs = episode(&mut env, 3, &[0.0, 0.0], 20);
    assert_eq!(obs[0][VALID], 0.0, "nothing has arrived at reset");
    assert!(obs[0][1..OWN_VELOCITY_LAUNCH].iter().all(|&x| x == 0.0));
    for (k, o) in obs.iter().enumerate().skip(1) {
        let expected_age = 0.05 * (1 + (k - 1) % 4) as f32;
        assert!(
            (o[AGE] - expected_age).abs() < 1e-5,
            "step {k}: age {}",
            o[AGE]
        );
        assert_eq!(o[NEW], if k % 4 == 1 { 1.0 } else { 0.0 }, "step {k}");
    }
}

#[test]
fn fast_radar_shows_the_latest_of_several_detections() {
    // 50 Hz radar, 20 Hz decisions: two or three detections per decision;
    // the latest is at most one physics step (0.01 s) old.
    let mut env = raw_radar("easy", |_| {});
    let obs = episode(&mut env, 5, &[0.0, 0.0], 60);
    for (k, o) in obs.iter().enumerate() {
        assert_eq!(o[NEW], 1.0, "step {k}");
        assert!(o[AGE] <= 0.010_001, "step {k}: age {}", o[AGE]);
    }
    assert!(obs.iter().any(|o| o[AGE] > 0.005));
}

/// Fractions of flagged decisions, decisions with missed updates and the
/// largest age over a few episodes of the medium tier's 20 Hz radar.
fn dropout_stats(detection_probability: f64) -> (f64, f64, f32) {
    let mut env = raw_radar("medium", |c| {
        c.radar.detection_probability = detection_probability;
        c.radar.latency_ms = 0.0;
        c.radar.link_loss_probability = 0.0;
    });
    let (mut flagged, mut missed, mut steps, mut max_age) = (0, 0, 0, 0.0f32);
    for seed in 0..4 {
        // The final decision of an episode may end before its scan is due.
        let obs = episode(&mut env, seed, &[0.0, 0.0], 200);
        for o in &obs[1..obs.len() - 1] {
            if o[VALID] == 0.0 {
                continue;
            }
            steps += 1;
            flagged += usize::from(o[NEW] == 1.0);
            missed += usize::from(o[MISSED] > 0.0);
            max_age = max_age.max(o[AGE]);
            // Age and missed updates tell the same story at 20 Hz.
            let periods = (o[AGE] / 0.05 + 1e-3).floor();
            assert!((o[MISSED] * 10.0 - periods).abs() < 1e-3, "{o:?}");
        }
    }
    (
        flagged as f64 / steps as f64,
        missed as f64 / steps as f64,
        max_age,
    )
}

#[test]
fn detection_dropouts_show_in_age_and_missed_updates() {
    let (flagged, missed, max_age) = dropout_stats(1.0);
    assert_eq!(flagged, 1.0);
    assert_eq!(missed, 0.0);
    assert!(max_age < 1e-6, "{max_age}");
    let (flagged, missed, max_age) = dropout_stats(0.5);
    assert!((0.4..0.6).contains(&flagged), "flagged {flagged}");
    assert!((missed - (1.0 - flagged)).abs() < 1e-12);
    // Runs of misses: P(4 in a row) = 1/16 per decision over hundreds.
    assert!(max_age >= 0.2 - 1e-5, "max age {max_age}");
}

#[test]
fn features_are_the_delivered_detection_relative_to_the_interceptor() {
    // No wind on easy: the velocity frame is the inertial velocity's.
    let mut env = raw_radar("easy", |c| c.radar.range_rate_enabled = true);
    let c = env.config().clone();
    let (mut obs, _, mut info) = buffers(&env);
    env.reset(Some(8), (&mut obs).into(), &mut info).unwrap();
    // The launch frame is fixed at the velocity the interceptor launched with.
    let launch_frame = velocity_frame(env.engagement().interceptor.velocity_mps().unit_or_zero());
    let r_kill = c.kill_radius_m;
    let scale = (c.observation.max_range_m / r_kill).ln();
    for k in 0..80 {
        if env
            .step(&[0.2, -0.1], (&mut obs).into(), &mut info)
            .unwrap()
            .done()
        {
            break;
        }
        let det = *env.radar_feed().latest().unwrap();
        let e = env.engagement();
        let own = e.interceptor.position_m();
        let measured = detected(&det);
        let d = measured - own;
        let range = r_kill * (f64::from(obs[LOG_RANGE]) * scale).exp();
        assert!(
            (range - d.norm()).abs() < 1e-4 * d.norm(),
            "step {k}: {range} vs {}",
            d.norm()
        );
        let v_m = e.interceptor.velocity_mps();
        let vf = velocity_frame(v_m.unit_or_zero());
        let u = d.unit_or_zero();
        let radar_los = Vec3::new(
            det.elevation_rad.cos() * det.azimuth_rad.sin(),
            det.elevation_rad.cos() * det.azimuth_rad.cos(),
            det.elevation_rad.sin(),
        );
        // The two-point velocity of the detected position, relative to the
        // interceptor: the previous detection is one radar period older.
        let prev = *env.radar_feed().previous().unwrap();
        let dt = det.time_s - prev.time_s;
        assert!(
            (dt - 0.02).abs() < 1e-9,
            "step {k}: {dt} s between detections"
        );
        let v_det = (measured - detected(&prev)) / dt;
        assert_eq!(obs[VELOCITY_VALID], 1.0);
        for (i, (axis, fixed)) in [
            (vf.0, launch_frame.0),
            (vf.1, launch_frame.1),
            (vf.2, launch_frame.2),
        ]
        .into_iter()
        .enumerate()
        {
            let close = |index: usize, expected: f64| {
                let got = f64::from(obs[index + i]);
                assert!(
                    (got - expected).abs() < 1e-5,
                    "step {k}, index {}: {got} vs {expected}",
                    index + i
                );
            };
            close(DIRECTION, u.dot(axis));
            close(DIRECTION_LAUNCH, u.dot(fixed));
            close(RADAR_LOS_LAUNCH, radar_los.dot(fixed));
            close(RELATIVE_VELOCITY, (v_det - v_m).dot(axis) / 1000.0);
            close(OWN_VELOCITY_LAUNCH, v_m.dot(fixed) / 1000.0);
        }
        let rdot = det.range_rate_mps.unwrap() / 1000.0;
        assert!((f64::from(obs[RANGE_RATE]) - rdot).abs() < 1e-6);
        // It is a measurement of the threat: without latency and at 50 Hz it
        // was acquired this physics step, within a few noise sigmas.
        let truth = e.threat.state.position_m;
        let sigma = det.sigma.range_m + det.range_m.unwrap() * det.sigma.azimuth_rad;
        let err = (measured - truth).norm();
        assert!(err < 6.0 * sigma + 1.0, "step {k}: error {err} m");
        assert!(err > 0.0, "noise-free detection");
        // The unfiltered difference of two such detections: the threat's
        // velocity with the noise of both, divided by the 20 ms between them.
        let v_err = (v_det - e.threat.state.velocity_mps).norm();
        assert!(
            v_err < 6.0 * 2f64.sqrt() * sigma / dt + 5.0,
            "step {k}: velocity error {v_err} m/s"
        );
        assert!(v_err > 0.0, "noise-free velocity");
    }
}

/// The position a detection places the threat at (m).
fn detected(det: &Detection) -> Vec3 {
    let (offset, _) = spherical_to_cartesian(
        det.range_m.unwrap(),
        det.azimuth_rad,
        det.elevation_rad,
        &det.sigma,
    );
    det.sensor_position_m + offset
}

#[test]
fn tracker_settings_do_not_reach_the_raw_radar_observation() {
    // A direct-action env flown with a constant action never consults the
    // tracker, so the trajectory and the detections are identical; only the
    // tracker-based `los` observation may depend on the filter.
    let run = |mode: ObservationMode, sa_mps2: f64| {
        let mut c = ScenarioConfig::load("medium").unwrap();
        c.observation.mode = mode;
        c.tracker.sa_mps2 = sa_mps2;
        let mut env = InterceptEnv::new(&c).unwrap();
        episode(&mut env, 6, &[0.1, 0.0], 80)
            .concat()
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        run(ObservationMode::RawRadar, 5.0),
        run(ObservationMode::RawRadar, 500.0)
    );
    assert_ne!(
        run(ObservationMode::Los, 5.0),
        run(ObservationMode::Los, 500.0)
    );
}

#[test]
fn config_value_parses_and_unknown_values_are_rejected() {
    let (c, resolved) =
        ScenarioConfig::from_yaml("{}", "t", &["observation.mode=raw_radar"]).unwrap();
    assert_eq!(c.observation.mode, ObservationMode::RawRadar);
    assert_eq!(resolved["observation"]["mode"], "raw_radar");
    let (c, _) =
        ScenarioConfig::from_yaml::<&str>("observation:\n  mode: raw_radar\n", "t", &[]).unwrap();
    assert_eq!(c.observation.mode, ObservationMode::RawRadar);
    let err = ScenarioConfig::from_yaml("{}", "t", &["observation.mode=raw_rader"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("observation.mode") && err.contains("raw_radar"),
        "{err}"
    );
    let err = ScenarioConfig::from_yaml(
        "{}",
        "t",
        &["observation.mode=raw_radar", "action.mode=residual"],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("action.mode") && err.contains("raw_radar"),
        "{err}"
    );
    let mut c = ScenarioConfig::load("easy").unwrap();
    c.observation.mode = ObservationMode::RawRadar;
    c.action.mode = ActionMode::Residual;
    assert!(InterceptEnv::new(&c).is_err());
}

#[test]
fn same_seed_same_observations_and_state_round_trip() {
    let mut a = raw_radar("medium", |_| {});
    let mut b = raw_radar("medium", |_| {});
    let act = [0.3f32, -0.2];
    let bits = |o: Vec<Vec<f32>>| o.concat().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let oa = bits(episode(&mut a, 42, &act, 120));
    assert_eq!(oa, bits(episode(&mut b, 42, &act, 120)));
    assert_ne!(oa, bits(episode(&mut b, 43, &act, 120)));

    // The feed is part of the saved state: a restored env continues exactly.
    let (mut obs, _, mut info) = buffers(&a);
    a.reset(Some(9), (&mut obs).into(), &mut info).unwrap();
    for _ in 0..15 {
        a.step(&act, (&mut obs).into(), &mut info).unwrap();
    }
    let saved = a.state();
    let mut rest = Vec::new();
    for _ in 0..30 {
        a.step(&act, (&mut obs).into(), &mut info).unwrap();
        rest.push(obs.clone());
    }
    let mut c = raw_radar("medium", |_| {});
    c.set_state(&saved).unwrap();
    for o in &rest {
        c.step(&act, (&mut obs).into(), &mut info).unwrap();
        assert_eq!(&obs, o);
    }
}

#[test]
fn baselines_fly_the_same_episodes_in_every_observation_mode() {
    // The controller view is the tracker's in every mode, so ZEM-PN's misses
    // on raw_radar equal its misses on los, bit for bit.
    let misses = |mode: ObservationMode| {
        let mut c = ScenarioConfig::load("easy").unwrap();
        c.observation.mode = mode;
        let mut env = InterceptEnv::new(&c).unwrap();
        let mut pn = make_policy("zem-pn", &c).unwrap();
        let (mut obs, mut act, mut info) = buffers(&env);
        let mut view = vec![0.0; env.controller_view_dim()];
        let mut out = Vec::new();
        for seed in 0..6 {
            env.reset(Some(seed), (&mut obs).into(), &mut info).unwrap();
            pn.reset_rows(&[0]);
            loop {
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
                info.clear();
                if env.step(&act, (&mut obs).into(), &mut info).unwrap().done() {
                    break;
                }
            }
            out.push(info.get("miss_distance_m").unwrap().to_bits());
        }
        out
    };
    let raw = misses(ObservationMode::RawRadar);
    assert_eq!(raw, misses(ObservationMode::Los));
    // Easy-tier ZEM-PN hits: the baseline really flew on the tracker.
    assert!(raw.iter().all(|&m| f64::from_bits(m) < 20.0), "{raw:?}");
}

#[test]
fn own_state_features_follow_the_interceptor() {
    let mut env = raw_radar("easy", |_| {});
    let (mut obs, _, mut info) = buffers(&env);
    env.reset(Some(2), (&mut obs).into(), &mut info).unwrap();
    for _ in 0..30 {
        env.step(&[0.0, 0.5], (&mut obs).into(), &mut info).unwrap();
    }
    let e = env.engagement();
    let v = e.interceptor.velocity_mps();
    let p = e.interceptor.position_m();
    // Own velocity in the launch frame keeps its speed and has turned away
    // from the launch axis under the commanded lateral acceleration.
    let own = &obs[OWN_VELOCITY_LAUNCH..OWN_VELOCITY_LAUNCH + 3];
    let speed = own
        .iter()
        .map(|&x| f64::from(x).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!((speed - v.norm() / 1000.0).abs() < 1e-6);
    assert!(f64::from(own[0]) < speed - 1e-4, "{own:?}");
    assert!((f64::from(obs[ALTITUDE]) - p.z / 10_000.0).abs() < 1e-6);
    assert!((f64::from(obs[CLIMB_RATE]) - v.z / 300.0).abs() < 1e-6);
    assert!((f64::from(obs[TIME]) - e.time_s / 10.0).abs() < 1e-6);
}
