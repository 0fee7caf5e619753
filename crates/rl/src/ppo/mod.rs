//! Proximal Policy Optimisation (clipped surrogate, GAE) over any
//! [`hlynr_env::BatchEnv`].
//!
//! [`Ppo`] owns the environment batch (wrapped in a
//! [`hlynr_env::VecNormalize`], a pass-through unless observation or reward
//! normalisation is configured), the [`ActorCritic`] network, the Adam
//! optimiser (two parameter groups, `actor` and `critic`, each with its own
//! learning-rate schedule), the rollout buffer and three generators derived
//! from the run seed: weight initialisation, action sampling, minibatch
//! shuffling. Its complete state — weights, optimiser moments, normaliser
//! statistics, generators, counters, the environments — is exported as a
//! [`PpoState`]; importing it into a trainer built from the same config
//! continues bit for bit.

pub mod algorithm;
pub mod buffer;
pub mod config;
pub mod update;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use hlynr_env::config::ConfigError;
use hlynr_env::{BatchEnv, EnvError, ObsRef, VecNormalize, VecNormalizeConfig};
use hlynr_nn::{Adam, AdamConfig, AdamKind, NnError, OptimizerState, ParamGroup, Tensor};
use hlynr_rng::{Rng, derive_seed};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::common::episodes::EpisodeWindow;
use crate::common::nonfinite::zero_nonfinite;
pub use crate::common::schedule::Schedule;
pub use buffer::RolloutBuffer;
pub use config::{AdvantageNorm, KlCheck, PpoConfig, ValueClip, ValueClipLoss, ValueLoss};
pub use update::PpoMetrics;

use crate::normalize_returns::ReturnNormalizer;
use crate::policy::ActorCritic;
use crate::recurrent::{CarriedState, SequenceStore};

/// Errors of the PPO trainer and its networks.
#[derive(Debug, Error)]
pub enum PpoError {
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A tensor operation failed (shapes, non-finite inputs).
    #[error(transparent)]
    Nn(#[from] NnError),
    /// The environment batch failed.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The network failed.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// An argument does not fit.
    #[error("{context}: {message}")]
    Invalid { context: String, message: String },
    /// A saved training state does not fit this trainer.
    #[error("training state: {0}")]
    State(String),
}

impl PpoError {
    /// Shorthand for [`PpoError::Invalid`].
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        PpoError::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }
}

/// Generator streams derived from the run seed.
const STREAM_INIT: u64 = 0;
const STREAM_ROLLOUT: u64 = 1;
const STREAM_SHUFFLE: u64 = 2;
const STREAM_ENV: u64 = 3;
const STREAM_POLICY: u64 = 4;

/// Name of the optimiser group of the trunk, policy MLP, action head and `log_std`.
pub const ACTOR_GROUP: &str = "actor";
/// Name of the optimiser group of the value MLP and head.
pub const CRITIC_GROUP: &str = "critic";

/// Counters of a training run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Environment steps taken, summed over envs.
    pub num_timesteps: u64,
    /// Rollout + update iterations completed.
    pub iterations: u64,
    /// Epochs completed over all updates (`train/n_updates`).
    pub n_updates: u64,
    /// Optimiser steps taken over all updates.
    pub gradient_steps: u64,
    /// Updates abandoned because a loss, gradient or weight was not finite.
    pub nonfinite_skips: u64,
}

