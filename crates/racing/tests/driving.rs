//! The scripted driver on every shipped track and on procedural ones.

use hlynr_env::{Env, Info, ObsMut, Policy, PolicyInput};
use hlynr_racing::env::RacingConfig;
use hlynr_racing::{ActionMode, ObservationMode, PurePursuit, RacingEnv};

/// Drives one episode; returns (lap completed, steps, wall hits, info).
pub fn drive(config: &RacingConfig, seed: u64) -> (bool, u32, Info) {
    let mut env = RacingEnv::new(config).unwrap();
    let space = env.observation_space().clone();
    let mut values = vec![0.0f32; space.flat_dim()];
    let mut bytes = vec![0u8; space.byte_dim()];
    let mut info = Info::default();
    env.reset(Some(seed), ObsMut::new(&mut values, &mut bytes), &mut info)
        .unwrap();
    let mut driver = PurePursuit::new(&config.car, config.action);
    let mut view = vec![0.0; RacingEnv::VIEW_DIM];
    let width = env.action_space().flat_dim();
    let mut action = vec![0.0f32; width];
    let mut steps = 0;
    loop {
        env.write_controller_view(&mut view);
        let input = PolicyInput {
            obs: &values,
            obs_bytes: &bytes,
            controller_view: &view,
            n: 1,
        };
        driver.act(&input, true, &mut action).unwrap();
        let step = env
            .step(&action, ObsMut::new(&mut values, &mut bytes), &mut info)
            .unwrap();
        steps += 1;
        if step.terminated || step.truncated {
            return (info.is_success == Some(true), steps, info);
        }
    }
}

#[test]
fn scripted_driver_laps_every_shipped_track() {
    for track in hlynr_racing::track::SHIPPED {
        for action in [ActionMode::Continuous, ActionMode::Discrete] {
            let config = RacingConfig {
                track: track.into(),
                action,
                observation: ObservationMode::Lidar,
                ..RacingConfig::default()
            };
            let (lap, steps, info) = drive(&config, 0);
            println!(
                "{track} {action:?}: lap {lap} in {steps} steps, {:?}",
                info.metrics
            );
            assert!(lap, "{track} {action:?}: {:?}", info.metrics);
            assert!(
                info.get("wall_hits").unwrap() <= 10.0,
                "{track} {action:?}: {:?}",
                info.metrics
            );
        }
    }
}

/// Procedural tracks of both sets: the driver completes nearly all of them.
#[test]
fn scripted_driver_laps_procedural_tracks() {
    for set in ["train", "held_out"] {
        let mut laps = 0u64;
        let n = 20;
        for seed in 0..n {
            let config = RacingConfig {
                track: set.into(),
                observation: ObservationMode::Lidar,
                ..RacingConfig::default()
            };
            let (lap, steps, info) = drive(&config, seed);
            laps += u64::from(lap);
            if !lap {
                println!(
                    "{set} seed {seed}: no lap in {steps} steps, {:?}",
                    info.metrics
                );
            }
        }
        println!("{set}: {laps}/{n} laps");
        assert!(laps >= n - 1, "{set}: {laps}/{n}");
    }
}
