//! A batch of N environments stepped together into contiguous buffers, and the
//! [`BatchEnv`] trait that batch consumers (algorithms, evaluators) are written
//! against.
//!
//! # Buffers
//!
//! [`VecEnv`] owns one `[N, obs_dim]` `f32` observation buffer and one
//! `[N, byte_dim]` `u8` buffer for the byte lane (frames; empty for most
//! envs), `[N]` rewards, terminated and truncated flags, `[N]` [`Info`]s and
//! final-observation buffers of the same shapes. All are allocated at construction and overwritten in place
//! every step; infos are cleared (keeping their capacity) before each step, so a
//! step allocates nothing.
//!
//! # Auto-reset: "same-step" semantics
//!
//! When environment `i` finishes (terminated or truncated) on step `t`, it is reset
//! within the same call to [`BatchEnv::step`]:
//! - `obs()` row `i` holds the **first observation of the next episode**, so the
//!   policy acts on it directly at step `t + 1`;
//! - the **final observation** of the finished episode is copied to
//!   [`BatchEnv::final_observation`]`(i)`, which is `Some` only for environments
//!   that finished on the last step (bootstrap truncated episodes from it);
//! - `rewards()[i]`, `terminated()[i]`, `truncated()[i]` and `infos()[i]` are those
//!   of the **finishing step**, so `is_success` and episode statistics of the
//!   finished episode are reported there;
//! - the info written by the automatic reset is discarded (it is never returned).
//!
//! Automatic resets continue each environment's own generator (`reset(None)`);
//! only [`BatchEnv::reset`] reseeds, giving environment `i` the seed
//! [`hlynr_rng::derive_seed`]`(seed, i)`. Trajectories therefore depend only on
//! the seed and the actions, never on the thread count or chunking.
//!
//! # Parallel stepping
//!
//! With [`Parallelism::Rayon`] or [`Parallelism::Auto`] the batch is split into
//! contiguous chunks of environments, each chunk writing only its own rows, on the
//! current rayon pool. Environments are independent, so results are bitwise
//! identical to serial stepping. `Auto` measures the cost of an environment step
//! and goes parallel only when a chunk carries enough work to repay the task
//! overhead; cheap environments such as CartPole stay serial.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::env::{Env, Info, from_state, to_state};
use crate::error::{EnvError, Result};
use crate::obs::ObsMut;
use crate::space::Space;

/// A batch of environments with contiguous buffers and same-step auto-reset.
///
/// Generic consumers use this trait so that [`VecEnv`] and wrappers around it
/// (such as [`crate::wrappers::VecNormalize`]) are interchangeable. Accessors
/// return views of buffers owned by the batch; they stay valid until the next
/// `reset`, `step` or `set_state`.
pub trait BatchEnv: Send {
    /// Number of environments N.
    fn num_envs(&self) -> usize;

    /// Space of one environment's flat observation.
    fn observation_space(&self) -> &Space;

    /// Space of one environment's flat action.
    fn action_space(&self) -> &Space;

    /// Reseeds and resets every environment (environment `i` gets
    /// `derive_seed(seed, i)`); `obs()` then holds the first observations and
    /// `infos()` the reset infos. Fails only where a wrapper rejects the first
    /// observations (e.g. non-finite values reaching a normaliser).
    fn reset(&mut self, seed: u64) -> Result<()>;

    /// Steps every environment with the `[N, act_dim]` flat action batch and
    /// auto-resets the finished ones (see the module documentation). Invalid
    /// actions are reported before anything changes.
    fn step(&mut self, actions: &[f32]) -> Result<()>;

    /// Starts a step with `actions` without waiting for its results, so a
    /// remote or real-time batch can run while the caller does other work
    /// (`step_async` then [`BatchEnv::step_wait`] is one [`BatchEnv::step`]).
    /// Until `step_wait` returns, the buffers are not to be read. The default
    /// steps at once; batches that can overlap override both.
    fn step_async(&mut self, actions: &[f32]) -> Result<()> {
        self.step(actions)
    }

    /// Waits for the step [`BatchEnv::step_async`] started; the buffers then
    /// hold its results.
    fn step_wait(&mut self) -> Result<()> {
        Ok(())
    }

    /// Current observations' value lane, `[N, obs_dim]` row-major.
    fn obs(&self) -> &[f32];

    /// Current observations' byte lane, `[N, byte_dim]` row-major (empty when
    /// the observation space has no byte box).
    fn obs_bytes(&self) -> &[u8] {
        &[]
    }

    /// Rewards of the last step, `[N]`.
    fn rewards(&self) -> &[f32];

