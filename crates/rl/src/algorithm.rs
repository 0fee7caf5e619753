//! The interface between the trainer and a learning algorithm.
//!
//! The trainer ([`crate::trainer`]) owns the run: config, run directory,
//! metrics, progress, signals, checkpoints, evaluation, curriculum and the
//! doctor with its rollbacks. An [`Algorithm`] owns collection and learning
//! over the environment batch it was given: PPO collects a rollout and updates
//! on it; DQN steps the envs, fills its replay buffer and takes gradient steps
//! at its own train frequency, counting learning starts, target updates and
//! exploration schedules in env steps. Either way one call
//! of [`Algorithm::iterate`] is one unit of work after which the trainer logs,
//! evaluates and checkpoints, and everything the algorithm decides depends on
//! its env-step counter and its saved state only, so a resumed run continues
//! bit for bit.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hlynr_env::{BatchEnv, ObsNormalizer, Policy, Space};
use hlynr_nn::{OptimizerState, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checkpoint::ResumeFiles;
use crate::error::{Result, TrainError};
use crate::metrics::Metrics;

/// What one iteration did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Iteration {
    /// Its scalars under their logged names (`train/...`, `rollout/...`,
    /// `time/...`).
    pub scalars: Metrics,
    /// When the iteration's update was abandoned by the non-finite guard
    /// (last good parameters restored): the run's count of such updates.
    pub nonfinite_skip: Option<u64>,
}

/// The complete state of an algorithm, as a checkpoint stores it: with it, an
/// algorithm built from the same config continues exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct AlgorithmState {
    /// The tensors of the inference policy under PyTorch names
    /// (`model.safetensors`, loadable with `torch`'s `load_state_dict`).
    pub weights: BTreeMap<String, Tensor>,
    /// The optimiser (moments as tensors, hyperparameters and step counts).
    pub optimizer: OptimizerState,
    /// Everything else: counters, generators, normaliser statistics, the
    /// environments' state; the algorithm's own serde layout.
    pub meta: Value,
}

/// What a checkpoint declares about its policy, so that the policy loads and
/// acts without an environment: its spaces, the preprocessing its training
/// env applied, and the algorithm's description of its network. With the
/// checkpoint's weights it is everything a server or a script needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRecord {
    /// The observation the network takes: the training env's, after its
    /// wrappers (a frame stack included).
    pub observation_space: Space,
    /// The action the network produces.
    pub action_space: Space,
    /// The run's `env.frame_stack`: the network's observation is the last
    /// `k` frames side by side, oldest first.
    #[serde(default)]
    pub frame_stack: Option<usize>,
    /// The observation normaliser, applied frozen before the network.
    #[serde(default)]
    pub obs_normalizer: Option<ObsNormalizer>,
    /// The algorithm's own description of its network (PPO: the `policy`
    /// config and the network's sampling generator).
    pub network: Value,
}

impl PolicyRecord {
    /// Checks that the preprocessing fits the observation space; the message
    /// names both sizes.
    pub fn check(&self) -> Result<()> {
        let dim = self.observation_space.flat_dim();
        if let Some(n) = &self.obs_normalizer
            && n.dim() != dim
        {
            return Err(TrainError::invalid(
                "policy record",
                format!(
                    "the observation normaliser has {} values, the observation space {:?} has {dim}",
                    n.dim(),
                    self.observation_space
                ),
            ));
        }
        if let Some(k) = self.frame_stack
            && (k == 0 || !dim.is_multiple_of(k))
        {
            return Err(TrainError::invalid(
                "policy record",
                format!("a stack of {k} frames cannot make an observation of {dim} values"),
            ));
        }
        Ok(())
    }

    /// The algorithm's network description, checked and parsed; `label`
    /// (`PPO`, `DQN`) names it in errors.
    pub fn network_as<T: serde::de::DeserializeOwned>(&self, label: &str) -> Result<T> {
        self.check()?;
        serde_json::from_value(self.network.clone())
            .map_err(|e| TrainError::invalid(format!("{label} policy record"), e.to_string()))
    }

