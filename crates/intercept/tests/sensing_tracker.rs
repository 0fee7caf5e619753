//! Tracker: consistency (NEES/NIS), predict-every-step regression (B4), latency,
//! covariance health, track life cycle, determinism.

use hlynr_intercept::Vec3;
use hlynr_intercept::linalg;
use hlynr_intercept::radar::{GroundRadar, TargetTruth};
use hlynr_intercept::seeker::{OwnState, Seeker};
use hlynr_intercept::sensor_config::{MotionModelKind, RadarConfig, SeekerConfig, TrackerConfig};
use hlynr_intercept::tracker::{Estimate, Tracker};
use hlynr_rng::Rng;

const G: Vec3 = Vec3::new(0.0, 0.0, -9.80665);

fn radar_cfg(rate_hz: f64, sigma_r: f64, sigma_a_mrad: f64) -> RadarConfig {
    RadarConfig {
        update_rate_hz: rate_hz,
        sigma_range_m: sigma_r,
        sigma_azimuth_mrad: sigma_a_mrad,
        sigma_elevation_mrad: sigma_a_mrad,
        position_m: [0.0, 0.0, 0.0],
        min_range_m: 10.0,
        max_elevation_deg: 89.0,
        min_elevation_deg: -10.0,
        ..Default::default()
    }
}

/// Estimation error `x_true - x_hat` (position, velocity) and its NEES.
fn nees(e: &Estimate, truth: &TargetTruth) -> f64 {
    let dp = truth.position_m - e.position_m();
    let dv = truth.velocity_mps - e.velocity_mps();
    let err = [dp.x, dp.y, dp.z, dv.x, dv.y, dv.z];
    linalg::quad_form_inv_n(e.pos_vel_covariance(), 6, &err).expect("covariance is PD")
}

/// Monte-Carlo run of a CV-DWNA truth (acceleration piecewise constant over each
/// radar period with std `sa_truth`) tracked by a CV filter with `sa_filter`.
/// Returns per-step NEES and NIS averaged over runs.
fn monte_carlo(sa_truth: f64, sa_filter: f64, runs: usize, steps: usize) -> (Vec<f64>, Vec<f64>) {
    let period = 0.1;
    let mut nees_sum = vec![0.0; steps];
    let mut nis_sum = vec![0.0; steps];
    for run in 0..runs {
        let mut rng = Rng::from_stream(2024, run as u64);
        let mut radar = GroundRadar::new(&radar_cfg(10.0, 5.0, 1.0)).unwrap();
        radar.reset(
            0.0,
            Rng::from_stream(7, run as u64),
            Rng::from_stream(8, run as u64),
        );
        let mut tracker = Tracker::new(
            &TrackerConfig {
                model: MotionModelKind::Cv,
                sa_mps2: sa_filter,
                gate_enabled: false,
                coast_timeout_s: 10.0,
                ..Default::default()
            },
            G,
        )
        .unwrap();
        let mut truth = TargetTruth {
            position_m: Vec3::new(4000.0, 5000.0, 2000.0),
            velocity_mps: Vec3::new(-150.0, -100.0, 10.0),
        };
        for k in 0..steps + 2 {
            let t = k as f64 * period;
            radar.poll(t, &truth);
            let mut dets = Vec::new();
            while let Some(d) = radar.pop_ready(t) {
                dets.push(d);
            }
            let e = tracker.step(t, &dets);
            if k >= 2 {
                assert!(e.track_valid());
                nees_sum[k - 2] += nees(&e, &truth);
                let (nis, dof) = e.last_nis();
                assert_eq!(dof, 3);
                nis_sum[k - 2] += nis;
            }
            // DWNA truth: a held for one period.
            let a = Vec3::new(rng.normal(), rng.normal(), rng.normal()) * sa_truth;
            truth.position_m += truth.velocity_mps * period + a * (0.5 * period * period);
            truth.velocity_mps += a * period;
        }
    }
    (
        nees_sum.iter().map(|s| s / runs as f64).collect(),
        nis_sum.iter().map(|s| s / runs as f64).collect(),
    )
}