    /// Terminated flags of the last step, `[N]`.
    fn terminated(&self) -> &[bool];

    /// Truncated flags of the last step, `[N]`.
    fn truncated(&self) -> &[bool];

    /// Infos of the last step (of the finishing step for finished envs), `[N]`.
    fn infos(&self) -> &[Info];

    /// Final observation of the episode environment `i` finished on the last step;
    /// `None` when it did not finish (or `i` is out of range).
    fn final_observation(&self, i: usize) -> Option<&[f32]>;

    /// Byte lane of [`BatchEnv::final_observation`] (empty when the
    /// observation space has no byte box).
    fn final_observation_bytes(&self, i: usize) -> Option<&[u8]> {
        self.final_observation(i).map(|_| &[][..])
    }

    /// Controller views `[N, controller_view_dim()]` of the current states (see
    /// [`Env::write_controller_view`]); empty when the environments publish none.
    fn controller_view(&self) -> &[f64] {
        &[]
    }

    /// Width of one controller-view row.
    fn controller_view_dim(&self) -> usize {
        0
    }

    /// Which rows hold an agent, `[N]`, for batches whose rows are agent
    /// slots that fill and empty (prey born and dying in a multi-agent
    /// world); `None` (the default) when every row always holds one.
    ///
    /// Row `i` of `obs()` is an agent's observation only where `active()[i]`;
    /// the action given to an empty row is ignored, and the transition from
    /// it (reward 0, not done) is no experience: learners skip it. An agent
    /// that ends marks its row done on that step as usual.
    fn active(&self) -> Option<&[bool]> {
        None
    }

    /// Everything needed to continue exactly: each environment's state and the
    /// buffers the next step's consumer reads.
    fn state(&self) -> Value;

    /// Restores a state produced by [`BatchEnv::state`] on an identically
    /// configured batch. On error the batch is unchanged.
    fn set_state(&mut self, state: &Value) -> Result<()>;

    /// Number of `f32` slots of one observation.
    fn obs_dim(&self) -> usize {
        self.observation_space().flat_dim()
    }

    /// Number of `u8` slots of one observation.
    fn byte_dim(&self) -> usize {
        self.observation_space().byte_dim()
    }

    /// Number of `f32` slots of one action.
    fn act_dim(&self) -> usize {
        self.action_space().flat_dim()
    }
}

impl<B: BatchEnv + ?Sized> BatchEnv for Box<B> {
    fn num_envs(&self) -> usize {
        (**self).num_envs()
    }
    fn observation_space(&self) -> &Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> &Space {
        (**self).action_space()
    }
    fn reset(&mut self, seed: u64) -> Result<()> {
        (**self).reset(seed)
    }
    fn step(&mut self, actions: &[f32]) -> Result<()> {
        (**self).step(actions)
    }
    fn step_async(&mut self, actions: &[f32]) -> Result<()> {
        (**self).step_async(actions)
    }
    fn step_wait(&mut self) -> Result<()> {
        (**self).step_wait()
    }
    fn obs(&self) -> &[f32] {
        (**self).obs()
    }
    fn obs_bytes(&self) -> &[u8] {
        (**self).obs_bytes()
    }
    fn rewards(&self) -> &[f32] {
        (**self).rewards()
    }
    fn terminated(&self) -> &[bool] {
        (**self).terminated()
    }
    fn truncated(&self) -> &[bool] {
        (**self).truncated()
    }
    fn infos(&self) -> &[Info] {
        (**self).infos()
    }
    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        (**self).final_observation(i)
    }
    fn final_observation_bytes(&self, i: usize) -> Option<&[u8]> {
        (**self).final_observation_bytes(i)
    }
    fn controller_view(&self) -> &[f64] {
        (**self).controller_view()
    }
    fn controller_view_dim(&self) -> usize {
        (**self).controller_view_dim()
    }
    fn active(&self) -> Option<&[bool]> {
        (**self).active()
    }
    fn state(&self) -> Value {
        (**self).state()
    }
    fn set_state(&mut self, state: &Value) -> Result<()> {
        (**self).set_state(state)
    }
    fn obs_dim(&self) -> usize {
        (**self).obs_dim()
    }
    fn byte_dim(&self) -> usize {
        (**self).byte_dim()
    }
    fn act_dim(&self) -> usize {
        (**self).act_dim()
    }
}

