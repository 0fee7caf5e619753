//! The scripted driver on every shipped track and on procedural ones.

use hlynr_env::Info;
use hlynr_racing::env::RacingConfig;
use hlynr_racing::recording::record;
use hlynr_racing::{ActionMode, ObservationMode, PurePursuit};

/// Drives one episode; returns (lap completed, steps, final info).
pub fn drive(config: &RacingConfig, seed: u64) -> (bool, usize, Info) {
    let mut driver = PurePursuit::new(&config.car, config.action);
    let rec = record(config, &mut driver, seed).unwrap();
    (rec.lap(), rec.path.len() - 1, rec.final_info)
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
