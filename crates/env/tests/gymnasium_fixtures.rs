//! Replays trajectories recorded from Gymnasium 1.4 (`scripts/record_gym_fixtures.py`)
//! through the classic-control environments.
//!
//! Each episode starts from the physical state Gymnasium drew at reset and replays
//! the recorded actions (including out-of-range continuous actions, which the
//! environments clip as Gymnasium does). Every observation must agree to 1e-6
//! (absolute), every reward to 1e-6 (relative) and the episode must terminate on
//! the same step.

use std::path::PathBuf;

use hlynr_env::classic::{CartPole, CartPoleNoVel, MountainCarContinuous, Pendulum};
use hlynr_env::{Env, Info, Step};
use serde::Deserialize;

const OBS_TOLERANCE: f64 = 1e-6;
const REWARD_RELATIVE_TOLERANCE: f64 = 1e-6;

#[derive(Debug, Deserialize)]
struct Fixture {
    env_id: String,
    gymnasium_version: String,
    episodes: Vec<Episode>,
}

#[derive(Debug, Deserialize)]
struct Episode {
    seed: u64,
    params: std::collections::BTreeMap<String, f64>,
    initial_state: Vec<f64>,
    initial_obs: Vec<f32>,
    actions: Vec<Vec<f32>>,
    observations: Vec<Vec<f32>>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
}

/// What the replay needs beyond the `Env` trait: starting from an exact state.
trait Replayable: Env {
    fn start_from(&mut self, state: &[f64], obs: &mut [f32]);
}

macro_rules! replayable {
    ($($t:ty),*) => {$(
        impl Replayable for $t {
            fn start_from(&mut self, state: &[f64], obs: &mut [f32]) {
                self.set_physical_state(state).expect("recorded state is valid");
                self.observe(obs);
            }
        }
    )*};
}
replayable!(CartPole, CartPoleNoVel, Pendulum, MountainCarContinuous);

fn load(name: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let fixture: Fixture = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
    assert!(fixture.gymnasium_version.starts_with("1."), "{fixture:?}");
    assert!(!fixture.episodes.is_empty());
    fixture
}

fn assert_obs_close(actual: &[f32], expected: &[f32], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: observation length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let error = (f64::from(a) - f64::from(e)).abs();
        assert!(
            error <= OBS_TOLERANCE,
            "{what}: obs[{i}] = {a} but Gymnasium gave {e} (error {error:e})"
        );
    }
}

/// Replays one episode; `view` maps Gymnasium's observation to the env's.
/// Returns the largest observation error seen.
fn replay<E: Replayable>(
    env: &mut E,
    episode: &Episode,
    label: &str,
    view: impl Fn(&[f32]) -> Vec<f32>,
) -> f64 {
    let n = episode.actions.len();
    assert!(n > 0);
    assert_eq!(episode.observations.len(), n, "{label}");
    assert_eq!(episode.rewards.len(), n, "{label}");
    assert_eq!(episode.terminated.len(), n, "{label}");

    let mut obs = vec![0.0; env.observation_space().flat_dim()];
    let mut info = Info::default();
    env.start_from(&episode.initial_state, &mut obs);
    assert_obs_close(&obs, &view(&episode.initial_obs), &format!("{label} reset"));

    let mut max_error = 0.0f64;
    for (t, action) in episode.actions.iter().enumerate() {
        let what = format!("{label} step {t}");
        info.clear();
        let step: Step = env.step(action, (&mut obs).into(), &mut info).unwrap();
        let expected_obs = view(&episode.observations[t]);
        assert_obs_close(&obs, &expected_obs, &what);
        for (&a, &e) in obs.iter().zip(&expected_obs) {
            max_error = max_error.max((f64::from(a) - f64::from(e)).abs());
        }
        let expected_reward = episode.rewards[t];
        let reward_error = (step.reward - expected_reward).abs();
        assert!(
            reward_error <= REWARD_RELATIVE_TOLERANCE * expected_reward.abs().max(1e-12),
            "{what}: reward {} but Gymnasium gave {expected_reward}",
            step.reward
        );
        assert_eq!(
            step.terminated, episode.terminated[t],
            "{what}: terminated differs"
        );
        assert!(!step.truncated, "{what}: raw environments never truncate");
    }
    max_error
}