/// Checks a batch of `n` flat actions against `space`: its length, then every
/// action. The error names the environment and slot (any [`BatchEnv`]'s
/// `step` reports invalid actions so, before anything changes).
pub fn check_action_batch(space: &Space, n: usize, actions: &[f32]) -> Result<()> {
    let act_dim = space.flat_dim();
    let expected = n * act_dim;
    if actions.len() != expected {
        return Err(EnvError::Shape {
            context: format!("action batch for {n} envs x {act_dim} action slots"),
            expected,
            actual: actions.len(),
        });
    }
    if act_dim == 0 {
        return Ok(());
    }
    for (env_index, action) in actions.chunks_exact(act_dim).enumerate() {
        space
            .check(action)
            .map_err(|message| EnvError::InvalidAction { env_index, message })?;
    }
    Ok(())
}

/// How [`VecEnv::step`] spreads work over threads. Every choice gives bitwise
/// identical results; only speed differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parallelism {
    /// Step all environments on the calling thread.
    Serial,
    /// Always split into contiguous chunks of at least `min_envs_per_task`
    /// environments (0 is treated as 1) on the current rayon pool.
    Rayon { min_envs_per_task: usize },
    /// Measure the cost of an environment step and run in parallel only when each
    /// task would carry at least `min_task_micros` of work; otherwise serial.
    Auto { min_task_micros: u32 },
}

impl Parallelism {
    /// Work per parallel task below which rayon's scheduling overhead (a few
    /// microseconds per task) would eat the gain.
    pub const DEFAULT_MIN_TASK_MICROS: u32 = 50;
}

impl Default for Parallelism {
    fn default() -> Self {
        Parallelism::Auto {
            min_task_micros: Self::DEFAULT_MIN_TASK_MICROS,
        }
    }
}

/// Running estimate of the wall-clock cost of one environment step, used by
/// [`Parallelism::Auto`]. Timing every step would cost more than a cheap
/// environment's step, so only every `SAMPLE_EVERY`-th step is timed.
#[derive(Clone, Debug, Default)]
struct CostEstimate {
    /// Exponential moving average of nanoseconds per environment step; 0 until
    /// the first sample.
    ns_per_env: f64,
    steps: u64,
}

impl CostEstimate {
    const SAMPLE_EVERY: u64 = 16;
    const SMOOTHING: f64 = 0.25;

    fn should_sample(&mut self) -> bool {
        let sample = self.steps.is_multiple_of(Self::SAMPLE_EVERY);
        self.steps = self.steps.wrapping_add(1);
        sample
    }

    fn record(&mut self, total_ns: u64, envs: usize) {
        let per_env = total_ns as f64 / envs.max(1) as f64;
        self.ns_per_env = if self.ns_per_env == 0.0 {
            per_env
        } else {
            self.ns_per_env + Self::SMOOTHING * (per_env - self.ns_per_env)
        };
    }
}

/// The validity rule of one slot of a flat action.
#[derive(Clone, Copy, Debug)]
enum SlotRule {
    /// A `Box` element: finite and within `[low, high]`.
    Real { low: f32, high: f32 },
    /// A discrete index: an exact integer in `0..n`.
    Index { n: f32 },
}

/// Per-slot rules equivalent to [`Space::check`], flattened so that a whole
/// action batch is validated in one tight loop. `Space::check` stays the
/// authority: it is consulted (and names the offender) only when this fast
/// check finds a problem.
#[derive(Clone, Debug)]
struct SlotRules(Vec<SlotRule>);

impl SlotRules {
    fn new(space: &Space) -> Self {
        let mut rules = Vec::with_capacity(space.flat_dim());
        Self::collect(space, &mut rules);
        Self(rules)
    }

    fn collect(space: &Space, rules: &mut Vec<SlotRule>) {
        match space {
            Space::Box { low, high, .. } => rules.extend(
                low.iter()
                    .zip(high)
                    .map(|(&low, &high)| SlotRule::Real { low, high }),
            ),
            Space::Discrete { n } => rules.push(SlotRule::Index { n: *n as f32 }),
            Space::MultiDiscrete { nvec } => {
                rules.extend(nvec.iter().map(|&n| SlotRule::Index { n: n as f32 }))
            }
            Space::Tuple { spaces } => {
                for s in spaces {
                    Self::collect(s, rules);
                }
            }
        }
    }

    /// True when every action of the `[rows, dim]` batch satisfies every rule
    /// (same predicates as `Space::check`); `actions.len()` is a multiple of the
    /// number of rules.
    #[inline]
    fn all_valid(&self, actions: &[f32]) -> bool {
        // One-slot actions (a single choice, a 1-D box) are common enough for a
        // loop without per-slot dispatch, which the compiler can vectorise.
        if let [rule] = self.0[..] {
            return actions.iter().fold(true, |ok, &v| ok & rule.accepts(v));
        }
        let mut valid = true;
        for action in actions.chunks_exact(self.0.len()) {
            for (&v, rule) in action.iter().zip(&self.0) {
                valid &= rule.accepts(v);
            }
        }
        valid
    }
}

