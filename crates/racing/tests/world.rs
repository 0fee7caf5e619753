//! Tracks, the painted grid, the camera against independent ray casting,
//! the LIDAR against known wall distances, and the environment's contract:
//! exact restore, clear errors, reward bookkeeping.

use hlynr_env::{Env, Info, ObsMut};
use hlynr_racing::camera::{Camera, CameraConfig};
use hlynr_racing::env::{ACTIONS, RacingConfig};
use hlynr_racing::raster::TrackRaster;
use hlynr_racing::track::{self, TrackSet};
use hlynr_racing::{ActionMode, ObservationMode, RacingEnv};
use hlynr_rng::Rng;

#[test]
fn the_oval_has_the_length_of_its_drawing() {
    let oval = track::shipped("oval").unwrap();
    let want = 2.0 * 250.0 + 2.0 * std::f64::consts::PI * 60.0;
    assert!(
        (oval.length_m() - want).abs() / want < 2e-3,
        "{}",
        oval.length_m()
    );
    // Its ends turn left at 60 m radius (the spline rounds the joins to
    // the straights a little), its straights do not turn.
    let k = oval.curvature();
    let mid_turn = ((250.0 + 30.0 * std::f64::consts::PI) / oval.spacing_m()) as usize;
    assert!(
        (1.0 / k[mid_turn] - 60.0).abs() < 1.0,
        "{}",
        1.0 / k[mid_turn]
    );
    let max = k.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    assert!(1.0 / max > 50.0, "{}", 1.0 / max);
    assert!(k[100].abs() < 1e-6, "{}", k[100]);
}

#[test]
fn points_beside_the_line_project_back_onto_it() {
    let mut rng = Rng::seed_from_u64(1);
    for name in track::SHIPPED {
        let t = track::shipped(name).unwrap();
        for _ in 0..200 {
            let s = rng.uniform_range(0.0, t.length_m());
            let lateral = rng.uniform_range(-t.half_width_m(), t.half_width_m());
            let (p, tangent) = t.at(s);
            let q = [p[0] - tangent[1] * lateral, p[1] + tangent[0] * lateral];
            let proj = t.project(q, None, 0);
            let ds =
                (proj.s_m - s + t.length_m() / 2.0).rem_euclid(t.length_m()) - t.length_m() / 2.0;
            // Within the spacing's curvature error of the exact projection.
            assert!(ds.abs() < 0.3, "{name}: s {s} -> {}", proj.s_m);
            assert!(
                (proj.lateral_m - lateral).abs() < 0.3,
                "{name}: {lateral} -> {}",
                proj.lateral_m
            );
            // A local search from a nearby hint agrees with the full search.
            let near = t.project(q, Some(t.wrap(proj.index, 5)), 12);
            assert_eq!(near.index, proj.index);
        }
    }
}

#[test]
fn procedural_tracks_are_seeded_and_the_sets_disjoint() {
    let a = track::procedural(TrackSet::Train.seed(3));
    let b = track::procedural(TrackSet::Train.seed(3));
    assert_eq!(a.points(), b.points());
    let held = track::procedural(TrackSet::HeldOut.seed(3));
    assert_ne!(a.points(), held.points());
    assert_eq!(held.name(), "procedural-heldout-3");
    let lengths: Vec<f64> = (0..8).map(|k| track::procedural(k).length_m()).collect();
    assert!(lengths.windows(2).all(|w| w[0] != w[1]), "{lengths:?}");
    assert!(
        lengths.iter().all(|&l| (400.0..3000.0).contains(&l)),
        "{lengths:?}"
    );
}