#[test]
fn nees_and_nis_are_consistent_and_under_tuning_is_detected() {
    let runs = 50;
    let steps = 150;
    let (nees_avg, nis_avg) = monte_carlo(20.0, 20.0, runs, steps);
    let inside = |v: &[f64], lo: f64, hi: f64| {
        let tail = &v[10..];
        tail.iter().filter(|x| **x >= lo && **x <= hi).count() as f64 / tail.len() as f64
    };
    let f_nees = inside(&nees_avg, 5.08, 7.00);
    let f_nis = inside(&nis_avg, 2.36, 3.72);
    let mean_nees = nees_avg[10..].iter().sum::<f64>() / (steps - 10) as f64;
    assert!(
        f_nees >= 0.9,
        "NEES inside bounds {f_nees}, mean {mean_nees}"
    );
    assert!(f_nis >= 0.9, "NIS inside bounds {f_nis}");
    // Negative test: process noise scaled by 0.1 in the filter only.
    let (bad, _) = monte_carlo(20.0, 2.0, runs, steps);
    let above = bad[10..].iter().filter(|x| **x > 7.0).count() as f64 / (steps - 10) as f64;
    assert!(
        above > 0.9,
        "under-tuned filter must exceed the NEES bound: {above}"
    );
}

/// Tracks a constant-velocity target with a detection on every 100 Hz step.
fn track_cv_every_step(model: MotionModelKind, latency_ms: f64) -> (Vec3, Vec3, f64) {
    let dt = 0.01;
    let mut radar = GroundRadar::new(&RadarConfig {
        update_rate_hz: 100.0,
        latency_ms,
        ..radar_cfg(100.0, 2.0, 0.5)
    })
    .unwrap();
    let mut sum_pos = Vec3::ZERO;
    let mut sum_vel = Vec3::ZERO;
    let mut max_pos = 0.0f64;
    let runs = 20;
    for run in 0..runs {
        radar.reset(0.0, Rng::from_stream(5, run), Rng::from_stream(6, run));
        let mut tracker = Tracker::new(
            &TrackerConfig {
                model,
                sa_mps2: 5.0,
                singer_sm_mps2: 5.0,
                ..Default::default()
            },
            G,
        )
        .unwrap();
        let p0 = Vec3::new(3000.0, 2000.0, 1500.0);
        let v = Vec3::new(-250.0, 40.0, -5.0);
        let mut last = None;
        for k in 0..=400 {
            let t = k as f64 * dt;
            let truth = TargetTruth {
                position_m: p0 + v * t,
                velocity_mps: v,
            };
            radar.poll(t, &truth);
            let mut dets = Vec::new();
            while let Some(d) = radar.pop_ready(t) {
                dets.push(d);
            }
            let e = tracker.step(t, &dets);
            if k >= 300 {
                max_pos = max_pos.max((e.position_m() - truth.position_m).norm());
            }
            last = Some((e, truth));
        }
        let (e, truth) = last.unwrap();
        assert!(e.track_valid());
        assert!((e.time_s() - 4.0).abs() < 1e-12);
        sum_pos += e.position_m() - truth.position_m;
        sum_vel += e.velocity_mps() - truth.velocity_mps;
    }
    (sum_pos / runs as f64, sum_vel / runs as f64, max_pos)
}

#[test]
fn predicts_every_step_constant_velocity_target_converges_without_bias() {
    // Defect B4 regression: with a detection on every step, a filter that skipped
    // the prediction on detected steps would lag by about a step of motion (2.5 m)
    // and its velocity would be far off.
    let (bias_p, bias_v, max_p) = track_cv_every_step(MotionModelKind::Cv, 0.0);
    assert!(bias_p.norm() < 0.5, "position bias {bias_p:?}");
    assert!(bias_v.norm() < 1.0, "velocity bias {bias_v:?}");
    assert!(max_p < 5.0, "position error {max_p}");
    let (bias_p, bias_v, _) = track_cv_every_step(MotionModelKind::Singer, 0.0);
    assert!(bias_p.norm() < 0.5, "Singer position bias {bias_p:?}");
    assert!(bias_v.norm() < 1.5, "Singer velocity bias {bias_v:?}");
}