impl SlotRule {
    /// The predicate of `Space::check` for this slot.
    #[inline(always)]
    fn accepts(self, v: f32) -> bool {
        match self {
            SlotRule::Real { low, high } => v.is_finite() & (v >= low) & (v <= high),
            // `v as i32` truncates in one (vectorisable) instruction where
            // `fract` may be a library call. The round trip is exact for
            // integral `v` below 2^31; larger indices are rejected here and
            // then judged by `Space::check`, so this is never more lenient.
            SlotRule::Index { n } => {
                v.is_finite() & ((v as i32) as f32 == v) & (v >= 0.0) & (v < n)
            }
        }
    }
}

/// N environments of one type stepped into contiguous buffers.
///
/// `E` is concrete, so the step loop has no dynamic dispatch; use `Box<dyn Env>`
/// only when environments of different types must share a batch.
///
/// [`BatchEnv::state`] holds every environment's state and the observation,
/// final-observation, reward and flag buffers; infos are not saved (they are
/// cleared on restore and refilled by the next step).
#[derive(Debug)]
pub struct VecEnv<E: Env> {
    envs: Vec<E>,
    observation_space: Space,
    action_space: Space,
    action_slots: SlotRules,
    obs_dim: usize,
    byte_dim: usize,
    act_dim: usize,
    obs: Vec<f32>,
    final_obs: Vec<f32>,
    obs_bytes: Vec<u8>,
    final_obs_bytes: Vec<u8>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    infos: Vec<Info>,
    /// Receives the (discarded) infos of automatic resets, one per env so that
    /// parallel chunks never share one and capacity is kept across steps.
    reset_infos: Vec<Info>,
    has_reset: bool,
    parallelism: Parallelism,
    cost: CostEstimate,
    /// `[N, view_dim]` controller views, refreshed after every reset, step and
    /// restore (derived from the env states, so never saved).
    controller_view: Vec<f64>,
    view_dim: usize,
}

/// Saved form of a [`VecEnv`]. Float buffers are stored as IEEE bit patterns so
/// that restoring is exact (including non-finite values).
#[derive(Serialize, Deserialize)]
struct VecEnvState {
    num_envs: usize,
    obs_dim: usize,
    has_reset: bool,
    envs: Vec<Value>,
    obs: Vec<u32>,
    final_obs: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "crate::hex")]
    obs_bytes: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "crate::hex")]
    final_obs_bytes: Vec<u8>,
    rewards: Vec<u32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
}

impl<E: Env> VecEnv<E> {
    /// Builds a batch from `envs`, which must be non-empty and share one
    /// observation space and one action space.
    pub fn new(envs: Vec<E>) -> Result<Self> {
        let Some(first) = envs.first() else {
            return Err(EnvError::invalid(
                "VecEnv",
                "needs at least one environment",
            ));
        };
        let observation_space = first.observation_space().clone();
        let action_space = first.action_space().clone();
        for (i, env) in envs.iter().enumerate().skip(1) {
            if env.observation_space() != &observation_space {
                return Err(EnvError::invalid(
                    "VecEnv",
                    format!(
                        "env {i} has observation space {:?}, env 0 has {:?}",
                        env.observation_space(),
                        observation_space
                    ),
                ));
            }
            if env.action_space() != &action_space {
                return Err(EnvError::invalid(
                    "VecEnv",
                    format!(
                        "env {i} has action space {:?}, env 0 has {:?}",
                        env.action_space(),
                        action_space
                    ),
                ));
            }
        }
        if action_space.byte_dim() > 0 {
            return Err(EnvError::invalid(
                "VecEnv",
                format!(
                    "actions are real-valued; the action space {action_space:?} has a byte box"
                ),
            ));
        }
        let view_dim = first.controller_view_dim();
        if let Some(i) = envs
            .iter()
            .position(|e| e.controller_view_dim() != view_dim)
        {
            return Err(EnvError::invalid(
                "VecEnv",
                format!(
                    "env {i} has a controller view of {} values, env 0 has {view_dim}",
                    envs[i].controller_view_dim()
                ),
            ));
        }
        let n = envs.len();
        let obs_dim = observation_space.flat_dim();
        let byte_dim = observation_space.byte_dim();
        let act_dim = action_space.flat_dim();
        Ok(Self {
            envs,
            observation_space,
            action_slots: SlotRules::new(&action_space),
            action_space,
            obs_dim,
            byte_dim,
            act_dim,
            obs: vec![0.0; n * obs_dim],
            final_obs: vec![0.0; n * obs_dim],
            obs_bytes: vec![0; n * byte_dim],
            final_obs_bytes: vec![0; n * byte_dim],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            infos: vec![Info::default(); n],
            reset_infos: vec![Info::default(); n],
            has_reset: false,
            parallelism: Parallelism::default(),
            cost: CostEstimate::default(),
            controller_view: vec![0.0; n * view_dim],
            view_dim,
        })
    }

