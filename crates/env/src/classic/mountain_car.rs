//! MountainCarContinuous-v0: drive an underpowered car up a hill by rocking it.

use crate::obs::ObsMut;
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check_physical_state;
use crate::env::{Env, Info, Step, from_state, to_state};
use crate::error::Result;
use crate::space::Space;

/// Left end of the track (an inelastic wall), m.
const MIN_POSITION_M: f64 = -1.2;
/// Right end of the track, m.
const MAX_POSITION_M: f64 = 0.6;
/// Speed limit, m/step.
const MAX_SPEED: f64 = 0.07;
/// Reaching this position (at non-negative velocity) ends the episode, m.
const GOAL_POSITION_M: f64 = 0.45;
/// Minimum velocity at the goal.
const GOAL_VELOCITY: f64 = 0.0;
/// Velocity change per unit of force per step.
const POWER: f64 = 0.0015;
/// Velocity change per step from gravity, scaled by `cos(3 x)` (the hill is `sin(3 x)`).
const GRAVITY_TERM: f64 = 0.0025;
/// Force limit; actions beyond it are clipped (but still pay their full cost).
const MAX_FORCE: f32 = 1.0;
/// Reward for reaching the goal.
const GOAL_REWARD: f64 = 100.0;
/// Cost per squared unit of action.
const ACTION_COST: f64 = 0.1;
/// The initial position is uniform in this range, m; the car starts at rest.
const INITIAL_POSITION_RANGE_M: (f64, f64) = (-0.6, -0.4);

/// Everything that changes while stepping, serialised for checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MountainCarState {
    /// Position (m) and velocity (m/step).
    physical: [f64; 2],
    /// True while the state is reset's `f64` draw; every step stores it as `f32`
    /// (see [`MountainCarContinuous`] on why the precision matters).
    full_precision: bool,
    /// The environment's generator (initial states).
    rng: Rng,
}

/// MountainCarContinuous-v0 (Moore's mountain car with a continuous force).
///
/// Matches Gymnasium 1.4's `Continuous_MountainCarEnv` exactly. The action is a
/// force in `[-1, 1]` (clipped when outside); velocity += `0.0015 force -
/// 0.0025 cos(3 x)`, clipped to ±0.07, then position += velocity, clipped to
/// `[-1.2, 0.6]` with the car stopped at the left wall. The episode terminates
/// at `x >= 0.45` with non-negative velocity; the reward is `-0.1 a²` per step
/// on the raw (unclipped) action plus 100 on reaching the goal.
///
/// Precision: Gymnasium stores this task's state as `f32` after every step and
/// mixes `f32` and `f64` arithmetic by NumPy's promotion rules (the force term
/// is an `f32` product; Python floats meeting an `f32` value are rounded to
/// `f32`; the state drawn at reset stays `f64` until the first step). This
/// implementation reproduces each rounding so that trajectories agree with
/// Gymnasium to the last bit, not only approximately.
///
/// Success is reaching the goal: `Info::is_success` is `Some(true)` on the
/// terminating step. The registered task truncates at 999 steps (time-limit
/// wrapper) and counts as solved at a mean return of 90.
#[derive(Clone, Debug)]
pub struct MountainCarContinuous {
    state: MountainCarState,
    observation_space: Space,
    action_space: Space,
}

impl Default for MountainCarContinuous {
    fn default() -> Self {
        Self::new()
    }
}

impl MountainCarContinuous {
    /// A mountain car with Gymnasium's constants. Its generator is seeded with 0
    /// and the car rests at the valley's start position -0.5 until the first reset.
    pub fn new() -> Self {
        Self {
            state: MountainCarState {
                physical: [-0.5, 0.0],
                full_precision: true,
                rng: Rng::seed_from_u64(0),
            },
            observation_space: Space::box_1d(
                vec![MIN_POSITION_M as f32, -MAX_SPEED as f32],
                vec![MAX_POSITION_M as f32, MAX_SPEED as f32],
            ),
            action_space: Space::uniform_box(-MAX_FORCE, MAX_FORCE, &[1]),
        }
    }

    /// The physical state `[position_m, velocity]`.
    pub fn physical_state(&self) -> [f64; 2] {
        self.state.physical
    }

    /// Starts an episode from an exact physical state, as if reset had drawn it
    /// (the generator is left untouched). Used to replay recorded trajectories.
    pub fn set_physical_state(&mut self, state: &[f64]) -> Result<()> {
        check_physical_state("MountainCarContinuous", state, 2)?;
        self.state.physical.copy_from_slice(state);
        self.state.full_precision = true;
        Ok(())
    }

    /// Writes `[position, velocity]` of the current state as `f32`.
    pub fn observe(&self, obs: &mut [f32]) {
        obs[0] = self.state.physical[0] as f32;
        obs[1] = self.state.physical[1] as f32;
    }
}