#[test]
fn latency_is_compensated_in_the_output() {
    // 100 ms latency is 25 m of target motion: the estimate at the current time
    // must still be unbiased because updates happen at the acquisition time and
    // the output is predicted forward.
    let (bias_p, bias_v, max_p) = track_cv_every_step(MotionModelKind::Cv, 100.0);
    assert!(bias_p.norm() < 0.7, "position bias with latency {bias_p:?}");
    assert!(bias_v.norm() < 1.0, "velocity bias with latency {bias_v:?}");
    assert!(max_p < 6.0, "position error with latency {max_p}");
}

#[test]
fn covariance_stays_symmetric_positive_definite_over_long_runs() {
    for model in [MotionModelKind::Cv, MotionModelKind::Singer] {
        // Very accurate measurements at a high rate are where the short-form update
        // loses definiteness.
        let mut radar = GroundRadar::new(&RadarConfig {
            range_rate_enabled: true,
            sigma_range_rate_mps: 0.01,
            ..radar_cfg(100.0, 0.01, 0.01)
        })
        .unwrap();
        radar.reset(0.0, Rng::seed_from_u64(1), Rng::seed_from_u64(2));
        let mut tracker = Tracker::new(
            &TrackerConfig {
                model,
                sa_mps2: 3.0,
                singer_sm_mps2: 3.0,
                singer_tau_s: 20.0,
                gate_enabled: false,
                ..Default::default()
            },
            G,
        )
        .unwrap();
        let p0 = Vec3::new(2000.0, 3000.0, 1000.0);
        let v = Vec3::new(-100.0, -60.0, 0.0);
        for k in 0..20_000 {
            let t = k as f64 * 0.01;
            // A gentle turn so the geometry keeps changing.
            let w = 0.02;
            let truth = TargetTruth {
                position_m: p0
                    + Vec3::new(v.x * (w * t).sin() / w, v.y * t, 50.0 * (0.1 * t).sin()),
                velocity_mps: Vec3::new(v.x * (w * t).cos(), v.y, 5.0 * (0.1 * t).cos()),
            };
            radar.poll(t, &truth);
            let mut dets = Vec::new();
            while let Some(d) = radar.pop_ready(t) {
                dets.push(d);
            }
            tracker.step(t, &dets);
            if k > 2 && (k % 997 == 0 || k == 19_999) {
                let s = tracker
                    .filter_state()
                    .unwrap_or_else(|| panic!("track lost at {k}: {:?}", tracker.stats()));
                assert_eq!(linalg::max_asymmetry_n(&s.p, s.n), 0.0);
                assert!(
                    linalg::cholesky_n(&s.p, s.n).is_some(),
                    "{model:?} step {k}: P not PD"
                );
            }
        }
        assert!(
            tracker.stats().updates > 19_000,
            "{model:?}: {:?}",
            tracker.stats()
        );
    }
}

fn detection_at(t: f64, p: Vec3, sigma_r: f64) -> hlynr_intercept::radar::Detection {
    let s = hlynr_intercept::radar::spherical(p, Vec3::ZERO);
    hlynr_intercept::radar::Detection {
        time_s: t,
        sensor: hlynr_intercept::radar::SensorKind::Radar,
        sensor_position_m: Vec3::ZERO,
        sensor_velocity_mps: Vec3::ZERO,
        range_m: Some(s.range_m),
        azimuth_rad: s.azimuth_rad,
        elevation_rad: s.elevation_rad,
        range_rate_mps: None,
        sigma: hlynr_intercept::radar::MeasurementSigma {
            range_m: sigma_r,
            azimuth_rad: 1e-3,
            elevation_rad: 1e-3,
            range_rate_mps: 0.0,
        },
    }
}