    /// Rewrites the controller views from the current env states.
    fn refresh_controller_view(&mut self) {
        let d = self.view_dim;
        if d == 0 {
            return;
        }
        for (env, row) in self
            .envs
            .iter()
            .zip(self.controller_view.chunks_exact_mut(d))
        {
            env.write_controller_view(row);
        }
    }

    /// Builds `num_envs` environments with `make(i)`.
    pub fn from_fn(num_envs: usize, make: impl FnMut(usize) -> E) -> Result<Self> {
        Self::new((0..num_envs).map(make).collect())
    }

    /// Sets how steps are spread over threads (builder form).
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// Sets how steps are spread over threads.
    pub fn set_parallelism(&mut self, parallelism: Parallelism) {
        self.parallelism = parallelism;
    }

    /// How steps are spread over threads.
    pub fn parallelism(&self) -> Parallelism {
        self.parallelism
    }

    /// The environments, in batch order.
    pub fn envs(&self) -> &[E] {
        &self.envs
    }

    /// Checks the action batch without changing anything: its length, then every
    /// action against the action space. The error names the environment and slot.
    pub fn check_actions(&self, actions: &[f32]) -> Result<()> {
        let valid = actions.len() == self.envs.len() * self.act_dim
            && (self.act_dim == 0 || self.action_slots.all_valid(actions));
        if valid {
            return Ok(());
        }
        // Something is wrong: let the space find and describe the first offender.
        check_action_batch(&self.action_space, self.envs.len(), actions)
    }

    /// Envs per parallel task for this step, or `None` to step serially.
    fn chunk_size(&self) -> Option<usize> {
        let n = self.envs.len();
        let threads = rayon::current_num_threads();
        if n < 2 || threads < 2 {
            return None;
        }
        // A few tasks per thread lets work stealing even out envs that reset.
        let balanced = n.div_ceil(4 * threads);
        let chunk = match self.parallelism {
            Parallelism::Serial => return None,
            Parallelism::Rayon { min_envs_per_task } => balanced.max(min_envs_per_task.max(1)),
            Parallelism::Auto { min_task_micros } => {
                if self.cost.ns_per_env <= 0.0 {
                    return None;
                }
                let min_envs = (f64::from(min_task_micros) * 1e3 / self.cost.ns_per_env).ceil();
                if min_envs >= n as f64 {
                    return None;
                }
                balanced.max(min_envs as usize).max(1)
            }
        };
        (chunk < n).then_some(chunk)
    }

    fn rows<'a>(&'a mut self, actions: &'a [f32]) -> Rows<'a, E> {
        Rows {
            envs: &mut self.envs,
            actions,
            obs: &mut self.obs,
            final_obs: &mut self.final_obs,
            obs_bytes: &mut self.obs_bytes,
            final_obs_bytes: &mut self.final_obs_bytes,
            rewards: &mut self.rewards,
            terminated: &mut self.terminated,
            truncated: &mut self.truncated,
            infos: &mut self.infos,
            reset_infos: &mut self.reset_infos,
            first: 0,
            obs_dim: self.obs_dim,
            byte_dim: self.byte_dim,
            act_dim: self.act_dim,
        }
    }
}

/// Mutable views of a contiguous range of environments and their buffer rows.
/// Splitting it hands disjoint rows to parallel tasks without copying.
struct Rows<'a, E> {
    envs: &'a mut [E],
    actions: &'a [f32],
    obs: &'a mut [f32],
    final_obs: &'a mut [f32],
    obs_bytes: &'a mut [u8],
    final_obs_bytes: &'a mut [u8],
    rewards: &'a mut [f32],
    terminated: &'a mut [bool],
    truncated: &'a mut [bool],
    infos: &'a mut [Info],
    reset_infos: &'a mut [Info],
    /// Index of the first env in the whole batch (for error messages).
    first: usize,
    obs_dim: usize,
    byte_dim: usize,
    act_dim: usize,
}

impl<'a, E: Env> Rows<'a, E> {
    fn len(&self) -> usize {
        self.envs.len()
    }

