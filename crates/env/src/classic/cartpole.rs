//! CartPole-v1 (Barto, Sutton and Anderson's cart-pole) and its partially
//! observable variant without velocities.

use crate::obs::ObsMut;
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check_physical_state;
use crate::env::{Env, Info, Step, from_state, to_state};
use crate::error::Result;
use crate::space::Space;

/// Gravity, m/s².
const GRAVITY_MPS2: f64 = 9.8;
/// Mass of the cart, kg.
const CART_MASS_KG: f64 = 1.0;
/// Mass of the pole, kg.
const POLE_MASS_KG: f64 = 0.1;
/// Half the pole's length (distance from the pivot to its centre of mass), m.
const POLE_HALF_LENGTH_M: f64 = 0.5;
/// Magnitude of the push applied by either action, N.
const FORCE_N: f64 = 10.0;
/// Integration step, s.
const TAU_S: f64 = 0.02;
/// The episode terminates once the cart centre leaves `[-2.4, 2.4]` m.
const X_THRESHOLD_M: f64 = 2.4;
/// The episode terminates once the pole leans more than 12 degrees. Written as
/// Gymnasium writes it so that the threshold is the same `f64`.
const THETA_THRESHOLD_RAD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
/// Initial state components are drawn uniformly from `(-0.05, 0.05)`.
const INITIAL_STATE_BOUND: f64 = 0.05;

/// Everything that changes while stepping, serialised for checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CartPoleState {
    /// Cart position (m), cart velocity (m/s), pole angle from vertical (rad,
    /// positive leaning right) and pole angular velocity (rad/s).
    physical: [f64; 4],
    /// Steps taken since the episode terminated (`None` before termination).
    steps_beyond_terminated: Option<u64>,
    /// The environment's generator (initial states).
    rng: Rng,
}

/// CartPole-v1: keep a pole upright on a cart by pushing it left or right.
///
/// Matches Gymnasium 1.4's `CartPoleEnv` exactly: explicit-Euler integration in
/// `f64`, observation `[x, x_dot, theta, theta_dot]` rounded to `f32`, action
/// `Discrete(2)` (0 pushes left, 1 pushes right with 10 N), termination when
/// `|x| > 2.4` m or `|theta| > 12°`. The reward is +1 for every step including
/// the terminating one (0 for steps taken after termination, which callers
/// should not take); with [`CartPole::with_sutton_barto_reward`] it is 0 per
/// step and -1 on termination instead.
///
/// The registered task, CartPole-v1, adds a 500-step time limit (applied by the
/// time-limit wrapper) and counts as solved at a mean return of 475. Success is
/// not defined for CartPole: `Info::is_success` stays `None`, and the return
/// (episode length) is the measure of performance.
#[derive(Clone, Debug)]
pub struct CartPole {
    state: CartPoleState,
    sutton_barto_reward: bool,
    observation_space: Space,
    action_space: Space,
}

impl Default for CartPole {
    fn default() -> Self {
        Self::new()
    }
}

impl CartPole {
    /// A CartPole with Gymnasium's default (+1 per step) reward. Its generator
    /// is seeded with 0 and the system rests upright until the first reset.
    pub fn new() -> Self {
        let high = [
            (X_THRESHOLD_M * 2.0) as f32,
            f32::INFINITY,
            (THETA_THRESHOLD_RAD * 2.0) as f32,
            f32::INFINITY,
        ];
        Self {
            state: CartPoleState {
                physical: [0.0; 4],
                steps_beyond_terminated: None,
                rng: Rng::seed_from_u64(0),
            },
            sutton_barto_reward: false,
            observation_space: Space::box_1d(high.iter().map(|h| -h).collect(), high.to_vec()),
            action_space: Space::Discrete { n: 2 },
        }
    }

    /// Selects the original Sutton-Barto reward (0 per step, -1 on termination),
    /// Gymnasium's `sutton_barto_reward=True`.
    pub fn with_sutton_barto_reward(mut self, enabled: bool) -> Self {
        self.sutton_barto_reward = enabled;
        self
    }

    /// The physical state `[x_m, x_dot_mps, theta_rad, theta_dot_radps]`.
    pub fn physical_state(&self) -> [f64; 4] {
        self.state.physical
    }