#[test]
fn track_needs_two_detections_and_drops_after_the_coast_timeout() {
    let mut tr = Tracker::new(
        &TrackerConfig {
            coast_timeout_s: 1.0,
            ..Default::default()
        },
        G,
    )
    .unwrap();
    let p = |t: f64| Vec3::new(1000.0 + 100.0 * t, 2000.0, 500.0);
    let e = tr.step(0.0, &[detection_at(0.0, p(0.0), 1.0)]);
    assert!(!e.track_valid());
    assert_eq!(e.position_m(), Vec3::ZERO);
    let e = tr.step(0.1, &[detection_at(0.1, p(0.1), 1.0)]);
    assert!(e.track_valid());
    assert!((e.position_m() - p(0.1)).norm() < 1e-6);
    assert!((e.velocity_mps() - Vec3::new(100.0, 0.0, 0.0)).norm() < 1e-4);
    // Two-point initial covariance: P_vv = (Rc1 + Rc2)/T^2 with Rc1 close to Rc2 here.
    let pv = e.velocity_covariance();
    let pp = e.position_covariance();
    assert!((pv[0][0] - 2.0 * pp[0][0] / 0.01).abs() < 0.02 * pv[0][0]);
    assert!((e.pos_vel_covariance()[0][3] - pp[0][0] / 0.1).abs() < 1e-9 * pp[0][0]);
    // Coasting: no updates, the estimate keeps predicting and the covariance grows.
    let e_coast = tr.step(0.9, &[]);
    assert!(e_coast.track_valid());
    assert!((e_coast.position_m() - p(0.9)).norm() < 1e-4);
    assert!(e_coast.position_sigma_m() > e.position_sigma_m());
    assert!((e_coast.time_since_update_s() - 0.8).abs() < 1e-12);
    let e_lost = tr.step(1.2, &[]);
    assert!(!e_lost.track_valid());
    assert_eq!(tr.stats().drops, 1);
    // Re-initialised by two fresh detections.
    tr.step(1.3, &[detection_at(1.3, p(1.3), 1.0)]);
    let e = tr.step(1.4, &[detection_at(1.4, p(1.4), 1.0)]);
    assert!(e.track_valid());
    assert_eq!(tr.stats().initialisations, 2);
}

#[test]
fn gate_rejects_outliers_and_counts_them() {
    let mut tr = Tracker::new(&TrackerConfig::default(), G).unwrap();
    let p = |t: f64| Vec3::new(3000.0 - 200.0 * t, 2000.0, 800.0);
    for k in 0..20 {
        let t = k as f64 * 0.05;
        tr.step(t, &[detection_at(t, p(t), 2.0)]);
    }
    let before = tr.estimate(1.0);
    tr.step(
        1.0,
        &[detection_at(1.0, p(1.0) + Vec3::new(0.0, 500.0, 0.0), 2.0)],
    );
    assert_eq!(tr.stats().rejected, 1);
    let after = tr.estimate(1.0);
    assert_eq!(before.position_m(), after.position_m());
}