/// Everything but the tensors of a [`PpoState`]; plain serde data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PpoMeta {
    /// The configuration the trainer was built from (must match on import).
    pub config: PpoConfig,
    /// Run seed.
    pub seed: u64,
    /// Step and update counters (the schedules' position follows from
    /// `num_timesteps` and the run's `total_timesteps`).
    pub counters: Counters,
    /// Action-sampling generator.
    pub rollout_rng: Rng,
    /// Minibatch-shuffling generator.
    pub shuffle_rng: Rng,
    /// The network's own generator (its `Policy` implementation).
    pub policy_rng: Rng,
    /// Critic return statistics, when `normalize_returns` is on.
    pub return_normalizer: Option<ReturnNormalizer>,
    /// Recent episodes.
    pub episodes: EpisodeWindow,
    /// The environment batch, including observation and reward normalisers.
    pub env: serde_json::Value,
    /// Factor on both learning-rate schedules (the training doctor's rollbacks
    /// lower it); 1 unless a rollback happened.
    #[serde(default = "one")]
    pub lr_scale: f64,
    /// A recurrent policy's rollout memory (absent for feed-forward policies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrent: Option<RecurrentRolloutState>,
}

fn one() -> f64 {
    1.0
}

/// What a recurrent policy's rollouts carry from one iteration to the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrentRolloutState {
    /// The LSTM state of every training env.
    pub carried: CarriedState,
    /// Which envs' next observation starts an episode (`[n_envs]`, 0 or 1).
    pub episode_starts: Vec<f32>,
}

/// The complete training state of a [`Ppo`] trainer.
#[derive(Clone, Debug, PartialEq)]
pub struct PpoState {
    /// Network `state_dict` with PyTorch names (`pi.0.weight`, `log_std`, ...).
    pub weights: BTreeMap<String, Tensor>,
    /// Adam moments (tensors) and hyperparameters/step counts (JSON).
    pub optimizer: OptimizerState,
    /// Counters, generators, statistics, environments.
    pub meta: PpoMeta,
}

/// The normalisation wrapper settings of `config`.
fn normalize_config(config: &PpoConfig) -> VecNormalizeConfig {
    VecNormalizeConfig {
        norm_obs: config.normalize_observations,
        norm_reward: config.normalize_reward,
        clip_obs: config.clip_obs as f32,
        clip_reward: config.clip_reward as f32,
        gamma: config.gamma,
        ..VecNormalizeConfig::default()
    }
}

/// PPO trainer over the environment batch `B`.
pub struct Ppo<B: BatchEnv> {
    pub(crate) config: PpoConfig,
    /// The horizon of every schedule (env steps).
    total_timesteps: u64,
    pub(crate) seed: u64,
    pub(crate) env: VecNormalize<B>,
    pub(crate) net: ActorCritic,
    pub(crate) opt: Adam,
    pub(crate) buffer: RolloutBuffer,
    pub(crate) rollout_rng: Rng,
    pub(crate) shuffle_rng: Rng,
    pub(crate) return_norm: Option<ReturnNormalizer>,
    pub(crate) counters: Counters,
    pub(crate) lr_scale: f64,
    pub(crate) episodes: EpisodeWindow,
    pub(crate) scratch: update::Scratch,
    /// Sequence starts of the last rollout (recurrent policies only).
    pub(crate) sequences: Option<SequenceStore>,
    /// Envs whose next observation starts an episode (recurrent policies).
    episode_starts: Vec<f32>,
    // Rollout scratch (allocated once).
    ended: Vec<bool>,
    all_rows: Vec<usize>,
    env_actions: Vec<f32>,
    last_values: Vec<f32>,
    final_obs: Tensor,
    /// Byte lanes of `final_obs`, `[k * obs_bytes]`.
    final_obs_bytes: Vec<u8>,
    last_obs: Tensor,
    /// Observation values of the current rollout that were NaN or infinite
    /// (replaced by 0 for acting; the rollout's update is then skipped).
    nonfinite_obs: u64,
    final_rows: Vec<usize>,
}

impl<B: BatchEnv> std::fmt::Debug for Ppo<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The batch (often a trait object) has no `Debug` of its own.
        f.debug_struct("Ppo")
            .field("config", &self.config)
            .field("total_timesteps", &self.total_timesteps)
            .field("seed", &self.seed)
            .field("num_envs", &self.env.num_envs())
            .field("counters", &self.counters)
            .field("lr_scale", &self.lr_scale)
            .finish_non_exhaustive()
    }
}