    /// Starts an episode from an exact physical state, as if reset had drawn it
    /// (the generator is left untouched). Used to replay recorded trajectories.
    pub fn set_physical_state(&mut self, state: &[f64]) -> Result<()> {
        check_physical_state("CartPole", state, 4)?;
        self.state.physical.copy_from_slice(state);
        self.state.steps_beyond_terminated = None;
        Ok(())
    }

    /// Writes the observation of the current state (`f32` of each component).
    pub fn observe(&self, obs: &mut [f32]) {
        for (o, &s) in obs.iter_mut().zip(&self.state.physical) {
            *o = s as f32;
        }
    }

    /// One explicit-Euler step of the cart-pole equations of motion (Florian's
    /// corrected form as used by Gymnasium), in Gymnasium's operation order so
    /// that the `f64` results are bit-identical.
    fn integrate(&mut self, push_right: bool) {
        let total_mass = POLE_MASS_KG + CART_MASS_KG;
        let pole_mass_length = POLE_MASS_KG * POLE_HALF_LENGTH_M;
        let [x, x_dot, theta, theta_dot] = self.state.physical;
        let force = if push_right { FORCE_N } else { -FORCE_N };
        let cos_theta = theta.cos();
        let sin_theta = theta.sin();
        let temp = (force + pole_mass_length * (theta_dot * theta_dot) * sin_theta) / total_mass;
        let theta_acc = (GRAVITY_MPS2 * sin_theta - cos_theta * temp)
            / (POLE_HALF_LENGTH_M
                * (4.0 / 3.0 - POLE_MASS_KG * (cos_theta * cos_theta) / total_mass));
        let x_acc = temp - pole_mass_length * theta_acc * cos_theta / total_mass;
        self.state.physical = [
            x + TAU_S * x_dot,
            x_dot + TAU_S * x_acc,
            theta + TAU_S * theta_dot,
            theta_dot + TAU_S * theta_acc,
        ];
    }

    /// `|x| > 2.4` or `|theta| > 12°` (exactly Gymnasium's four comparisons,
    /// since negation is exact).
    fn is_terminal(&self) -> bool {
        let [x, _, theta, _] = self.state.physical;
        x.abs() > X_THRESHOLD_M || theta.abs() > THETA_THRESHOLD_RAD
    }

    /// The reward of a step given whether it ends (or follows the end of) the
    /// episode, updating the count of steps taken past termination.
    fn reward(&mut self, terminated: bool) -> f64 {
        if !terminated {
            return if self.sutton_barto_reward { 0.0 } else { 1.0 };
        }
        match &mut self.state.steps_beyond_terminated {
            None => {
                self.state.steps_beyond_terminated = Some(0);
                if self.sutton_barto_reward { -1.0 } else { 1.0 }
            }
            Some(n) => {
                *n += 1;
                if self.sutton_barto_reward { -1.0 } else { 0.0 }
            }
        }
    }
}

impl Env for CartPole {
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
        for s in &mut self.state.physical {
            *s = self
                .state
                .rng
                .uniform_range(-INITIAL_STATE_BOUND, INITIAL_STATE_BOUND);
        }
        self.state.steps_beyond_terminated = None;
        self.observe(obs.values);
        Ok(())
    }

    fn step(&mut self, action: &[f32], obs: ObsMut<'_>, _info: &mut Info) -> Result<Step> {
        self.integrate(action[0] == 1.0);
        let terminated = self.is_terminal();
        let reward = self.reward(terminated);
        self.observe(obs.values);
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
        self.state = from_state("CartPole", state)?;
        Ok(())
    }
}

/// Indices of the cart position and pole angle in CartPole's observation.
const OBSERVED: [usize; 2] = [0, 2];

/// CartPole with the velocities removed from the observation: `[x, theta]`.
///
/// The partially observable task of RL Zoo's CartPoleNoVel-v1, which needs
/// memory (a recurrent policy or frame stacking) to solve. The dynamics,
/// reward, termination, limits (500 steps, threshold 475) and state are those
/// of the wrapped [`CartPole`]. RL Zoo's newer velocity-masking wrapper zeroes
/// the velocity entries instead of dropping them; the information is the same.
#[derive(Clone, Debug)]
pub struct CartPoleNoVel {
    inner: CartPole,
    observation_space: Space,
}

impl Default for CartPoleNoVel {
    fn default() -> Self {
        Self::new()
    }
}

