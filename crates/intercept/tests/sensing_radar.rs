//! Ground radar: measurement model, Jacobians, noise statistics, detection,
//! latency, data link and determinism.

use hlynr_intercept::Vec3;
use hlynr_intercept::radar::{
    Detection, GroundRadar, SnrModel, TargetTruth, db_to_linear, spherical, spherical_jacobian,
    swerling1_detection_probability, wrap_angle,
};
use hlynr_intercept::sensor_config::{RadarConfig, SnrModelConfig};
use hlynr_rng::Rng;

fn radar(cfg: RadarConfig, seed: u64) -> GroundRadar {
    let mut r = GroundRadar::new(&cfg).expect("valid config");
    r.reset(0.0, Rng::from_stream(seed, 1), Rng::from_stream(seed, 2));
    r
}

fn target_at(p: Vec3) -> TargetTruth {
    TargetTruth {
        position_m: p,
        velocity_mps: Vec3::new(-150.0, 80.0, -20.0),
    }
}

/// Collects every detection of `scans` scans at `rate` Hz of a fixed target.
fn collect(r: &mut GroundRadar, t: &TargetTruth, steps: usize, dt: f64) -> Vec<(f64, Detection)> {
    let mut out = Vec::new();
    for k in 0..steps {
        let time = k as f64 * dt;
        r.poll(time, t);
        while let Some(d) = r.pop_ready(time) {
            out.push((time, d));
        }
    }
    out
}

#[test]
fn jacobian_matches_central_differences() {
    let mut rng = Rng::seed_from_u64(11);
    for case in 0..200 {
        let d = if case < 20 {
            // Close to north and to south (azimuth near 0 and near +-pi).
            Vec3::new(
                rng.uniform_range(-50.0, 50.0),
                if case % 2 == 0 { 5000.0 } else { -5000.0 },
                800.0,
            )
        } else {
            Vec3::new(
                rng.uniform_range(-10_000.0, 10_000.0),
                rng.uniform_range(-10_000.0, 10_000.0),
                rng.uniform_range(10.0, 8000.0),
            )
        };
        let u = Vec3::new(
            rng.uniform_range(-900.0, 900.0),
            rng.uniform_range(-900.0, 900.0),
            rng.uniform_range(-300.0, 300.0),
        );
        let h = spherical_jacobian(d, u);
        let x0 = [d.x, d.y, d.z, u.x, u.y, u.z];
        for col in 0..6 {
            let step = if col < 3 {
                1e-3 * d.norm() * 1e-3
            } else {
                1e-3
            };
            let mut xp = x0;
            let mut xm = x0;
            xp[col] += step;
            xm[col] -= step;
            let f =
                |x: &[f64; 6]| spherical(Vec3::new(x[0], x[1], x[2]), Vec3::new(x[3], x[4], x[5]));
            let (sp, sm) = (f(&xp), f(&xm));
            let fd = [
                (sp.range_m - sm.range_m) / (2.0 * step),
                wrap_angle(sp.azimuth_rad - sm.azimuth_rad) / (2.0 * step),
                (sp.elevation_rad - sm.elevation_rad) / (2.0 * step),
                (sp.range_rate_mps - sm.range_rate_mps) / (2.0 * step),
            ];
            for row in 0..4 {
                // Relative to the row's scale (the largest entry), so zero entries are checked too.
                let scale = h[row].iter().fold(0.0f64, |a, v| a.max(v.abs()));
                let err = (h[row][col] - fd[row]).abs() / scale;
                assert!(
                    err < 1e-6,
                    "case {case} row {row} col {col}: analytic {} fd {}",
                    h[row][col],
                    fd[row]
                );
            }
        }
    }
}