    fn split_at(self, k: usize) -> (Self, Self) {
        let (envs_a, envs_b) = self.envs.split_at_mut(k);
        let (act_a, act_b) = self.actions.split_at(k * self.act_dim);
        let (obs_a, obs_b) = self.obs.split_at_mut(k * self.obs_dim);
        let (fin_a, fin_b) = self.final_obs.split_at_mut(k * self.obs_dim);
        let (bytes_a, bytes_b) = self.obs_bytes.split_at_mut(k * self.byte_dim);
        let (fin_bytes_a, fin_bytes_b) = self.final_obs_bytes.split_at_mut(k * self.byte_dim);
        let (rew_a, rew_b) = self.rewards.split_at_mut(k);
        let (term_a, term_b) = self.terminated.split_at_mut(k);
        let (trunc_a, trunc_b) = self.truncated.split_at_mut(k);
        let (info_a, info_b) = self.infos.split_at_mut(k);
        let (rinfo_a, rinfo_b) = self.reset_infos.split_at_mut(k);
        let (obs_dim, byte_dim, act_dim, first) =
            (self.obs_dim, self.byte_dim, self.act_dim, self.first);
        (
            Rows {
                envs: envs_a,
                actions: act_a,
                obs: obs_a,
                final_obs: fin_a,
                obs_bytes: bytes_a,
                final_obs_bytes: fin_bytes_a,
                rewards: rew_a,
                terminated: term_a,
                truncated: trunc_a,
                infos: info_a,
                reset_infos: rinfo_a,
                first,
                obs_dim,
                byte_dim,
                act_dim,
            },
            Rows {
                envs: envs_b,
                actions: act_b,
                obs: obs_b,
                final_obs: fin_b,
                obs_bytes: bytes_b,
                final_obs_bytes: fin_bytes_b,
                rewards: rew_b,
                terminated: term_b,
                truncated: trunc_b,
                infos: info_b,
                reset_infos: rinfo_b,
                first: first + k,
                obs_dim,
                byte_dim,
                act_dim,
            },
        )
    }

    /// Steps every env of the range in order, auto-resetting finished ones;
    /// stops at the first env that fails, naming it.
    #[inline]
    fn step_serial(self) -> Result<()> {
        let (od, bd, ad) = (self.obs_dim, self.byte_dim, self.act_dim);
        let failed = |i: usize, e: EnvError| EnvError::failed(format!("env {}", self.first + i), e);
        for (i, env) in self.envs.iter_mut().enumerate() {
            let action = &self.actions[i * ad..(i + 1) * ad];
            let mut obs = ObsMut::new(
                &mut self.obs[i * od..(i + 1) * od],
                &mut self.obs_bytes[i * bd..(i + 1) * bd],
            );
            let info = &mut self.infos[i];
            info.clear();
            let step = env
                .step(action, obs.reborrow(), info)
                .map_err(|e| failed(i, e))?;
            self.rewards[i] = step.reward as f32;
            self.terminated[i] = step.terminated;
            self.truncated[i] = step.truncated;
            if step.terminated || step.truncated {
                self.final_obs[i * od..(i + 1) * od].copy_from_slice(obs.values);
                self.final_obs_bytes[i * bd..(i + 1) * bd].copy_from_slice(obs.bytes);
                let reset_info = &mut self.reset_infos[i];
                reset_info.clear();
                env.reset(None, obs, reset_info).map_err(|e| failed(i, e))?;
            }
        }
        Ok(())
    }

    /// Steps the range as a tree of rayon tasks of at most `chunk` envs each;
    /// adds the busy time of the leaves to `busy_ns` when given.
    fn step_parallel(self, chunk: usize, busy_ns: Option<&AtomicU64>) -> Result<()> {
        let n = self.len();
        if n <= chunk {
            return match busy_ns {
                Some(total) => {
                    let start = Instant::now();
                    let stepped = self.step_serial();
                    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    total.fetch_add(ns, Ordering::Relaxed);
                    stepped
                }
                None => self.step_serial(),
            };
        }
        // Split on a chunk boundary so leaves are whole chunks.
        let mid = (n / 2).div_ceil(chunk) * chunk;
        let mid = mid.clamp(1, n - 1);
        let (a, b) = self.split_at(mid);
        let (ra, rb) = rayon::join(
            || a.step_parallel(chunk, busy_ns),
            || b.step_parallel(chunk, busy_ns),
        );
        ra.and(rb)
    }
}