/// Rounds to `f32` (and back) when the state is held in `f32`: the value NumPy
/// computes for an operation on `f32` operands.
#[inline]
fn round_to(x: f64, single: bool) -> f64 {
    if single { f64::from(x as f32) } else { x }
}

impl Env for MountainCarContinuous {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset(&mut self, seed: Option<u64>, obs: ObsMut<'_>, _info: &mut Info) -> Result<()> {
        if let Some(seed) = seed {
            self.state.rng = Rng::seed_from_u64(seed);
        }
        let (low, high) = INITIAL_POSITION_RANGE_M;
        self.state.physical = [self.state.rng.uniform_range(low, high), 0.0];
        self.state.full_precision = true;
        self.observe(obs.values);
        Ok(())
    }

    fn step(&mut self, action: &[f32], obs: ObsMut<'_>, info: &mut Info) -> Result<Step> {
        let single = !self.state.full_precision;
        let r = |x: f64| round_to(x, single);
        let [mut position, mut velocity] = self.state.physical;
        let force = action[0];

        let gravity = GRAVITY_TERM * r(3.0 * position).cos();
        let acceleration = if (-MAX_FORCE..=MAX_FORCE).contains(&force) || force.is_nan() {
            // An in-range f32 force keeps the whole term in f32.
            f64::from(force * POWER as f32 - gravity as f32)
        } else {
            f64::from(force.signum()) * POWER - gravity
        };
        velocity = r(velocity + r(acceleration));
        if velocity > r(MAX_SPEED) {
            velocity = MAX_SPEED;
        }
        if velocity < r(-MAX_SPEED) {
            velocity = -MAX_SPEED;
        }
        position = r(position + r(velocity));
        if position > r(MAX_POSITION_M) {
            position = MAX_POSITION_M;
        }
        if position < r(MIN_POSITION_M) {
            position = MIN_POSITION_M;
        }
        if r(position) == r(MIN_POSITION_M) && velocity < 0.0 {
            velocity = 0.0;
        }
        let terminated = r(position) >= r(GOAL_POSITION_M) && velocity >= GOAL_VELOCITY;

        let goal_reward = if terminated { GOAL_REWARD } else { 0.0 };
        let action_sq = f64::from(force) * f64::from(force);
        let reward = goal_reward - action_sq * ACTION_COST;

        self.state.physical = [f64::from(position as f32), f64::from(velocity as f32)];
        self.state.full_precision = false;
        self.observe(obs.values);
        if terminated {
            info.is_success = Some(true);
        }
        Ok(Step {
            reward,
            terminated,
            truncated: false,
        })
    }