fn full(obs: &[f32]) -> Vec<f32> {
    obs.to_vec()
}

#[test]
fn cartpole_matches_gymnasium() {
    let fixture = load("cartpole_v1.json");
    assert_eq!(fixture.env_id, "CartPole-v1");
    let mut terminated_by_angle = false;
    let mut terminated_by_position = false;
    let mut worst = 0.0f64;
    for episode in &fixture.episodes {
        let label = format!("CartPole-v1 seed {}", episode.seed);
        worst = worst.max(replay(&mut CartPole::new(), episode, &label, full));
        if let Some(t) = episode.terminated.iter().position(|&d| d) {
            let obs = &episode.observations[t];
            terminated_by_position |= obs[0].abs() > 2.4;
            terminated_by_angle |= obs[2].abs() > 0.2094;
        }
    }
    // The fixtures must exercise both ways a CartPole episode ends.
    assert!(terminated_by_angle && terminated_by_position);
    println!("CartPole-v1: largest observation error {worst:e}");
}

#[test]
fn cartpole_no_vel_observes_position_and_angle_of_gymnasium_cartpole() {
    let fixture = load("cartpole_v1.json");
    for episode in &fixture.episodes {
        let label = format!("CartPoleNoVel-v1 seed {}", episode.seed);
        replay(&mut CartPoleNoVel::new(), episode, &label, |o| {
            vec![o[0], o[2]]
        });
    }
}

#[test]
fn pendulum_matches_gymnasium() {
    let fixture = load("pendulum_v1.json");
    assert_eq!(fixture.env_id, "Pendulum-v1");
    let mut clipped_actions = 0;
    let mut worst = 0.0f64;
    for episode in &fixture.episodes {
        let label = format!("Pendulum-v1 seed {}", episode.seed);
        let mut env = match episode.params.get("g") {
            Some(&g) => Pendulum::with_gravity(g).expect("recorded gravity is valid"),
            None => Pendulum::new(),
        };
        worst = worst.max(replay(&mut env, episode, &label, full));
        clipped_actions += episode.actions.iter().filter(|a| a[0].abs() > 2.0).count();
    }
    assert!(
        clipped_actions > 0,
        "fixtures must exercise torque clipping"
    );
    println!("Pendulum-v1: largest observation error {worst:e}");
}

#[test]
fn mountain_car_continuous_matches_gymnasium() {
    let fixture = load("mountain_car_continuous_v0.json");
    assert_eq!(fixture.env_id, "MountainCarContinuous-v0");
    let mut reached_goal = 0;
    let mut clipped_actions = 0;
    let mut worst = 0.0f64;
    for episode in &fixture.episodes {
        let label = format!("MountainCarContinuous-v0 seed {}", episode.seed);
        let mut env = MountainCarContinuous::new();
        worst = worst.max(replay(&mut env, episode, &label, full));
        reached_goal += usize::from(episode.terminated.iter().any(|&d| d));
        clipped_actions += episode.actions.iter().filter(|a| a[0].abs() > 1.0).count();
    }
    assert!(reached_goal > 0 && clipped_actions > 0);
    println!("MountainCarContinuous-v0: largest observation error {worst:e}");
}

#[test]
fn mountain_car_reports_success_exactly_on_the_goal_step() {
    let fixture = load("mountain_car_continuous_v0.json");
    for episode in &fixture.episodes {
        let mut env = MountainCarContinuous::new();
        let mut obs = [0.0; 2];
        let mut info = Info::default();
        env.start_from(&episode.initial_state, &mut obs);
        for (action, &terminated) in episode.actions.iter().zip(&episode.terminated) {
            info.clear();
            env.step(action, (&mut obs).into(), &mut info).unwrap();
            let expected = if terminated { Some(true) } else { None };
            assert_eq!(info.is_success, expected, "seed {}", episode.seed);
        }
    }
}