    /// The error for weights that do not fit the network this record
    /// describes, naming its spaces.
    pub fn misfit(&self, label: &str, e: impl std::fmt::Display) -> TrainError {
        TrainError::invalid(
            format!("{label} policy"),
            format!(
                "for observations {:?} and actions {:?}: {e}",
                self.observation_space, self.action_space
            ),
        )
    }
}

/// A copy of an algorithm's current policy for evaluation: the network and
/// the observation preprocessing it was trained with.
pub struct PolicySnapshot {
    /// The network as a [`Policy`] (deterministic actions when asked).
    pub net: Box<dyn Policy>,
    /// Observation values per env it takes.
    pub obs_dim: usize,
    /// Observation bytes per env it takes.
    pub obs_bytes: usize,
    /// The observation normaliser, frozen, when the run used one.
    pub normalizer: Option<ObsNormalizer>,
}

impl std::fmt::Debug for PolicySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySnapshot")
            .field("net", &self.net.name())
            .field("obs_dim", &self.obs_dim)
            .field("obs_bytes", &self.obs_bytes)
            .field("normalizer", &self.normalizer.is_some())
            .finish()
    }
}

/// A learning algorithm the trainer drives (see the module docs).
pub trait Algorithm: std::fmt::Debug {
    /// The algorithm's name (`ppo`), as configs and checkpoints spell it.
    fn name(&self) -> &'static str;

    /// One unit of collection and learning.
    fn iterate(&mut self) -> Result<Iteration>;

    /// Environment steps taken so far, summed over envs.
    fn num_timesteps(&self) -> u64;

    /// Updates abandoned by the non-finite guard over the run.
    fn nonfinite_skips(&self) -> u64;

    /// The complete state, for a checkpoint.
    fn export_state(&self) -> Result<AlgorithmState>;

    /// Restores a state exported by an algorithm built from the same config.
    /// Nothing changes on error.
    fn import_state(&mut self, state: &AlgorithmState) -> Result<()>;

    /// The doctor's rollback: returns the learned parameters (weights,
    /// optimiser, normaliser statistics) to `state` while the environments,
    /// counters and generators carry on, and multiplies the learning-rate
    /// scale by `lr_factor`. Nothing changes on error.
    fn roll_back_to(&mut self, state: &AlgorithmState, lr_factor: f64) -> Result<()>;

    /// The factor on the learning rate that rollbacks have applied (1 before any).
    fn lr_scale(&self) -> f64;

    /// Replaces the environment batch (a curriculum stage change) and resets it
    /// with `seed`; what was learned (weights, optimiser, statistics, counters)
    /// carries over. The new batch has the old one's size and spaces.
    fn replace_env_batch(&mut self, batch: Box<dyn BatchEnv>, seed: u64) -> Result<()>;

    /// A copy of the current policy and its preprocessing.
    fn policy(&self) -> Result<PolicySnapshot>;

    /// The description of the current policy a checkpoint stores beside its
    /// weights ([`PolicyRecord::frame_stack`] is the trainer's to fill in).
    fn policy_record(&self) -> Result<PolicyRecord>;

    /// Large state only a resume needs (a replay buffer), streamed once into
    /// the newest checkpoint beside [`Algorithm::export_state`]'s; `None`
    /// (the default) when everything fits the state itself.
    fn resume_files(&self) -> Option<&dyn ResumeFiles> {
        None
    }

    /// Reads back the resume files of the checkpoint being resumed (name and
    /// verified path), after [`Algorithm::import_state`].
    fn import_resume_files(&mut self, files: &BTreeMap<String, PathBuf>) -> Result<()> {
        match files.keys().next() {
            None => Ok(()),
            Some(name) => Err(TrainError::invalid(
                "checkpoint",
                format!(
                    "holds resume file `{name}`, which algorithm `{}` does not read",
                    self.name()
                ),
            )),
        }
    }
}