impl CartPoleNoVel {
    /// A velocity-free view of a default [`CartPole`].
    pub fn new() -> Self {
        Self::from_cartpole(CartPole::new())
    }

    /// A velocity-free view of the given CartPole (e.g. with the Sutton-Barto reward).
    pub fn from_cartpole(inner: CartPole) -> Self {
        let Space::Box { low, high, .. } = inner.observation_space() else {
            unreachable!("CartPole observes a Box");
        };
        let observation_space = Space::box_1d(
            OBSERVED.iter().map(|&i| low[i]).collect(),
            OBSERVED.iter().map(|&i| high[i]).collect(),
        );
        Self {
            inner,
            observation_space,
        }
    }

    /// The underlying full-state CartPole.
    pub fn cartpole(&self) -> &CartPole {
        &self.inner
    }

    /// See [`CartPole::physical_state`].
    pub fn physical_state(&self) -> [f64; 4] {
        self.inner.physical_state()
    }

    /// See [`CartPole::set_physical_state`].
    pub fn set_physical_state(&mut self, state: &[f64]) -> Result<()> {
        self.inner.set_physical_state(state)
    }

    /// Writes `[x, theta]` of the current state.
    pub fn observe(&self, obs: &mut [f32]) {
        let physical = self.inner.physical_state();
        for (o, &i) in obs.iter_mut().zip(&OBSERVED) {
            *o = physical[i] as f32;
        }
    }
}