impl<B: BatchEnv> Ppo<B> {
    /// Builds the trainer: validates the config, wraps `env` for the configured
    /// normalisation, initialises the network from `seed` and resets the
    /// environments with a seed derived from it. The schedules run over
    /// `total_timesteps` env steps. Wrap single envs in
    /// `hlynr_env::EpisodeStatistics` so episode returns are reported.
    pub fn new(
        config: PpoConfig,
        env: B,
        seed: u64,
        total_timesteps: u64,
    ) -> Result<Self, PpoError> {
        use hlynr_env::config::Validate;
        config.validate("ppo")?;
        config.validate_for_envs("ppo", env.num_envs())?;
        if total_timesteps == 0 {
            return Err(PpoError::invalid(
                "Ppo::new",
                "total_timesteps must be at least 1 (the schedules' horizon)",
            ));
        }
        let mut env = VecNormalize::new(env, normalize_config(&config))?;
        let (obs_dim, obs_bytes) = (env.obs_dim(), env.byte_dim());
        let mut init_rng = Rng::from_stream(seed, STREAM_INIT);
        let mut net = ActorCritic::new(
            env.observation_space(),
            env.action_space(),
            &config.policy,
            &mut init_rng,
        )?;
        net.set_policy_rng(Rng::from_stream(seed, STREAM_POLICY));
        let weights = &config.entropy_head_weights;
        if !weights.is_empty() && weights.len() != net.num_components() {
            return Err(PpoError::Config(ConfigError::invalid(
                "ppo.entropy_head_weights",
                format!(
                    "{} weights for an action space of {} components (Gaussian and categorical parts in flat order)",
                    weights.len(),
                    net.num_components()
                ),
            )));
        }
        let (actor, critic) = net.param_groups();
        let lr = config.learning_rate.initial();
        let critic_lr = config
            .critic_learning_rate
            .as_ref()
            .map_or(lr, Schedule::initial);
        let adam = AdamConfig {
            eps: config.adam_eps,
            ..AdamConfig::new(AdamKind::Adam)
        };
        let opt = Adam::new(
            adam,
            vec![
                ParamGroup::new(ACTOR_GROUP, actor, lr),
                ParamGroup::new(CRITIC_GROUP, critic, critic_lr),
            ],
        )?;
        env.reset(derive_seed(seed, STREAM_ENV))?;
        let n = env.num_envs();
        let act_dim = net.act_dim();
        let sequences = net.recurrent_mut().map(|r| {
            r.ensure_rows(n);
            SequenceStore::new(
                config.n_steps,
                n,
                config.sequence_length(),
                r.hidden_size(),
                r.is_shared(),
            )
        });
        Ok(Self {
            sequences,
            episode_starts: vec![1.0; n],
            ended: vec![false; n],
            all_rows: (0..n).collect(),
            buffer: RolloutBuffer::new(config.n_steps, n, obs_dim, obs_bytes, act_dim),
            return_norm: config.normalize_returns.then(ReturnNormalizer::new),
            rollout_rng: Rng::from_stream(seed, STREAM_ROLLOUT),
            shuffle_rng: Rng::from_stream(seed, STREAM_SHUFFLE),
            counters: Counters::default(),
            lr_scale: 1.0,
            episodes: EpisodeWindow::default(),
            scratch: update::Scratch::default(),
            env_actions: vec![0.0; n * act_dim],
            last_values: vec![0.0; n],
            final_obs: Tensor::default(),
            final_obs_bytes: Vec::new(),
            last_obs: Tensor::default(),
            nonfinite_obs: 0,
            final_rows: Vec::with_capacity(n),
            config,
            total_timesteps,
            seed,
            env,
            net,
            opt,
        })
    }