#[test]
fn unknown_tracks_and_settings_are_named() {
    let e = track::shipped("tecnical").unwrap_err();
    assert!(e.contains("did you mean `technical`"), "{e}");
    let config = RacingConfig {
        track: "procedural-x".into(),
        ..RacingConfig::default()
    };
    let e = RacingEnv::new(&config).unwrap_err().to_string();
    assert!(e.contains("procedural-<number>"), "{e}");
    let e = serde_json::from_value::<RacingConfig>(serde_json::json!({"trak": "oval"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("trak"), "{e}");
}

/// Every pixel against a ray cast written from scratch: camera basis
/// vectors, the ray through the pixel centre, its intersection with the
/// ground plane, and the grid's shade there.
#[test]
fn camera_pixels_are_the_ground_their_rays_hit() {
    let t = track::shipped("technical").unwrap();
    let raster = TrackRaster::new(&t);
    let config = CameraConfig::default();
    let camera = Camera::new(&config).unwrap();
    let mut image = vec![0u8; camera.pixels()];
    let mut rng = Rng::seed_from_u64(2);
    let (w, h) = (config.width, config.height);
    let focal = (w as f64 / 2.0) / (config.fov_deg.to_radians() / 2.0).tan();
    let pitch = config.pitch_deg.to_radians();
    let (mut checked, mut differ, mut sky) = (0, 0, 0);
    for _ in 0..20 {
        let (p, tangent) = t.at(rng.uniform_range(0.0, t.length_m()));
        let heading = tangent[1].atan2(tangent[0]) + rng.uniform_range(-0.5, 0.5);
        camera.render(&raster, p[0], p[1], heading, &mut image);
        // Camera frame in the world (z up): forward pitched down, right, up.
        let (fx, fy) = (heading.cos(), heading.sin());
        let forward = [fx * pitch.cos(), fy * pitch.cos(), -pitch.sin()];
        let right = [fy, -fx, 0.0];
        let up = [fx * pitch.sin(), fy * pitch.sin(), pitch.cos()];
        let eye = [
            p[0] - config.behind_m * fx,
            p[1] - config.behind_m * fy,
            config.height_m,
        ];
        for v in 0..h {
            for u in 0..w {
                let x = (u as f64 + 0.5 - w as f64 / 2.0) / focal;
                let y = (v as f64 + 0.5 - h as f64 / 2.0) / focal;
                let ray: Vec<f64> = (0..3)
                    .map(|k| forward[k] + x * right[k] - y * up[k])
                    .collect();
                let got = image[v * w + u];
                if ray[2] >= 0.0 {
                    assert_eq!(got, hlynr_racing::raster::shade::SKY, "above the horizon");
                    sky += 1;
                    continue;
                }
                let s = -eye[2] / ray[2];
                let ahead = s * (ray[0] * fx + ray[1] * fy);
                if ahead > config.range_m {
                    continue;
                }
                let want = raster.shade_at(eye[0] + s * ray[0], eye[1] + s * ray[1]);
                checked += 1;
                differ += usize::from(got != want);
            }
        }
    }
    assert!(sky > 0 && checked > 20 * w * h / 2, "{sky} {checked}");
    // Rounding at cell borders only.
    assert!(
        differ * 200 < checked,
        "{differ} of {checked} pixels differ"
    );
}

#[test]
fn lidar_measures_the_distance_to_the_walls() {
    let t = track::shipped("oval").unwrap();
    let raster = TrackRaster::new(&t);
    let hw = t.half_width_m();
    // On the first straight, heading along it, at several offsets.
    for lateral in [-4.0, 0.0, 3.0] {
        let (p, tangent) = t.at(60.0);
        let q = [p[0] - tangent[1] * lateral, p[1] + tangent[0] * lateral];
        let heading = tangent[1].atan2(tangent[0]);
        let mut beams = [0.0; 19];
        hlynr_racing::lidar::scan(&raster, q[0], q[1], heading, 100.0, &mut beams);
        // Beam 0 points left, beam 18 right, beam 9 ahead.
        assert!(
            (beams[0] - (hw - lateral)).abs() < 0.8,
            "{lateral}: left {}",
            beams[0]
        );
        assert!(
            (beams[18] - (hw + lateral)).abs() < 0.8,
            "{lateral}: right {}",
            beams[18]
        );
        assert_eq!(beams[9], 100.0, "ahead on a 250 m straight");
        // The beams 45 degrees off see the walls sqrt(2) times farther.
        assert!(
            (beams[4] - (hw - lateral) * 2f64.sqrt()).abs() < 1.2,
            "{}",
            beams[4]
        );
    }
}

fn env(track: &str, observation: ObservationMode, action: ActionMode) -> RacingEnv {
    RacingEnv::new(&RacingConfig {
        track: track.into(),
        observation,
        action,
        ..RacingConfig::default()
    })
    .unwrap()
}

/// Everything a step produces, for comparisons.
fn steps(env: &mut RacingEnv, actions: &[usize]) -> Vec<(Vec<f32>, Vec<u8>, f64, bool)> {
    let space = env.observation_space().clone();
    let mut out = Vec::new();
    let mut info = Info::default();
    for &a in actions {
        let mut values = vec![0.0f32; space.flat_dim()];
        let mut bytes = vec![0u8; space.byte_dim()];
        let step = env
            .step(&[a as f32], ObsMut::new(&mut values, &mut bytes), &mut info)
            .unwrap();
        out.push((
            values,
            bytes,
            step.reward,
            step.terminated || step.truncated,
        ));
        if step.terminated || step.truncated {
            break;
        }
    }
    out
}

#[test]
fn a_restored_state_continues_exactly() {
    let mut rng = Rng::seed_from_u64(4);
    let actions: Vec<usize> = (0..300)
        .map(|i| {
            if i % 3 == 0 {
                rng.below(11) as usize
            } else {
                1
            }
        })
        .collect();
    let mut a = env("train", ObservationMode::Camera, ActionMode::Discrete);
    let space = a.observation_space().clone();
    let (mut values, mut bytes) = (vec![0.0; space.flat_dim()], vec![0; space.byte_dim()]);
    let mut info = Info::default();
    a.reset(Some(9), ObsMut::new(&mut values, &mut bytes), &mut info)
        .unwrap();
    steps(&mut a, &actions[..150]);
    let saved = a.state();
    let expected = steps(&mut a, &actions[150..]);
    // A fresh env on a different track, restored.
    let mut b = env("train", ObservationMode::Camera, ActionMode::Discrete);
    b.reset(Some(1), ObsMut::new(&mut values, &mut bytes), &mut info)
        .unwrap();
    b.set_state(&saved).unwrap();
    assert_eq!(b.track().name(), a.track().name());
    assert_eq!(steps(&mut b, &actions[150..]), expected);
    let e = b
        .set_state(&serde_json::json!({"episode": 1}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("racing"), "{e}");
}

#[test]
fn bad_actions_are_refused_with_the_reason() {
    let mut e = env("oval", ObservationMode::Lidar, ActionMode::Discrete);
    let mut values = vec![0.0; 22];
    let mut info = Info::default();
    e.reset(Some(0), ObsMut::new(&mut values, &mut []), &mut info)
        .unwrap();
    for bad in [11.0, -1.0, 2.5, f32::NAN] {
        let err = e
            .step(&[bad], ObsMut::new(&mut values, &mut []), &mut info)
            .unwrap_err();
        assert!(err.to_string().contains("not an action"), "{err}");
    }
    let mut c = env("oval", ObservationMode::Lidar, ActionMode::Continuous);
    c.reset(Some(0), ObsMut::new(&mut values, &mut []), &mut info)
        .unwrap();
    let err = c
        .step(
            &[0.5, f32::INFINITY, 0.0],
            ObsMut::new(&mut values, &mut []),
            &mut info,
        )
        .unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
}

/// Braking from the start never makes progress: the failure countdown ends
/// the episode after exactly its length, unsuccessful.
#[test]
fn no_progress_ends_the_episode_after_the_countdown() {
    let mut e = env("oval", ObservationMode::Lidar, ActionMode::Discrete);
    let mut values = vec![0.0; 22];
    let mut info = Info::default();
    e.reset(Some(0), ObsMut::new(&mut values, &mut []), &mut info)
        .unwrap();
    let brake = ACTIONS.iter().position(|a| *a == (0.0, 1.0, 0.0)).unwrap();
    let out = steps(&mut e, &[brake; 500]);
    let countdown = RacingConfig::default().reward.failure_countdown_steps as usize;
    assert_eq!(out.len(), countdown);
    assert!(out.iter().all(|(_, _, r, _)| *r == 0.0));
    let err = e
        .step(&[0.0], ObsMut::new(&mut values, &mut []), &mut info)
        .unwrap_err();
    assert!(err.to_string().contains("reset"), "{err}");
}

/// Uniformly random actions go nowhere near a lap.
#[test]
fn random_driving_does_not_lap() {
    let mut e = env("technical", ObservationMode::Lidar, ActionMode::Discrete);
    let mut rng = Rng::seed_from_u64(5);
    let mut values = vec![0.0; 22];
    let mut info = Info::default();
    for episode in 0..5 {
        e.reset(Some(episode), ObsMut::new(&mut values, &mut []), &mut info)
            .unwrap();
        loop {
            let a = rng.below(11) as f32;
            let s = e
                .step(&[a], ObsMut::new(&mut values, &mut []), &mut info)
                .unwrap();
            if s.terminated || s.truncated {
                break;
            }
        }
        assert_eq!(info.is_success, Some(false));
        assert!(
            info.get("progress_fraction").unwrap() < 0.5,
            "{:?}",
            info.metrics
        );
    }
}