impl Env for CartPoleNoVel {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }

    fn reset(&mut self, seed: Option<u64>, obs: ObsMut<'_>, info: &mut Info) -> Result<()> {
        let mut full = [0.0; 4];
        self.inner.reset(seed, (&mut full).into(), info)?;
        self.observe(obs.values);
        Ok(())
    }

    fn step(&mut self, action: &[f32], obs: ObsMut<'_>, info: &mut Info) -> Result<Step> {
        let mut full = [0.0; 4];
        let step = self.inner.step(action, (&mut full).into(), info)?;
        self.observe(obs.values);
        Ok(step)
    }

    fn state(&self) -> Value {
        self.inner.state()
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        self.inner.set_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::checked_step;
    use crate::error::EnvError;

    fn rollout(env: &mut impl Env, actions: &[f32]) -> Vec<(Vec<f32>, Step)> {
        let mut obs = vec![0.0; env.observation_space().flat_dim()];
        let mut info = Info::default();
        actions
            .iter()
            .map(|&a| {
                let step = env.step(&[a], (&mut obs).into(), &mut info).unwrap();
                (obs.clone(), step)
            })
            .collect()
    }

    fn actions(seed: u64, n: usize) -> Vec<f32> {
        let mut rng = Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.below(2) as f32).collect()
    }

    #[test]
    fn same_seed_gives_the_same_trajectory_and_other_seeds_differ() {
        let mut info = Info::default();
        let (mut a, mut b, mut c) = (CartPole::new(), CartPole::new(), CartPole::new());
        let (mut oa, mut ob, mut oc) = ([0.0; 4], [0.0; 4], [0.0; 4]);
        a.reset(Some(11), (&mut oa).into(), &mut info).unwrap();
        b.reset(Some(11), (&mut ob).into(), &mut info).unwrap();
        c.reset(Some(12), (&mut oc).into(), &mut info).unwrap();
        assert_eq!(oa, ob);
        assert_ne!(oa, oc);
        let acts = actions(5, 30);
        assert_eq!(rollout(&mut a, &acts), rollout(&mut b, &acts));
    }

    #[test]
    fn reset_without_seed_continues_the_stream() {
        let mut info = Info::default();
        let mut env = CartPole::new();
        let (mut first, mut second, mut again) = ([0.0; 4], [0.0; 4], [0.0; 4]);
        env.reset(Some(4), (&mut first).into(), &mut info).unwrap();
        env.reset(None, (&mut second).into(), &mut info).unwrap();
        assert_ne!(first, second);
        env.reset(Some(4), (&mut again).into(), &mut info).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn initial_state_is_uniform_in_the_documented_bounds() {
        let mut env = CartPole::new();
        let mut obs = [0.0; 4];
        let mut info = Info::default();
        env.reset(Some(0), (&mut obs).into(), &mut info).unwrap();
        let n = 4000;
        let mut sum = [0.0; 4];
        for _ in 0..n {
            env.reset(None, (&mut obs).into(), &mut info).unwrap();
            for (k, s) in env.physical_state().iter().enumerate() {
                assert!(s.abs() < INITIAL_STATE_BOUND, "{s}");
                sum[k] += s;
            }
        }
        // Mean of U(-0.05, 0.05) over 4000 draws: standard error 4.6e-4.
        for s in sum {
            assert!((s / n as f64).abs() < 2.5e-3, "{}", s / n as f64);
        }
    }

    #[test]
    fn state_round_trip_continues_identically() {
        let mut info = Info::default();
        let mut obs = [0.0; 4];
        let mut env = CartPole::new();
        env.reset(Some(9), (&mut obs).into(), &mut info).unwrap();
        rollout(&mut env, &actions(1, 7));
        let saved = env.state();
        let tail = actions(2, 20);
        let expected = rollout(&mut env, &tail);
        let mut expected_reset = [0.0; 4];
        env.reset(None, (&mut expected_reset).into(), &mut info)
            .unwrap();

        let mut restored = CartPole::new();
        restored.set_state(&saved).unwrap();
        assert_eq!(rollout(&mut restored, &tail), expected);
        let mut reset_obs = [0.0; 4];
        restored
            .reset(None, (&mut reset_obs).into(), &mut info)
            .unwrap();
        assert_eq!(reset_obs, expected_reset);
    }

    #[test]
    fn foreign_state_is_rejected_with_the_env_name() {
        let mut env = CartPole::new();
        let err = env
            .set_state(&serde_json::json!({ "theta": 1.0 }))
            .unwrap_err();
        assert!(matches!(err, EnvError::State { .. }));
        assert!(err.to_string().contains("CartPole"), "{err}");
    }

    #[test]
    fn observations_stay_in_the_space_until_termination() {
        let mut env = CartPole::new();
        let mut obs = [0.0; 4];
        let mut info = Info::default();
        let mut rng = Rng::seed_from_u64(3);
        for episode in 0..50 {
            env.reset(Some(episode), (&mut obs).into(), &mut info)
                .unwrap();
            env.observation_space().check(&obs).unwrap();
            loop {
                let action = [rng.below(2) as f32];
                let step = checked_step(&mut env, &action, (&mut obs).into(), &mut info).unwrap();
                env.observation_space().check(&obs).unwrap();
                assert_eq!(step.reward, 1.0);
                assert_eq!(info.is_success, None);
                if step.terminated {
                    break;
                }
            }
        }
    }

    #[test]
    fn invalid_actions_are_rejected_by_checked_step() {
        let mut env = CartPole::new();
        let mut obs = [0.0; 4];
        let mut info = Info::default();
        env.reset(Some(0), (&mut obs).into(), &mut info).unwrap();
        for bad in [[2.0], [0.5], [-1.0], [f32::NAN]] {
            let err = checked_step(&mut env, &bad, (&mut obs).into(), &mut info).unwrap_err();
            assert!(matches!(err, EnvError::InvalidAction { .. }), "{err}");
        }
        let err = checked_step(&mut env, &[0.0, 1.0], (&mut obs).into(), &mut info).unwrap_err();
        assert!(err.to_string().contains("expected 1"), "{err}");
        let err = checked_step(&mut env, &[1.0], (&mut obs[..2]).into(), &mut info).unwrap_err();
        assert!(matches!(err, EnvError::Shape { .. }), "{err}");
    }

    #[test]
    fn mirrored_state_and_action_give_a_mirrored_trajectory() {
        // The equations are odd in (x, x_dot, theta, theta_dot, force).
        let start = [0.1, -0.2, 0.03, 0.4];
        let mut env = CartPole::new();
        let mut mirror = CartPole::new();
        env.set_physical_state(&start).unwrap();
        mirror.set_physical_state(&start.map(|s: f64| -s)).unwrap();
        let acts = actions(8, 15);
        let flipped: Vec<f32> = acts.iter().map(|a| 1.0 - a).collect();
        for ((o, s), (mo, ms)) in rollout(&mut env, &acts)
            .into_iter()
            .zip(rollout(&mut mirror, &flipped))
        {
            let negated: Vec<f32> = mo.iter().map(|v| -v).collect();
            assert_eq!(o, negated);
            assert_eq!(s, ms);
        }
    }

    #[test]
    fn first_step_from_rest_matches_the_closed_form() {
        // Upright and at rest, a push F gives theta_acc = -F/M / (l (4/3 - m/M))
        // and x_acc = F/M - m l theta_acc / M (M = total mass, m = pole mass).
        let mut env = CartPole::new();
        env.set_physical_state(&[0.0; 4]).unwrap();
        let mut obs = [0.0; 4];
        env.step(&[1.0], (&mut obs).into(), &mut Info::default())
            .unwrap();
        let total = CART_MASS_KG + POLE_MASS_KG;
        let theta_acc = -(FORCE_N / total) / (0.5 * (4.0 / 3.0 - 0.1 / total));
        let x_acc = FORCE_N / total - 0.1 * 0.5 * theta_acc / total;
        let [x, x_dot, theta, theta_dot] = env.physical_state();
        assert_eq!((x, theta), (0.0, 0.0));
        assert!((x_dot - TAU_S * x_acc).abs() < 1e-15, "{x_dot}");
        assert!((theta_dot - TAU_S * theta_acc).abs() < 1e-15, "{theta_dot}");
        assert!(x_acc > 9.0 && theta_acc < -13.0);
    }

    #[test]
    fn termination_rewards_follow_gymnasium() {
        let mut env = CartPole::new();
        // Past the angle threshold already: the next step terminates.
        env.set_physical_state(&[0.0, 0.0, 0.25, 0.0]).unwrap();
        let steps = rollout(&mut env, &[0.0, 0.0, 0.0]);
        let rewards: Vec<f64> = steps.iter().map(|(_, s)| s.reward).collect();
        assert_eq!(rewards, [1.0, 0.0, 0.0]);
        assert!(steps.iter().all(|(_, s)| s.terminated && !s.truncated));

        let mut sb = CartPole::new().with_sutton_barto_reward(true);
        sb.set_physical_state(&[0.0; 4]).unwrap();
        assert_eq!(rollout(&mut sb, &[1.0])[0].1.reward, 0.0);
        sb.set_physical_state(&[2.45, 0.0, 0.0, 0.0]).unwrap();
        assert_eq!(rollout(&mut sb, &[1.0])[0].1.reward, -1.0);
    }

    #[test]
    fn no_vel_observes_position_and_angle_of_the_same_dynamics() {
        let mut info = Info::default();
        let mut full = CartPole::new();
        let mut partial = CartPoleNoVel::new();
        assert_eq!(partial.observation_space().flat_dim(), 2);
        let (mut of, mut op) = ([0.0; 4], [0.0; 2]);
        full.reset(Some(21), (&mut of).into(), &mut info).unwrap();
        partial
            .reset(Some(21), (&mut op).into(), &mut info)
            .unwrap();
        assert_eq!(op, [of[0], of[2]]);
        let acts = actions(4, 40);
        for ((o, s), (po, ps)) in rollout(&mut full, &acts)
            .into_iter()
            .zip(rollout(&mut partial, &acts))
        {
            assert_eq!(po, [o[0], o[2]]);
            assert_eq!(s, ps);
            if !s.terminated {
                partial.observation_space().check(&po).unwrap();
            }
        }
        let saved = partial.state();
        let mut restored = CartPoleNoVel::new();
        restored.set_state(&saved).unwrap();
        assert_eq!(restored.physical_state(), partial.physical_state());
    }

    /// Single-environment throughput; run with
    /// `cargo test --release -p hlynr-env cartpole_steps_per_second -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing measurement, not a correctness check"]
    fn cartpole_steps_per_second() {
        let mut env = CartPole::new();
        let mut obs = [0.0; 4];
        let mut info = Info::default();
        let mut rng = Rng::seed_from_u64(0);
        env.reset(Some(0), (&mut obs).into(), &mut info).unwrap();
        let steps = 20_000_000u64;
        let start = std::time::Instant::now();
        let mut episodes = 0u64;
        for _ in 0..steps {
            let action = [rng.below(2) as f32];
            info.clear();
            let step = env.step(&action, (&mut obs).into(), &mut info).unwrap();
            if step.terminated {
                env.reset(None, (&mut obs).into(), &mut info).unwrap();
                episodes += 1;
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "CartPole: {steps} steps ({episodes} episodes) in {seconds:.3} s = {:.1} M steps/s",
            steps as f64 / seconds / 1e6
        );
        assert!(episodes > 0);
    }
}