#[test]
fn azimuth_wraps_across_north_and_south() {
    let u = Vec3::ZERO;
    let east_of_north = spherical(Vec3::new(1.0, 1000.0, 0.0), u).azimuth_rad;
    let west_of_north = spherical(Vec3::new(-1.0, 1000.0, 0.0), u).azimuth_rad;
    assert!(east_of_north > 0.0 && west_of_north < 0.0);
    assert!((wrap_angle(east_of_north - west_of_north) - 2e-3).abs() < 1e-9);
    // Due south is +-pi: the difference across it must wrap to a small angle.
    let east_of_south = spherical(Vec3::new(1.0, -1000.0, 0.0), u).azimuth_rad;
    let west_of_south = spherical(Vec3::new(-1.0, -1000.0, 0.0), u).azimuth_rad;
    assert!(east_of_south > 3.0 && west_of_south < -3.0);
    assert!((wrap_angle(west_of_south - east_of_south) - 2e-3).abs() < 1e-9);
    // Measurements of a target due south stay in (-pi, pi].
    let mut r = radar(
        RadarConfig {
            sigma_azimuth_mrad: 5.0,
            position_m: [0.0, 0.0, 0.0],
            ..Default::default()
        },
        3,
    );
    let t = target_at(Vec3::new(0.0, -5000.0, 1000.0));
    let dets = collect(&mut r, &t, 500, 0.02);
    assert!(dets.len() > 400);
    let (mut pos, mut neg) = (0, 0);
    for (_, d) in &dets {
        assert!(d.azimuth_rad > -std::f64::consts::PI && d.azimuth_rad <= std::f64::consts::PI);
        if d.azimuth_rad > 0.0 {
            pos += 1
        } else {
            neg += 1
        }
    }
    assert!(
        pos > 100 && neg > 100,
        "noise straddles the wrap: {pos} {neg}"
    );
}

#[test]
fn swerling1_and_snr_accuracy_match_the_reference() {
    for (db, want) in [(10.0, 0.285), (13.0, 0.517), (16.0, 0.713), (20.0, 0.872)] {
        let pd = swerling1_detection_probability(db_to_linear(db), 1e-6);
        assert!((pd - want).abs() < 1e-3, "{db} dB: {pd}");
    }
    let cfg = SnrModelConfig {
        snr_ref_db: 20.0,
        range_ref_m: 10_000.0,
        beamwidth_mrad: 35.0,
        bandwidth_mhz: 10.0,
        wavelength_m: 0.03,
        coherent_time_ms: 10.0,
        ..Default::default()
    };
    let m = SnrModel::from_config(&cfg);
    let snr = m.snr(10_000.0, 1.0);
    assert!((snr - 100.0).abs() < 1e-9);
    let (sr, sa, srd) = m.thermal_sigma(snr);
    assert!((sa - 1.547e-3).abs() < 5e-6, "{sa}");
    assert!((sr - 1.06).abs() < 5e-3, "{sr}");
    assert!((srd - 0.106).abs() < 5e-4, "{srd}");
    // R^-4 law: twice the range, 1/16 the SNR.
    assert!((m.snr(20_000.0, 1.0) - 100.0 / 16.0).abs() < 1e-9);
    // The radar with the SNR model detects less often far out.
    let mut rc = RadarConfig {
        max_range_m: 60_000.0,
        snr: Some(SnrModelConfig {
            snr_ref_db: 13.0,
            range_ref_m: 20_000.0,
            ..Default::default()
        }),
        ..Default::default()
    };
    rc.update_rate_hz = 100.0;
    let mut r = radar(rc, 5);
    let n = 20_000;
    let far = collect(
        &mut r,
        &target_at(Vec3::new(0.0, 20_000.0, 2000.0)),
        n,
        0.01,
    )
    .len();
    let rate = far as f64 / n as f64;
    // Range 20.1 km: SNR just under 13 dB; P_d about 0.51.
    let snr_db = 10.0 * m_snr_db(20_000f64.hypot(2000.0));
    let want = swerling1_detection_probability(db_to_linear(snr_db), 1e-6);
    assert!(
        (rate - want).abs() < 0.015,
        "detection rate {rate}, want {want}"
    );
}

fn m_snr_db(range: f64) -> f64 {
    (db_to_linear(13.0) * (20_000.0 / range).powi(4)).log10()
}