impl<E: Env> BatchEnv for VecEnv<E> {
    fn num_envs(&self) -> usize {
        self.envs.len()
    }

    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset(&mut self, seed: u64) -> Result<()> {
        let (od, bd) = (self.obs_dim, self.byte_dim);
        // Until every env has reset, the batch cannot be stepped.
        self.has_reset = false;
        for (i, (env, info)) in self.envs.iter_mut().zip(&mut self.infos).enumerate() {
            info.clear();
            let obs = ObsMut::new(
                &mut self.obs[i * od..(i + 1) * od],
                &mut self.obs_bytes[i * bd..(i + 1) * bd],
            );
            env.reset(Some(hlynr_rng::derive_seed(seed, i as u64)), obs, info)
                .map_err(|e| EnvError::failed(format!("env {i}"), e))?;
        }
        self.rewards.fill(0.0);
        self.terminated.fill(false);
        self.truncated.fill(false);
        self.has_reset = true;
        self.refresh_controller_view();
        Ok(())
    }

    fn step(&mut self, actions: &[f32]) -> Result<()> {
        if !self.has_reset {
            return Err(EnvError::invalid(
                "VecEnv::step",
                "called before reset; call reset(seed) first",
            ));
        }
        self.check_actions(actions)?;
        let chunk = self.chunk_size();
        let sample =
            matches!(self.parallelism, Parallelism::Auto { .. }) && self.cost.should_sample();
        let n = self.envs.len();
        let stepped = match (chunk, sample) {
            (None, false) => self.rows(actions).step_serial(),
            (None, true) => {
                let start = Instant::now();
                let stepped = self.rows(actions).step_serial();
                let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.cost.record(ns, n);
                stepped
            }
            (Some(chunk), false) => self.rows(actions).step_parallel(chunk, None),
            (Some(chunk), true) => {
                let busy = AtomicU64::new(0);
                let stepped = self.rows(actions).step_parallel(chunk, Some(&busy));
                self.cost.record(busy.load(Ordering::Relaxed), n);
                stepped
            }
        };
        if let Err(e) = stepped {
            // Some envs stepped and some did not: the batch must be reset
            // before it is stepped again.
            self.has_reset = false;
            return Err(e);
        }
        self.refresh_controller_view();
        Ok(())
    }

    fn obs(&self) -> &[f32] {
        &self.obs
    }

    fn obs_bytes(&self) -> &[u8] {
        &self.obs_bytes
    }

    fn rewards(&self) -> &[f32] {
        &self.rewards
    }

    fn terminated(&self) -> &[bool] {
        &self.terminated
    }

    fn truncated(&self) -> &[bool] {
        &self.truncated
    }

    fn infos(&self) -> &[Info] {
        &self.infos
    }

    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        let done = *self.terminated.get(i)? || *self.truncated.get(i)?;
        done.then(|| &self.final_obs[i * self.obs_dim..(i + 1) * self.obs_dim])
    }

    fn final_observation_bytes(&self, i: usize) -> Option<&[u8]> {
        let done = *self.terminated.get(i)? || *self.truncated.get(i)?;
        done.then(|| &self.final_obs_bytes[i * self.byte_dim..(i + 1) * self.byte_dim])
    }

    fn controller_view(&self) -> &[f64] {
        &self.controller_view
    }

    fn controller_view_dim(&self) -> usize {
        self.view_dim
    }

    fn state(&self) -> Value {
        to_state(&VecEnvState {
            num_envs: self.envs.len(),
            obs_dim: self.obs_dim,
            has_reset: self.has_reset,
            envs: self.envs.iter().map(Env::state).collect(),
            obs: f32_bits(&self.obs),
            final_obs: f32_bits(&self.final_obs),
            obs_bytes: self.obs_bytes.clone(),
            final_obs_bytes: self.final_obs_bytes.clone(),
            rewards: f32_bits(&self.rewards),
            terminated: self.terminated.clone(),
            truncated: self.truncated.clone(),
        })
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        let saved: VecEnvState = from_state("VecEnv", state)?;
        let n = self.envs.len();
        let od = self.obs_dim;
        if saved.num_envs != n || saved.obs_dim != od {
            return Err(EnvError::state(
                "VecEnv",
                format!(
                    "saved batch has {} envs x {} obs slots, this one {n} x {od}",
                    saved.num_envs, saved.obs_dim
                ),
            ));
        }
        let lengths = [
            ("envs", saved.envs.len(), n),
            ("obs", saved.obs.len(), n * od),
            ("final_obs", saved.final_obs.len(), n * od),
            ("obs_bytes", saved.obs_bytes.len(), n * self.byte_dim),
            (
                "final_obs_bytes",
                saved.final_obs_bytes.len(),
                n * self.byte_dim,
            ),
            ("rewards", saved.rewards.len(), n),
            ("terminated", saved.terminated.len(), n),
            ("truncated", saved.truncated.len(), n),
        ];
        for (name, actual, expected) in lengths {
            if actual != expected {
                return Err(EnvError::state(
                    "VecEnv",
                    format!("{name} has {actual} entries, expected {expected}"),
                ));
            }
        }
        // Restore envs one by one; if one refuses, roll the earlier ones back so
        // that a failed restore leaves the batch as it was.
        let backup: Vec<Value> = self.envs.iter().map(Env::state).collect();
        for (i, env_state) in saved.envs.iter().enumerate() {
            if let Err(e) = self.envs[i].set_state(env_state) {
                for (env, old) in self.envs.iter_mut().zip(&backup).take(i) {
                    // Restoring a state the env itself produced cannot fail for a
                    // well-behaved env; there is nothing better to do if it does.
                    let _ = env.set_state(old);
                }
                return Err(EnvError::state("VecEnv", format!("env {i}: {e}")));
            }
        }
        copy_f32_bits(&saved.obs, &mut self.obs);
        copy_f32_bits(&saved.final_obs, &mut self.final_obs);
        self.obs_bytes.copy_from_slice(&saved.obs_bytes);
        self.final_obs_bytes.copy_from_slice(&saved.final_obs_bytes);
        copy_f32_bits(&saved.rewards, &mut self.rewards);
        self.terminated.copy_from_slice(&saved.terminated);
        self.truncated.copy_from_slice(&saved.truncated);
        for info in &mut self.infos {
            info.clear();
        }
        self.has_reset = saved.has_reset;
        self.refresh_controller_view();
        Ok(())
    }
}

