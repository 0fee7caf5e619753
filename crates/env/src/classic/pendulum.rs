//! Pendulum-v1: swing a torque-limited pendulum up and hold it inverted.

use crate::obs::ObsMut;
use std::f64::consts::PI;

use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check_physical_state;
use crate::env::{Env, Info, Step, from_state, to_state};
use crate::error::{EnvError, Result};
use crate::space::Space;

/// Angular speed limit, rad/s (the speed is clipped, not the episode ended).
const MAX_SPEED_RADPS: f64 = 8.0;
/// Torque limit, N·m; actions beyond it are clipped.
const MAX_TORQUE_NM: f32 = 2.0;
/// Integration step, s.
const DT_S: f64 = 0.05;
/// Bob mass, kg.
const MASS_KG: f64 = 1.0;
/// Rod length, m.
const LENGTH_M: f64 = 1.0;
/// Gymnasium's default gravity, m/s².
const DEFAULT_GRAVITY_MPS2: f64 = 10.0;
/// Initial angle is uniform in `(-pi, pi)` rad, initial speed in `(-1, 1)` rad/s.
const INITIAL_ANGLE_BOUND_RAD: f64 = PI;
const INITIAL_SPEED_BOUND_RADPS: f64 = 1.0;

/// Everything that changes while stepping, serialised for checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendulumState {
    /// Angle from upright (rad, not wrapped) and angular velocity (rad/s).
    physical: [f64; 2],
    /// The environment's generator (initial states).
    rng: Rng,
}

/// Pendulum-v1: a frictionless pendulum driven by a bounded torque.
///
/// Matches Gymnasium 1.4's `PendulumEnv` exactly: the action is a torque in
/// `[-2, 2]` N·m (out-of-range values are clipped), the observation is
/// `[cos theta, sin theta, theta_dot]` as `f32` (theta = 0 is upright), the
/// reward is `-(wrap(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2)` evaluated on the
/// state before the step, and the update is semi-implicit Euler with the new
/// speed clipped to 8 rad/s before the angle advances. Gymnasium evaluates the
/// torque terms in `f32` (the action's dtype), so this does too.
///
/// The task never terminates; the registered Pendulum-v1 truncates at 200 steps
/// (time-limit wrapper) and has no reward threshold. Success is not defined:
/// `Info::is_success` stays `None`.
#[derive(Clone, Debug)]
pub struct Pendulum {
    state: PendulumState,
    gravity_mps2: f64,
    observation_space: Space,
    action_space: Space,
}

impl Default for Pendulum {
    fn default() -> Self {
        Self::new()
    }
}

impl Pendulum {
    /// A pendulum with Gymnasium's default gravity (10 m/s²). Its generator is
    /// seeded with 0 and it hangs upright at rest until the first reset.
    pub fn new() -> Self {
        let high = [1.0, 1.0, MAX_SPEED_RADPS as f32];
        Self {
            state: PendulumState {
                physical: [0.0; 2],
                rng: Rng::seed_from_u64(0),
            },
            gravity_mps2: DEFAULT_GRAVITY_MPS2,
            observation_space: Space::box_1d(high.iter().map(|h| -h).collect(), high.to_vec()),
            action_space: Space::uniform_box(-MAX_TORQUE_NM, MAX_TORQUE_NM, &[1]),
        }
    }

    /// A pendulum under another gravity (Gymnasium's `g` argument).
    pub fn with_gravity(gravity_mps2: f64) -> Result<Self> {
        if !(gravity_mps2.is_finite() && gravity_mps2 >= 0.0) {
            return Err(EnvError::invalid(
                "Pendulum gravity_mps2",
                format!("must be finite and non-negative, got {gravity_mps2}"),
            ));
        }
        Ok(Self {
            gravity_mps2,
            ..Self::new()
        })
    }

    /// Gravity in m/s².
    pub fn gravity_mps2(&self) -> f64 {
        self.gravity_mps2
    }

    /// The physical state `[theta_rad, theta_dot_radps]`.
    pub fn physical_state(&self) -> [f64; 2] {
        self.state.physical
    }

    /// Starts an episode from an exact physical state, as if reset had drawn it
    /// (the generator is left untouched). Used to replay recorded trajectories.
    pub fn set_physical_state(&mut self, state: &[f64]) -> Result<()> {
        check_physical_state("Pendulum", state, 2)?;
        self.state.physical.copy_from_slice(state);
        Ok(())
    }