fn stats(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn noise_std(cfg: RadarConfig, seed: u64) -> [f64; 4] {
    let mut r = radar(cfg, seed);
    let t = target_at(Vec3::new(3000.0, 4000.0, 1500.0));
    let truth = spherical(t.position_m - r.position_m(), t.velocity_mps);
    let dets = collect(&mut r, &t, 20_000, 0.02);
    assert_eq!(dets.len(), 20_000);
    let e =
        |f: &dyn Fn(&Detection) -> f64| stats(&dets.iter().map(|(_, d)| f(d)).collect::<Vec<_>>());
    let (m0, s0) = e(&|d| d.range_m.unwrap() - truth.range_m);
    let (m1, s1) = e(&|d| wrap_angle(d.azimuth_rad - truth.azimuth_rad));
    let (m2, s2) = e(&|d| d.elevation_rad - truth.elevation_rad);
    let (m3, s3) = e(&|d| d.range_rate_mps.unwrap() - truth.range_rate_mps);
    for (m, s) in [(m0, s0), (m1, s1), (m2, s2), (m3, s3)] {
        assert!(
            m.abs() < 4.0 * s / (20_000f64).sqrt(),
            "noise is zero-mean: {m} vs {s}"
        );
    }
    [s0, s1, s2, s3]
}

#[test]
fn measurement_noise_matches_configured_sigmas_and_randomisation_is_applied() {
    let base = RadarConfig {
        sigma_range_m: 5.0,
        sigma_azimuth_mrad: 1.0,
        sigma_elevation_mrad: 2.0,
        range_rate_enabled: true,
        sigma_range_rate_mps: 0.5,
        ..Default::default()
    };
    let want = [5.0, 1e-3, 2e-3, 0.5];
    let got = noise_std(base.clone(), 21);
    for i in 0..4 {
        assert!(
            (got[i] / want[i] - 1.0).abs() < 0.03,
            "component {i}: {} vs {}",
            got[i],
            want[i]
        );
    }
    // A per-episode noise factor of 3 triples every standard deviation.
    let scaled = noise_std(
        RadarConfig {
            noise_factor_range: [3.0, 3.0],
            ..base.clone()
        },
        21,
    );
    for i in 0..4 {
        assert!(
            (scaled[i] / (3.0 * want[i]) - 1.0).abs() < 0.03,
            "scaled {i}: {}",
            scaled[i]
        );
    }
    // A randomised interval draws different factors per episode, inside the interval.
    let mut r = GroundRadar::new(&RadarConfig {
        noise_factor_range: [0.5, 2.0],
        ..base
    })
    .unwrap();
    let mut factors = Vec::new();
    for ep in 0..20 {
        r.reset(0.0, Rng::from_stream(99, ep), Rng::from_stream(98, ep));
        factors.push(r.episode_draw().noise_factor);
    }
    assert!(factors.iter().all(|f| (0.5..2.0).contains(f)));
    let (_, spread) = stats(&factors);
    assert!(spread > 0.2, "factors vary: {factors:?}");
}

#[test]
fn latency_delays_delivery_but_keeps_the_acquisition_time_stamp() {
    let dt = 0.01;
    let cfg = RadarConfig {
        update_rate_hz: 20.0,
        latency_ms: 70.0,
        ..Default::default()
    };
    let mut r = radar(cfg.clone(), 8);
    let t = target_at(Vec3::new(2000.0, 2000.0, 1000.0));
    let dets = collect(&mut r, &t, 300, dt);
    assert!(dets.len() >= 55);
    for (delivered_at, d) in &dets {
        assert!(
            (delivered_at - d.time_s - 0.07).abs() < 1e-9,
            "delivered {delivered_at} stamped {}",
            d.time_s
        );
    }
    // Scans at the configured rate: stamps 50 ms apart.
    for w in dets.windows(2) {
        assert!((w[1].1.time_s - w[0].1.time_s - 0.05).abs() < 1e-9);
    }
    // Latency randomisation doubles the delay.
    let mut r2 = radar(
        RadarConfig {
            latency_factor_range: [2.0, 2.0],
            ..cfg
        },
        8,
    );
    let dets2 = collect(&mut r2, &t, 300, dt);
    for (delivered_at, d) in &dets2 {
        assert!((delivered_at - d.time_s - 0.14).abs() < 1e-9);
    }
    assert!((r2.episode_draw().latency_s - 0.14).abs() < 1e-12);
}

fn loss_pattern(p: f64, burst: f64, seed: u64) -> (f64, f64) {
    let mut r = radar(
        RadarConfig {
            update_rate_hz: 100.0,
            link_loss_probability: p,
            link_mean_burst_length: burst,
            ..Default::default()
        },
        seed,
    );
    let t = target_at(Vec3::new(2000.0, 2000.0, 1000.0));
    let n = 200_000;
    let mut received = vec![false; n];
    for (k, slot) in received.iter_mut().enumerate() {
        let time = k as f64 * 0.01;
        r.poll(time, &t);
        *slot = r.pop_ready(time).is_some();
    }
    let lost = received.iter().filter(|x| !**x).count();
    let mut bursts = 0;
    let mut prev = true;
    for &x in &received {
        if !x && prev {
            bursts += 1;
        }
        prev = x;
    }
    assert_eq!(r.stats().link_lost as usize, lost);
    (lost as f64 / n as f64, lost as f64 / bursts.max(1) as f64)
}

#[test]
fn link_loss_rate_and_burst_length_match() {
    let (rate, burst) = loss_pattern(0.1, 1.0, 31);
    assert!((rate - 0.1).abs() < 0.004, "Bernoulli loss {rate}");
    // Independent losses: mean run length 1/(1-p).
    assert!((burst - 1.0 / 0.9).abs() < 0.03, "Bernoulli burst {burst}");
    let (rate, burst) = loss_pattern(0.05, 3.0, 32);
    assert!((rate - 0.05).abs() < 0.006, "Gilbert-Elliott loss {rate}");
    assert!((burst - 3.0).abs() < 0.2, "Gilbert-Elliott burst {burst}");
    let (rate, _) = loss_pattern(0.0, 1.0, 33);
    assert_eq!(rate, 0.0);
}

#[test]
fn range_and_elevation_limits_mask_the_target() {
    let cfg = RadarConfig {
        min_elevation_deg: 2.0,
        max_elevation_deg: 80.0,
        min_range_m: 500.0,
        max_range_m: 10_000.0,
        position_m: [0.0, 0.0, 0.0],
        ..Default::default()
    };
    let cases = [
        (Vec3::new(0.0, 5000.0, 100.0), false), // 1.1 deg: below the horizon mask
        (Vec3::new(0.0, 5000.0, 300.0), true),  // 3.4 deg
        (Vec3::new(0.0, 100.0, 1000.0), false), // 84 deg: above the maximum
        (Vec3::new(0.0, 300.0, 200.0), false),  // 360 m: too close
        (Vec3::new(0.0, 12_000.0, 1000.0), false), // too far
    ];
    for (p, visible) in cases {
        let mut r = radar(cfg.clone(), 4);
        let n = collect(&mut r, &target_at(p), 100, 0.02).len();
        assert_eq!(n > 0, visible, "{p:?}");
        if !visible {
            assert_eq!(r.stats().masked, r.stats().scans);
        }
    }
}

#[test]
fn same_seed_same_detections_and_checkpoint_resumes_exactly() {
    let cfg = RadarConfig {
        range_rate_enabled: true,
        link_loss_probability: 0.2,
        link_mean_burst_length: 2.0,
        latency_ms: 40.0,
        angle_bias_sigma_mrad: 0.2,
        noise_factor_range: [0.5, 1.5],
        ..Default::default()
    };
    let t = target_at(Vec3::new(2500.0, 1000.0, 900.0));
    let a = collect(&mut radar(cfg.clone(), 77), &t, 400, 0.01);
    let b = collect(&mut radar(cfg.clone(), 77), &t, 400, 0.01);
    assert_eq!(a, b);
    let c = collect(&mut radar(cfg.clone(), 78), &t, 400, 0.01);
    assert_ne!(a, c);
    // Serialise half way, restore, continue: identical to the uninterrupted run.
    let mut r = radar(cfg, 77);
    let mut first = Vec::new();
    for k in 0..200 {
        let time = k as f64 * 0.01;
        r.poll(time, &t);
        while let Some(d) = r.pop_ready(time) {
            first.push((time, d));
        }
    }
    let json = serde_json::to_string(&r).unwrap();
    let mut restored: GroundRadar = serde_json::from_str(&json).unwrap();
    for k in 200..400 {
        let time = k as f64 * 0.01;
        restored.poll(time, &t);
        while let Some(d) = restored.pop_ready(time) {
            first.push((time, d));
        }
    }
    assert_eq!(first, a);
}