/// IEEE bit patterns of `xs`, for exact serialisation of `f32` buffers.
pub(crate) fn f32_bits(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// Writes the floats whose bit patterns are `bits` into `out` (equal lengths).
pub(crate) fn copy_f32_bits(bits: &[u32], out: &mut [f32]) {
    for (o, &b) in out.iter_mut().zip(bits) {
        *o = f32::from_bits(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classic::CartPole;
    use hlynr_rng::Rng;

    #[test]
    fn fast_action_check_agrees_with_space_check() {
        let space = Space::Tuple {
            spaces: vec![
                Space::box_1d(vec![-1.0, 0.0], vec![1.0, f32::INFINITY]),
                Space::Discrete { n: 3 },
                Space::MultiDiscrete { nvec: vec![2, 5] },
            ],
        };
        let rules = SlotRules::new(&space);
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            0.5,
            -1.0,
            1.0,
            2.0,
            3.0,
            4.0,
            5.0,
            1e30,
            -1e-7,
            2.0f32.powi(31),
        ];
        let mut rng = Rng::seed_from_u64(0);
        let mut action = [0.0f32; 5];
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..20_000 {
            for a in &mut action {
                *a = if rng.bernoulli(0.5) {
                    specials[rng.below(specials.len() as u64) as usize]
                } else {
                    rng.below(4) as f32
                };
            }
            let fast = rules.all_valid(&action);
            assert_eq!(fast, space.check(&action).is_ok(), "{action:?}");
            if fast {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
        assert!(accepted > 100 && rejected > 100, "{accepted} / {rejected}");
        // Single-slot spaces take the dedicated loop.
        let discrete = Space::Discrete { n: 2 };
        let one = SlotRules::new(&discrete);
        assert!(one.all_valid(&[0.0, 1.0, 1.0]));
        assert!(!one.all_valid(&[0.0, 2.0, 1.0]));
        assert!(!one.all_valid(&[0.0, 1.0, f32::NAN]));
    }

    #[test]
    fn auto_parallelism_waits_for_enough_work_per_task() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let mut v = VecEnv::from_fn(256, |_| CartPole::new()).unwrap();
        pool.install(|| {
            // Unmeasured: serial until a sample says otherwise.
            assert_eq!(v.chunk_size(), None);
            // A cheap env (20 ns): 256 envs are 5 us of work, below 50 us.
            v.cost.ns_per_env = 20.0;
            assert_eq!(v.chunk_size(), None);
            // An expensive env (2 us): 512 us of work, tasks of >= 25 envs.
            v.cost.ns_per_env = 2_000.0;
            assert_eq!(v.chunk_size(), Some(25));
            v.set_parallelism(Parallelism::Serial);
            assert_eq!(v.chunk_size(), None);
            v.set_parallelism(Parallelism::Rayon {
                min_envs_per_task: 0,
            });
            // 256 envs / (4 tasks per thread x 4 threads).
            assert_eq!(v.chunk_size(), Some(16));
            v.set_parallelism(Parallelism::Rayon {
                min_envs_per_task: 300,
            });
            assert_eq!(v.chunk_size(), None);
        });
    }
}