    /// Writes `[cos theta, sin theta, theta_dot]` of the current state.
    pub fn observe(&self, obs: &mut [f32]) {
        let [theta, theta_dot] = self.state.physical;
        obs[0] = theta.cos() as f32;
        obs[1] = theta.sin() as f32;
        obs[2] = theta_dot as f32;
    }
}

/// Wraps an angle into `[-pi, pi)` with a floored modulo, as Gymnasium does.
fn angle_normalize(theta: f64) -> f64 {
    (theta + PI).rem_euclid(2.0 * PI) - PI
}

impl Env for Pendulum {
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
        let rng = &mut self.state.rng;
        let theta = rng.uniform_range(-INITIAL_ANGLE_BOUND_RAD, INITIAL_ANGLE_BOUND_RAD);
        let theta_dot = rng.uniform_range(-INITIAL_SPEED_BOUND_RADPS, INITIAL_SPEED_BOUND_RADPS);
        self.state.physical = [theta, theta_dot];
        self.observe(obs.values);
        Ok(())
    }

    fn step(&mut self, action: &[f32], obs: ObsMut<'_>, _info: &mut Info) -> Result<Step> {
        let [theta, theta_dot] = self.state.physical;
        let torque = action[0].clamp(-MAX_TORQUE_NM, MAX_TORQUE_NM);
        // The torque terms are f32 products, as in Gymnasium with f32 actions.
        let torque_cost = f64::from(0.001f32 * (torque * torque));
        let torque_acc = f64::from((3.0 / (MASS_KG * LENGTH_M * LENGTH_M)) as f32 * torque);
        let wrapped = angle_normalize(theta);
        let cost = wrapped * wrapped + 0.1 * (theta_dot * theta_dot) + torque_cost;

        let gravity_acc = 3.0 * self.gravity_mps2 / (2.0 * LENGTH_M) * theta.sin();
        let new_theta_dot = (theta_dot + (gravity_acc + torque_acc) * DT_S)
            .clamp(-MAX_SPEED_RADPS, MAX_SPEED_RADPS);
        let new_theta = theta + new_theta_dot * DT_S;
        self.state.physical = [new_theta, new_theta_dot];
        self.observe(obs.values);
        Ok(Step {
            reward: -cost,
            terminated: false,
            truncated: false,
        })
    }

    fn state(&self) -> Value {
        to_state(&self.state)
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        self.state = from_state("Pendulum", state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::checked_step;

    fn rollout(env: &mut Pendulum, actions: &[f32]) -> Vec<([f32; 3], Step)> {
        let mut obs = [0.0; 3];
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
        (0..n).map(|_| rng.uniform_range_f32(-2.0, 2.0)).collect()
    }

    #[test]
    fn same_seed_gives_the_same_trajectory_and_other_seeds_differ() {
        let mut info = Info::default();
        let (mut a, mut b, mut c) = (Pendulum::new(), Pendulum::new(), Pendulum::new());
        let (mut oa, mut ob, mut oc) = ([0.0; 3], [0.0; 3], [0.0; 3]);
        a.reset(Some(5), (&mut oa).into(), &mut info).unwrap();
        b.reset(Some(5), (&mut ob).into(), &mut info).unwrap();
        c.reset(Some(6), (&mut oc).into(), &mut info).unwrap();
        assert_eq!(oa, ob);
        assert_ne!(oa, oc);
        let acts = actions(1, 100);
        assert_eq!(rollout(&mut a, &acts), rollout(&mut b, &acts));
    }

    #[test]
    fn state_round_trip_continues_identically() {
        let mut info = Info::default();
        let mut obs = [0.0; 3];
        let mut env = Pendulum::with_gravity(9.81).unwrap();
        env.reset(Some(2), (&mut obs).into(), &mut info).unwrap();
        rollout(&mut env, &actions(3, 13));
        let saved = env.state();
        let tail = actions(4, 50);
        let expected = rollout(&mut env, &tail);
        let mut expected_reset = [0.0; 3];
        env.reset(None, (&mut expected_reset).into(), &mut info)
            .unwrap();

        let mut restored = Pendulum::with_gravity(9.81).unwrap();
        restored.set_state(&saved).unwrap();
        assert_eq!(rollout(&mut restored, &tail), expected);
        let mut reset_obs = [0.0; 3];
        restored
            .reset(None, (&mut reset_obs).into(), &mut info)
            .unwrap();
        assert_eq!(reset_obs, expected_reset);
    }

    #[test]
    fn observations_stay_in_the_space_and_the_state_in_its_reset_range() {
        let mut env = Pendulum::new();
        let mut obs = [0.0; 3];
        let mut info = Info::default();
        let mut rng = Rng::seed_from_u64(8);
        for episode in 0..20 {
            env.reset(Some(episode), (&mut obs).into(), &mut info)
                .unwrap();
            let [theta, theta_dot] = env.physical_state();
            assert!(theta.abs() < PI && theta_dot.abs() < 1.0);
            env.observation_space().check(&obs).unwrap();
            for _ in 0..200 {
                let mut action = [0.0];
                env.action_space().sample(&mut rng, &mut action);
                let step = checked_step(&mut env, &action, (&mut obs).into(), &mut info).unwrap();
                env.observation_space().check(&obs).unwrap();
                assert!(!step.done() && step.reward <= 0.0);
                assert_eq!(info.is_success, None);
            }
        }
    }

    #[test]
    fn invalid_actions_are_rejected_by_checked_step() {
        let mut env = Pendulum::new();
        let mut obs = [0.0; 3];
        let mut info = Info::default();
        for bad in [[2.5f32], [-2.01], [f32::NAN], [f32::INFINITY]] {
            let err = checked_step(&mut env, &bad, (&mut obs).into(), &mut info).unwrap_err();
            assert!(matches!(err, EnvError::InvalidAction { .. }), "{err}");
        }
        assert!(checked_step(&mut env, &[], (&mut obs).into(), &mut info).is_err());
    }

    #[test]
    fn out_of_range_torque_acts_as_the_limit() {
        let start = [0.7, -1.3];
        let mut clipped = Pendulum::new();
        let mut limit = Pendulum::new();
        clipped.set_physical_state(&start).unwrap();
        limit.set_physical_state(&start).unwrap();
        assert_eq!(
            rollout(&mut clipped, &[5.0, -9.0]),
            rollout(&mut limit, &[2.0, -2.0])
        );
    }

    #[test]
    fn one_step_matches_the_closed_form() {
        let (theta, theta_dot, u) = (0.3f64, 0.5f64, 1.5f32);
        let mut env = Pendulum::new();
        env.set_physical_state(&[theta, theta_dot]).unwrap();
        let (obs, step) = rollout(&mut env, &[u])[0];
        let u = f64::from(u);
        let acc = 1.5 * 10.0 * theta.sin() + 3.0 * u;
        let new_theta_dot = theta_dot + acc * 0.05;
        let new_theta = theta + new_theta_dot * 0.05;
        let cost = theta * theta + 0.1 * theta_dot * theta_dot + 0.001 * u * u;
        assert!((step.reward + cost).abs() < 1e-9, "{}", step.reward);
        let [th, thd] = env.physical_state();
        assert!((th - new_theta).abs() < 1e-12 && (thd - new_theta_dot).abs() < 1e-12);
        assert_eq!(obs[2], thd as f32);
        // Hanging straight down at rest with no torque is an equilibrium.
        env.set_physical_state(&[PI, 0.0]).unwrap();
        let (_, step) = rollout(&mut env, &[0.0])[0];
        assert!((step.reward + PI * PI).abs() < 1e-12);
        assert!(env.physical_state()[1].abs() < 1e-12);
    }

    #[test]
    fn speed_is_clipped_before_the_angle_advances() {
        let mut env = Pendulum::new();
        env.set_physical_state(&[1.0, 7.9]).unwrap();
        rollout(&mut env, &[2.0]);
        assert_eq!(env.physical_state(), [1.0 + 8.0 * 0.05, 8.0]);
    }

    #[test]
    fn angle_normalize_wraps_into_the_principal_range() {
        for (theta, wrapped) in [
            (0.0, 0.0),
            (PI + 0.5, -PI + 0.5),
            (-3.0 * PI - 0.25, PI - 0.25),
        ] {
            assert!((angle_normalize(theta) - wrapped).abs() < 1e-12, "{theta}");
        }
        assert!(Pendulum::with_gravity(f64::NAN).is_err());
        assert!(Pendulum::with_gravity(-1.0).is_err());
    }
}