    fn state(&self) -> Value {
        to_state(&self.state)
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        self.state = from_state("MountainCarContinuous", state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::checked_step;
    use crate::error::EnvError;

    fn rollout(env: &mut MountainCarContinuous, actions: &[f32]) -> Vec<([f32; 2], Step)> {
        let mut obs = [0.0; 2];
        let mut info = Info::default();
        actions
            .iter()
            .map(|&a| {
                let step = env.step(&[a], (&mut obs).into(), &mut info).unwrap();
                (obs, step)
            })
            .collect()
    }

    fn actions(seed: u64, n: usize) -> Vec<f32> {
        let mut rng = Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.uniform_range_f32(-1.0, 1.0)).collect()
    }

    /// Pushes along the velocity (energy pumping) until the goal is reached.
    fn pump_to_goal(env: &mut MountainCarContinuous, info: &mut Info) -> (usize, Step) {
        let mut obs = [0.0; 2];
        for t in 1..=999 {
            let action = [if obs[1] < 0.0 { -1.0 } else { 1.0 }];
            info.clear();
            let step = checked_step(env, &action, (&mut obs).into(), info).unwrap();
            if step.terminated {
                return (t, step);
            }
            assert_eq!(info.is_success, None);
        }
        panic!("energy pumping must reach the goal within 999 steps");
    }

    #[test]
    fn same_seed_gives_the_same_trajectory_and_other_seeds_differ() {
        let mut info = Info::default();
        let mut a = MountainCarContinuous::new();
        let mut b = MountainCarContinuous::new();
        let mut c = MountainCarContinuous::new();
        let (mut oa, mut ob, mut oc) = ([0.0; 2], [0.0; 2], [0.0; 2]);
        a.reset(Some(1), (&mut oa).into(), &mut info).unwrap();
        b.reset(Some(1), (&mut ob).into(), &mut info).unwrap();
        c.reset(Some(2), (&mut oc).into(), &mut info).unwrap();
        assert_eq!(oa, ob);
        assert_ne!(oa, oc);
        let acts = actions(5, 120);
        assert_eq!(rollout(&mut a, &acts), rollout(&mut b, &acts));
    }

    #[test]
    fn state_round_trip_continues_identically() {
        let mut info = Info::default();
        let mut obs = [0.0; 2];
        for split in [0, 9] {
            let mut env = MountainCarContinuous::new();
            env.reset(Some(7), (&mut obs).into(), &mut info).unwrap();
            rollout(&mut env, &actions(1, split));
            let saved = env.state();
            let tail = actions(2, 60);
            let expected = rollout(&mut env, &tail);
            let mut expected_reset = [0.0; 2];
            env.reset(None, (&mut expected_reset).into(), &mut info)
                .unwrap();

            let mut restored = MountainCarContinuous::new();
            restored.set_state(&saved).unwrap();
            assert_eq!(rollout(&mut restored, &tail), expected, "split {split}");
            let mut reset_obs = [0.0; 2];
            restored
                .reset(None, (&mut reset_obs).into(), &mut info)
                .unwrap();
            assert_eq!(reset_obs, expected_reset);
        }
    }

    #[test]
    fn reaching_the_goal_terminates_with_success_and_the_bonus() {
        let mut env = MountainCarContinuous::new();
        let mut obs = [0.0; 2];
        let mut info = Info::default();
        for seed in 0..5 {
            env.reset(Some(seed), (&mut obs).into(), &mut info).unwrap();
            let (steps, step) = pump_to_goal(&mut env, &mut info);
            assert!(steps < 200, "{steps}");
            assert_eq!(info.is_success, Some(true));
            assert!((step.reward - (GOAL_REWARD - ACTION_COST)).abs() < 1e-12);
            let [position, velocity] = env.physical_state();
            assert!(position >= 0.45 - 1e-7 && velocity >= 0.0);
        }
    }

    #[test]
    fn observations_stay_in_the_space() {
        let mut env = MountainCarContinuous::new();
        let mut obs = [0.0; 2];
        let mut info = Info::default();
        let mut rng = Rng::seed_from_u64(4);
        for episode in 0..10 {
            env.reset(Some(episode), (&mut obs).into(), &mut info)
                .unwrap();
            let position = env.physical_state()[0];
            assert!((-0.6..-0.4).contains(&position) && env.physical_state()[1] == 0.0);
            env.observation_space().check(&obs).unwrap();
            for _ in 0..300 {
                let mut action = [0.0];
                env.action_space().sample(&mut rng, &mut action);
                let step = checked_step(&mut env, &action, (&mut obs).into(), &mut info).unwrap();
                env.observation_space().check(&obs).unwrap();
                let expected = -0.1 * f64::from(action[0]).powi(2);
                if !step.terminated {
                    assert!((step.reward - expected).abs() < 1e-15);
                }
            }
        }
    }

    #[test]
    fn invalid_actions_are_rejected_by_checked_step() {
        let mut env = MountainCarContinuous::new();
        let mut obs = [0.0; 2];
        let mut info = Info::default();
        for bad in [[1.5f32], [-1.001], [f32::NAN]] {
            let err = checked_step(&mut env, &bad, (&mut obs).into(), &mut info).unwrap_err();
            assert!(matches!(err, EnvError::InvalidAction { .. }), "{err}");
        }
        assert!(checked_step(&mut env, &[0.0, 0.0], (&mut obs).into(), &mut info).is_err());
    }

    #[test]
    fn left_wall_stops_the_car() {
        let mut env = MountainCarContinuous::new();
        env.set_physical_state(&[-1.19, -0.05]).unwrap();
        let (obs, step) = rollout(&mut env, &[-1.0])[0];
        assert_eq!(obs, [-1.2f32, 0.0]);
        assert!(!step.terminated);
    }

    #[test]
    fn clipped_force_moves_like_the_limit_but_pays_in_full() {
        let start = [-0.3, 0.02];
        let mut wide = MountainCarContinuous::new();
        let mut limit = MountainCarContinuous::new();
        wide.set_physical_state(&start).unwrap();
        limit.set_physical_state(&start).unwrap();
        let (wide_obs, wide_step) = rollout(&mut wide, &[3.0])[0];
        let (limit_obs, limit_step) = rollout(&mut limit, &[1.0])[0];
        assert!((wide_obs[1] - limit_obs[1]).abs() < 1e-7);
        assert!((wide_step.reward + 0.9).abs() < 1e-12);
        assert!((limit_step.reward + 0.1).abs() < 1e-12);
    }

    #[test]
    fn one_step_matches_the_closed_form() {
        let (position, velocity, force) = (-0.5f64, 0.01f64, 0.5f32);
        let mut env = MountainCarContinuous::new();
        env.set_physical_state(&[position, velocity]).unwrap();
        let (obs, _) = rollout(&mut env, &[force])[0];
        let new_velocity = velocity + 0.0015 * f64::from(force) - 0.0025 * (3.0 * position).cos();
        let new_position = position + new_velocity;
        assert!((f64::from(obs[1]) - new_velocity).abs() < 1e-8, "{obs:?}");
        assert!((f64::from(obs[0]) - new_position).abs() < 1e-7, "{obs:?}");
    }
}
