//! Classic-control tasks with Gymnasium's exact dynamics, and a registry of them.
//!
//! These small tasks validate the algorithms: a learner that cannot solve
//! CartPole or Pendulum has a bug, and published scores exist for both. To make
//! those scores comparable, every task reproduces Gymnasium 1.4 step for step
//! (constants, update order, float32 roundings), which the fixture tests in
//! `tests/gymnasium_fixtures.rs` check against recorded Gymnasium trajectories.
//! Only the random initial state differs, because it is drawn from the
//! environment's own [`hlynr_rng::Rng`] instead of NumPy's generator.
//!
//! [`make`] builds the raw environment. Time limits are not part of it, as in
//! Gymnasium's `unwrapped` envs: wrap the environment in the time-limit wrapper
//! with [`EnvSpec::max_episode_steps`] from [`spec`] to get the registered task.

mod cartpole;
mod mountain_car;
mod pendulum;

pub use cartpole::{CartPole, CartPoleNoVel};
pub use mountain_car::MountainCarContinuous;
pub use pendulum::Pendulum;

use crate::env::Env;
use crate::error::{EnvError, Result};

/// Registration data of a task: what the raw environment does not enforce itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnvSpec {
    /// The registered id, e.g. `"CartPole-v1"`.
    pub id: &'static str,
    /// Episode length after which the time-limit wrapper truncates.
    pub max_episode_steps: Option<u64>,
    /// Mean return over 100 episodes at which the task counts as solved.
    pub reward_threshold: Option<f64>,
}

/// Every registered task, with Gymnasium's (and RL Zoo's, for CartPoleNoVel)
/// registration values.
pub const SPECS: &[EnvSpec] = &[
    EnvSpec {
        id: "CartPole-v1",
        max_episode_steps: Some(500),
        reward_threshold: Some(475.0),
    },
    EnvSpec {
        id: "CartPoleNoVel-v1",
        max_episode_steps: Some(500),
        reward_threshold: Some(475.0),
    },
    EnvSpec {
        id: "Pendulum-v1",
        max_episode_steps: Some(200),
        reward_threshold: None,
    },
    EnvSpec {
        id: "MountainCarContinuous-v0",
        max_episode_steps: Some(999),
        reward_threshold: Some(90.0),
    },
];

/// The registration data of `id`; an unknown id is an error naming the closest one.
pub fn spec(id: &str) -> Result<EnvSpec> {
    SPECS
        .iter()
        .find(|s| s.id == id)
        .copied()
        .ok_or_else(|| unknown_id(id))
}

/// Builds the raw (un-wrapped, no time limit) environment registered as `id`,
/// with default parameters and its generator seeded with 0 until the first
/// `reset(Some(seed))`.
pub fn make(id: &str) -> Result<Box<dyn Env>> {
    let spec = spec(id)?;
    Ok(match spec.id {
        "CartPole-v1" => Box::new(CartPole::new()),
        "CartPoleNoVel-v1" => Box::new(CartPoleNoVel::new()),
        "Pendulum-v1" => Box::new(Pendulum::new()),
        "MountainCarContinuous-v0" => Box::new(MountainCarContinuous::new()),
        other => unreachable!("registered id {other} has no constructor"),
    })
}

fn unknown_id(id: &str) -> EnvError {
    let wanted = id.to_ascii_lowercase();
    let closest = SPECS
        .iter()
        .min_by_key(|s| crate::config::levenshtein(&wanted, &s.id.to_ascii_lowercase()))
        .map_or("", |s| s.id);
    let all: Vec<&str> = SPECS.iter().map(|s| s.id).collect();
    EnvError::invalid(
        "environment id",
        format!(
            "unknown id {id:?}; did you mean {closest:?}? (registered: {})",
            all.join(", ")
        ),
    )
}

/// Checks the length of a physical state passed to `set_physical_state`.
fn check_physical_state(context: &str, state: &[f64], expected: usize) -> Result<()> {
    if state.len() != expected {
        return Err(EnvError::Shape {
            context: format!("{context} physical state"),
            expected,
            actual: state.len(),
        });
    }
    if let Some(i) = state.iter().position(|v| !v.is_finite()) {
        return Err(EnvError::invalid(
            format!("{context} physical state"),
            format!("element {i} is {}", state[i]),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{Info, checked_step};

    #[test]
    fn every_registered_id_builds_with_matching_spaces() {
        let expected_dims = [(4, 1), (2, 1), (3, 1), (2, 1)];
        for (s, (obs_dim, act_dim)) in SPECS.iter().zip(expected_dims) {
            let mut env = make(s.id).unwrap();
            assert_eq!(env.observation_space().flat_dim(), obs_dim, "{}", s.id);
            assert_eq!(env.action_space().flat_dim(), act_dim, "{}", s.id);
            let mut obs = vec![0.0; obs_dim];
            let mut info = Info::default();
            env.reset(Some(3), (&mut obs).into(), &mut info).unwrap();
            env.observation_space().check(&obs).unwrap();
            let mut action = vec![0.0; act_dim];
            env.action_space()
                .sample(&mut hlynr_rng::Rng::seed_from_u64(1), &mut action);
            checked_step(&mut env, &action, (&mut obs).into(), &mut info).unwrap();
            assert_eq!(spec(s.id).unwrap(), *s);
        }
    }

    #[test]
    fn registered_limits_match_gymnasium() {
        assert_eq!(spec("CartPole-v1").unwrap().max_episode_steps, Some(500));
        assert_eq!(spec("CartPole-v1").unwrap().reward_threshold, Some(475.0));
        assert_eq!(spec("Pendulum-v1").unwrap().max_episode_steps, Some(200));
        assert_eq!(
            spec("MountainCarContinuous-v0").unwrap().max_episode_steps,
            Some(999)
        );
    }

    #[test]
    fn unknown_id_names_the_closest_valid_id() {
        let message = match make("CartPol-v1") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("an unknown id must not build"),
        };
        assert!(message.contains("\"CartPol-v1\""), "{message}");
        assert!(
            message.contains("did you mean \"CartPole-v1\""),
            "{message}"
        );
        let message = spec("pendulum-v0").unwrap_err().to_string();
        assert!(
            message.contains("did you mean \"Pendulum-v1\""),
            "{message}"
        );
        let message = spec("MountainCarContinuous").unwrap_err().to_string();
        assert!(
            message.contains("did you mean \"MountainCarContinuous-v0\""),
            "{message}"
        );
    }

    #[test]
    fn physical_state_check_rejects_bad_lengths_and_values() {
        assert!(check_physical_state("t", &[0.0, 1.0], 2).is_ok());
        let e = check_physical_state("t", &[0.0], 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected 2") && e.contains("got 1"), "{e}");
        let e = check_physical_state("t", &[0.0, f64::NAN], 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("element 1"), "{e}");
    }
}