#[test]
fn seeker_and_radar_with_different_latencies_are_filtered_in_time_order() {
    // Radar 100 ms late, seeker 10 ms: arrivals are out of time order. With a
    // reorder window covering the latency difference nothing is discarded.
    let run = |window_ms: f64| {
        let mut radar = GroundRadar::new(&RadarConfig {
            latency_ms: 100.0,
            ..radar_cfg(20.0, 3.0, 1.0)
        })
        .unwrap();
        radar.reset(0.0, Rng::seed_from_u64(3), Rng::seed_from_u64(4));
        let mut seeker = Seeker::new(&SeekerConfig {
            enabled: true,
            latency_ms: 10.0,
            update_rate_hz: 50.0,
            acquisition_range_m: 5000.0,
            ..Default::default()
        })
        .unwrap();
        seeker.reset(0.0, Rng::seed_from_u64(5));
        let mut tr = Tracker::new(
            &TrackerConfig {
                reorder_window_ms: window_ms,
                ..Default::default()
            },
            G,
        )
        .unwrap();
        let mut worst = 0.0f64;
        for k in 0..300 {
            let t = k as f64 * 0.01;
            let truth = TargetTruth {
                position_m: Vec3::new(0.0, 4000.0 - 200.0 * t, 1000.0),
                velocity_mps: Vec3::new(0.0, -200.0, 0.0),
            };
            let own = OwnState {
                position_m: Vec3::new(0.0, 500.0 * t, 900.0),
                velocity_mps: Vec3::new(0.0, 500.0, 0.0),
            };
            radar.poll(t, &truth);
            seeker.poll(t, &own, &truth);
            let mut dets = Vec::new();
            while let Some(d) = radar.pop_ready(t) {
                dets.push(d);
            }
            while let Some(d) = seeker.pop_ready(t) {
                dets.push(d);
            }
            let e = tr.step(t, &dets);
            if k > 150 {
                worst = worst.max((e.position_m() - truth.position_m).norm());
            }
        }
        (
            tr.stats().out_of_sequence_dropped,
            tr.stats().updates,
            worst,
        )
    };
    let (dropped, updates, worst) = run(90.0);
    assert_eq!(dropped, 0);
    assert!(updates > 150 + 50, "radar and seeker updates: {updates}");
    assert!(worst < 5.0, "{worst}");
    let (dropped0, _, _) = run(0.0);
    assert!(
        dropped0 > 20,
        "without a window, late radar detections are out of sequence: {dropped0}"
    );
}

#[test]
fn tracker_serialises_and_resumes_bitwise() {
    let mut radar = GroundRadar::new(&radar_cfg(50.0, 3.0, 1.0)).unwrap();
    radar.reset(0.0, Rng::seed_from_u64(10), Rng::seed_from_u64(11));
    let mut tr = Tracker::new(
        &TrackerConfig {
            model: MotionModelKind::Singer,
            ..Default::default()
        },
        G,
    )
    .unwrap();
    let truth_at = |t: f64| TargetTruth {
        position_m: Vec3::new(5000.0 - 300.0 * t, 1000.0 + 20.0 * t * t, 1200.0),
        velocity_mps: Vec3::new(-300.0, 40.0 * t, 0.0),
    };
    let mut copy: Option<(Tracker, GroundRadar)> = None;
    let mut outputs = Vec::new();
    for k in 0..400 {
        let t = k as f64 * 0.01;
        if k == 200 {
            let s1 = serde_json::to_string(&tr).unwrap();
            let s2 = serde_json::to_string(&radar).unwrap();
            copy = Some((
                serde_json::from_str(&s1).unwrap(),
                serde_json::from_str(&s2).unwrap(),
            ));
        }
        radar.poll(t, &truth_at(t));
        let mut dets = Vec::new();
        while let Some(d) = radar.pop_ready(t) {
            dets.push(d);
        }
        outputs.push(tr.step(t, &dets));
    }
    let (mut tr2, mut radar2) = copy.unwrap();
    for (k, expected) in outputs.iter().enumerate().skip(200) {
        let t = k as f64 * 0.01;
        radar2.poll(t, &truth_at(t));
        let mut dets = Vec::new();
        while let Some(d) = radar2.pop_ready(t) {
            dets.push(d);
        }
        assert_eq!(&tr2.step(t, &dets), expected);
    }
    // The Singer filter follows the accelerating target.
    let last = outputs.last().unwrap();
    assert!(
        (last.acceleration_mps2().y - 40.0).abs() < 15.0,
        "{:?}",
        last.acceleration_mps2()
    );
}