    /// Replaces the environment batch (a curriculum stage change) and resets
    /// it with `seed`, keeping the observation and reward normaliser
    /// statistics, the network, the optimizer and every counter: only the
    /// environments change. `batch` must match the old batch's size and
    /// spaces. Nothing changes on error.
    pub fn replace_env_batch(&mut self, batch: B, seed: u64) -> Result<(), PpoError> {
        if batch.num_envs() != self.env.num_envs()
            || batch.observation_space() != self.env.observation_space()
            || batch.action_space() != self.env.action_space()
        {
            return Err(PpoError::invalid(
                "Ppo::replace_env_batch",
                format!(
                    "the new batch ({} envs, observations {:?}, actions {:?}) differs from the old one ({} envs, observations {:?}, actions {:?})",
                    batch.num_envs(),
                    batch.observation_space(),
                    batch.action_space(),
                    self.env.num_envs(),
                    self.env.observation_space(),
                    self.env.action_space()
                ),
            ));
        }
        let mut env = VecNormalize::new(batch, normalize_config(&self.config))?;
        // Carry the normaliser statistics over: the old wrapper's state with
        // the new batch's own inner state.
        let mut state = self.env.state();
        match &mut state {
            serde_json::Value::Object(map) => {
                map.insert("inner".into(), env.inner().state());
            }
            _ => {
                return Err(PpoError::State(
                    "VecNormalize state is not a mapping".into(),
                ));
            }
        }
        env.set_state(&state)?;
        env.reset(seed)?;
        self.env = env;
        // Every env starts a new episode: recurrent memory starts afresh.
        self.episode_starts.fill(1.0);
        if let Some(r) = self.net.recurrent_mut() {
            r.reset_rows(&self.all_rows);
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &PpoConfig {
        &self.config
    }

    /// The network.
    pub fn policy(&self) -> &ActorCritic {
        &self.net
    }

    /// The network, mutably (e.g. to evaluate it as a `Policy`).
    pub fn policy_mut(&mut self) -> &mut ActorCritic {
        &mut self.net
    }

    /// The (normalising) environment batch: its observation normaliser is the
    /// one evaluation must apply, frozen.
    pub fn env(&self) -> &VecNormalize<B> {
        &self.env
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Recent episode statistics.
    pub fn episodes(&self) -> &EpisodeWindow {
        &self.episodes
    }

    /// The last collected rollout.
    pub fn buffer(&self) -> &RolloutBuffer {
        &self.buffer
    }

    /// Fraction of training remaining, `1 - num_timesteps / total_timesteps`
    /// (the argument of every schedule).
    pub fn progress_remaining(&self) -> f64 {
        1.0 - self.counters.num_timesteps as f64 / self.total_timesteps as f64
    }

    /// Converts a critic output to return units.
    #[inline]
    fn to_return_units(norm: Option<&ReturnNormalizer>, v: f32) -> f32 {
        norm.map_or(v, |n| n.denormalize(v))
    }

    /// Runs the policy for `n_steps` vector steps, storing the transitions,
    /// adding truncation bootstraps, recording finished episodes, and computes
    /// GAE advantages and returns.
    pub fn collect_rollout(&mut self) -> Result<(), PpoError> {
        let n = self.env.num_envs();
        let gamma = self.config.gamma;
        self.buffer.reset();
        self.nonfinite_obs = 0;
        if let Some(r) = self.net.recurrent_mut() {
            r.ensure_rows(n);
        }
        while !self.buffer.is_full() {
            if let (Some(store), Some(r)) = (&mut self.sequences, self.net.recurrent()) {
                store.record_step(self.buffer.pos(), &self.episode_starts, r);
            }
            {
                let slots = self.buffer.next_step_slots()?;
                match self.env.active() {
                    Some(_) if self.sequences.is_some() => {
                        return Err(PpoError::invalid(
                            "collect_rollout",
                            "this environment's rows are agent slots that fill and empty, \
                             which recurrent PPO does not support; use a feed-forward policy",
                        ));
                    }
                    Some(mask) => slots.active.copy_from_slice(mask),
                    None => slots.active.fill(true),
                }
                slots.obs.copy_from_slice(self.env.obs());
                slots.obs_bytes.copy_from_slice(self.env.obs_bytes());
                self.nonfinite_obs += zero_nonfinite(slots.obs);
                self.net.act(
                    ObsRef::new(slots.obs, slots.obs_bytes),
                    n,
                    false,
                    &mut self.rollout_rng,
                    slots.actions,
                    &mut self.env_actions,
                    slots.log_probs,
                    slots.values,
                )?;
                // A remote batch steps while the values are converted.
                self.env.step_async(&self.env_actions)?;
                for v in slots.values.iter_mut() {
                    *v = Self::to_return_units(self.return_norm.as_ref(), *v);
                }
            }
            self.env.step_wait()?;
            self.counters.num_timesteps += n as u64;
            // Truncated envs: value of their final observations, in one batch.
            self.final_rows.clear();
            let (term, trunc) = (self.env.terminated(), self.env.truncated());
            self.final_rows
                .extend((0..n).filter(|&i| trunc[i] && !term[i]));
            let mut bootstrap = [0.0f32; 0].as_slice();
            if !self.final_rows.is_empty() {
                let (d, bd) = (self.env.obs_dim(), self.env.byte_dim());
                self.final_obs.resize(&[self.final_rows.len(), d]);
                self.final_obs_bytes.clear();
                for (row, &i) in self
                    .final_obs
                    .data_mut()
                    .chunks_exact_mut(d)
                    .zip(&self.final_rows)
                {
                    let fin = self.env.final_observation(i).ok_or_else(|| {
                        PpoError::invalid(
                            "collect_rollout",
                            format!("env {i} was truncated but has no final observation"),
                        )
                    })?;
                    row.copy_from_slice(fin);
                    let fin_bytes = self.env.final_observation_bytes(i).unwrap_or_default();
                    if fin_bytes.len() != bd {
                        return Err(PpoError::invalid(
                            "collect_rollout",
                            format!(
                                "env {i}'s final observation has {} bytes, its space {bd}",
                                fin_bytes.len()
                            ),
                        ));
                    }
                    self.final_obs_bytes.extend_from_slice(fin_bytes);
                }
                self.nonfinite_obs += zero_nonfinite(self.final_obs.data_mut());
                bootstrap = self.net.forward_values_of_rows(
                    &self.final_obs,
                    &self.final_obs_bytes,
                    &self.final_rows,
                )?;
            }
            let step = self.buffer.pos();
            let k0 = step * n;
            let rewards = self.env.rewards();
            for i in 0..n {
                self.buffer.rewards[k0 + i] = rewards[i];
                self.buffer.dones[k0 + i] = term[i] || trunc[i];
            }
            for (&i, &v) in self.final_rows.iter().zip(bootstrap) {
                let v = Self::to_return_units(self.return_norm.as_ref(), v);
                self.buffer.rewards[k0 + i] =
                    buffer::bootstrap_truncation(self.buffer.rewards[k0 + i], gamma, v);
            }
            for (i, info) in self.env.infos().iter().enumerate() {
                if !(term[i] || trunc[i]) {
                    continue;
                }
                self.episodes.total_episodes += 1;
                if let Some(ep) = info.episode {
                    self.episodes
                        .push_episode(ep.episode_return, ep.episode_length);
                }
                if let Some(s) = info.is_success {
                    self.episodes.push_success(s);
                }
            }
            if let Some(r) = self.net.recurrent_mut() {
                for i in 0..n {
                    self.ended[i] = term[i] || trunc[i];
                    self.episode_starts[i] = f32::from(u8::from(self.ended[i]));
                }
                r.reset_ended(&self.ended);
            }
            self.buffer.finish_step();
        }
        self.last_obs.resize(&[n, self.env.obs_dim()]);
        self.last_obs.data_mut().copy_from_slice(self.env.obs());
        self.nonfinite_obs += zero_nonfinite(self.last_obs.data_mut());
        let values = self.net.forward_values_of_rows(
            &self.last_obs,
            self.env.obs_bytes(),
            &self.all_rows,
        )?;
        self.last_values.copy_from_slice(values);
        for v in &mut self.last_values {
            *v = Self::to_return_units(self.return_norm.as_ref(), *v);
        }
        self.buffer
            .compute_gae(&self.last_values, gamma, self.config.gae_lambda)?;
        Ok(())
    }

    /// One iteration: collect a rollout, then update. Returns the metrics.
    pub fn iterate(&mut self) -> Result<PpoMetrics, PpoError> {
        self.collect_rollout()?;
        let mut metrics = self.update()?;
        self.counters.iterations += 1;
        metrics.iterations = self.counters.iterations;
        metrics.total_timesteps = self.counters.num_timesteps;
        metrics.ep_rew_mean = self.episodes.mean_return();
        metrics.ep_len_mean = self.episodes.mean_length();
        metrics.success_rate = self.episodes.success_rate();
        metrics.episodes = self.episodes.total_episodes;
        Ok(metrics)
    }

    /// Trains until `num_timesteps >= total_timesteps` (schedules always use
    /// the horizon given to [`Ppo::new`], so a run can be stopped early and
    /// resumed). After every iteration `callback` gets the trainer and the
    /// metrics; returning `ControlFlow::Break(())` stops after that iteration.
    pub fn learn<F>(&mut self, total_timesteps: u64, mut callback: F) -> Result<(), PpoError>
    where
        F: FnMut(&Self, &PpoMetrics) -> ControlFlow<()>,
    {
        while self.counters.num_timesteps < total_timesteps {
            let metrics = self.iterate()?;
            if callback(self, &metrics).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Exports the complete training state.
    pub fn export_state(&self) -> Result<PpoState, PpoError> {
        Ok(PpoState {
            weights: self.net.state_dict(),
            optimizer: self.opt.state()?,
            meta: PpoMeta {
                config: self.config.clone(),
                seed: self.seed,
                counters: self.counters,
                rollout_rng: self.rollout_rng.clone(),
                shuffle_rng: self.shuffle_rng.clone(),
                policy_rng: self.net_policy_rng(),
                return_normalizer: self.return_norm.clone(),
                episodes: self.episodes.clone(),
                env: self.env.state(),
                lr_scale: self.lr_scale,
                recurrent: self.net.recurrent().map(|r| RecurrentRolloutState {
                    carried: r.carried_state(),
                    episode_starts: self.episode_starts.clone(),
                }),
            },
        })
    }

    fn net_policy_rng(&self) -> Rng {
        self.net.policy_rng().clone()
    }

    /// Restores a state exported by a trainer built from the same config.
    /// Nothing changes on error.
    pub fn import_state(&mut self, state: &PpoState) -> Result<(), PpoError> {
        if state.meta.config != self.config {
            return Err(PpoError::State(format!(
                "saved with a different ppo config; saved: {}, current: {}",
                serde_json::to_string(&state.meta.config).unwrap_or_default(),
                serde_json::to_string(&self.config).unwrap_or_default()
            )));
        }
        if state.meta.config.normalize_returns != state.meta.return_normalizer.is_some() {
            return Err(PpoError::State(
                "return normaliser presence does not match normalize_returns".into(),
            ));
        }
        let opt = Adam::from_state(&state.optimizer)?;
        let names = |g: &[ParamGroup]| -> Vec<(String, Vec<String>)> {
            g.iter()
                .map(|g| (g.name.clone(), g.params.clone()))
                .collect()
        };
        if names(opt.groups()) != names(self.opt.groups()) {
            return Err(PpoError::State(
                "optimizer parameter groups do not match the network".into(),
            ));
        }
        match (&state.meta.recurrent, self.net.recurrent()) {
            (None, None) => {}
            (Some(s), Some(_)) if s.episode_starts.len() == self.episode_starts.len() => {}
            (Some(s), Some(_)) => {
                return Err(PpoError::State(format!(
                    "recurrent state for {} envs, the trainer has {}",
                    s.episode_starts.len(),
                    self.episode_starts.len()
                )));
            }
            (saved, _) => {
                return Err(PpoError::State(format!(
                    "recurrent rollout state {} but the policy is {}",
                    if saved.is_some() {
                        "present"
                    } else {
                        "missing"
                    },
                    if self.net.recurrent().is_some() {
                        "recurrent"
                    } else {
                        "feed-forward"
                    }
                )));
            }
        }
        // Validate the weights before touching anything, then apply.
        let before = self.net.state_dict();
        self.net.load_state_dict(&state.weights)?;
        let env_before = self.env.state();
        if let Err(e) = self.env.set_state(&state.meta.env) {
            self.net.load_state_dict(&before)?;
            let _ = self.env.set_state(&env_before);
            return Err(e.into());
        }
        if let (Some(saved), Some(r)) = (&state.meta.recurrent, self.net.recurrent_mut()) {
            if let Err(e) = r.set_carried_state(&saved.carried) {
                self.net.load_state_dict(&before)?;
                let _ = self.env.set_state(&env_before);
                return Err(PpoError::State(e));
            }
            self.episode_starts.copy_from_slice(&saved.episode_starts);
        }
        self.opt = opt;
        self.seed = state.meta.seed;
        self.counters = state.meta.counters;
        self.lr_scale = state.meta.lr_scale;
        self.rollout_rng = state.meta.rollout_rng.clone();
        self.shuffle_rng = state.meta.shuffle_rng.clone();
        self.net.set_policy_rng(state.meta.policy_rng.clone());
        self.return_norm = state.meta.return_normalizer.clone();
        self.episodes = state.meta.episodes.clone();
        Ok(())
    }
}

impl<B: BatchEnv> Ppo<B> {
    /// The factor on the learning-rate schedules (see [`PpoMeta::lr_scale`]).
    pub fn lr_scale(&self) -> f64 {
        self.lr_scale
    }

    /// Returns the learner to a saved state — network weights, optimiser
    /// moments, observation and reward normaliser statistics, return
    /// statistics — while the environments, counters, generators and recent
    /// episodes carry on, and multiplies the learning-rate scale by
    /// `lr_factor`: the training doctor's rollback to `best/`. The current
    /// observations stay normalised with the statistics they were produced
    /// with until the next step. Nothing changes on error.
    pub fn roll_back_to(&mut self, saved: &PpoState, lr_factor: f64) -> Result<(), PpoError> {
        if !(lr_factor > 0.0 && lr_factor.is_finite()) {
            return Err(PpoError::invalid(
                "Ppo::roll_back_to",
                format!("learning-rate factor must be positive and finite, got {lr_factor}"),
            ));
        }
        let opt = Adam::from_state(&saved.optimizer)?;
        // The normalisers' statistics from the saved state, the batch's own
        // buffers and environments from now.
        let mut env_state = self.env.state();
        if let (serde_json::Value::Object(now), serde_json::Value::Object(then)) =
            (&mut env_state, &saved.meta.env)
        {
            for key in ["obs_normalizer", "reward_scaler"] {
                if let Some(v) = then.get(key) {
                    now.insert(key.into(), v.clone());
                }
            }
        }
        let before = self.net.state_dict();
        let env_before = self.env.state();
        self.net.load_state_dict(&saved.weights)?;
        if let Err(e) = self.env.set_state(&env_state) {
            self.net.load_state_dict(&before)?;
            let _ = self.env.set_state(&env_before);
            return Err(e.into());
        }
        self.opt = opt;
        self.return_norm = saved.meta.return_normalizer.clone();
        self.lr_scale *= lr_factor;
        Ok(())
    }
}
