//! The training driver behind `hlynr train` and `hlynr resume`: it ties PPO
//! to a run directory.
//!
//! One [`Trainer`] owns the run directory (config, manifest), the PPO trainer,
//! the metrics sink (TensorBoard, `metrics.jsonl`, progress) and the
//! checkpoint manager. After every update it logs the PPO metrics and the
//! environment metrics of the episodes that finished during the rollout
//! (`episode/<name>`, mean over those episodes); every `eval_every_steps` env
//! steps it evaluates the policy deterministically on separate environments
//! with fixed seeds and keeps `best/`; every `checkpoint_every_steps` env steps
//! it writes a checkpoint. A stop request (Ctrl-C, SIGTERM) finishes the
//! current update, writes a checkpoint and marks the run `interrupted`.
//!
//! With a `curriculum` section (see [`crate::curriculum`]) the training and
//! evaluation environments are those of the current stage; an evaluation
//! that reaches the promotion threshold moves the run to the next stage, and
//! the stage is logged (`curriculum/stage`) and checkpointed.
//!
//! Every decision depends only on the env-step counter and saved state, never
//! on wall time, so a run stopped at any checkpoint and resumed ends with the
//! same weights and metrics as one that ran through.
//!
//! The driver sees environments only through an [`EnvFactory`]; the
//! classic-control tasks have [`ClassicEnvFactory`], other environments (the
//! interception simulator) provide their own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use hlynr_env::config::{ConfigError, Validate, ensure_range, join_path};
use hlynr_env::{BatchEnv, Env, EnvError, ObsNormalizer, Policy, PolicyInput, Space, TimeLimit};
use hlynr_nn::Tensor;
use hlynr_rng::{Rng, derive_seed};
use serde::{Deserialize, Serialize};
pub use serde_json::Value;
use thiserror::Error;

use crate::checkpoint::{BEST, Checkpoint, CheckpointManager, CheckpointPayload, ModelTensor};
use crate::curriculum::CurriculumConfig;
use crate::doctor::{Doctor, DoctorAction, DoctorConfig};
use crate::eval::{EvalConfig, EvalError, PolicyEpisodes, evaluate};
use crate::metrics::{Metrics, MetricsSink, RunEvent, event_kind, keys};
use crate::policy_net::ActorCritic;
use crate::ppo::{EnvConfig, Ppo, PpoConfig, PpoError, PpoMeta, PpoState, TrainConfig};
use crate::progress::{Progress, ProgressMode};
use crate::run::{NO_CHECKPOINT, NewRun, RunDir, RunError, RunStatus};
use crate::run_lock::RunLock;
use crate::signals::StopSignal;

/// Errors of the training driver.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// PPO failed.
    #[error(transparent)]
    Ppo(#[from] PpoError),
    /// The run directory, metrics or checkpoints failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// An environment failed.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// Anything else, with its context.
    #[error("{context}: {message}")]
    Invalid { context: String, message: String },
}

impl TrainError {
    /// Shorthand for [`TrainError::Invalid`].
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        TrainError::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }
}

/// Result alias of the driver.
pub type Result<T> = std::result::Result<T, TrainError>;

// ------------------------------------------------------------- config ----

/// Run-level settings: how often to checkpoint and evaluate. The step budget
/// (`ppo.total_timesteps`) and the number of envs (`ppo.n_envs`) stay in the
/// `ppo` section, where the schedules read them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Env steps (all envs together) between checkpoints.
    #[serde(default = "d::checkpoint_every_steps")]
    pub checkpoint_every_steps: u64,
    /// Step checkpoints kept (`last/` and `best/` always are); `null` keeps all.
    #[serde(default = "d::keep_last_n")]
    pub keep_last_n: Option<usize>,
    /// Env steps between evaluations; 0 evaluates only at the end.
    #[serde(default = "d::eval_every_steps")]
    pub eval_every_steps: u64,
    /// Episodes per evaluation.
    #[serde(default = "d::eval_episodes")]
    pub eval_episodes: u64,
    /// Base seed of the evaluation episodes (the same episodes every time);
    /// `null` derives one from the run seed.
    #[serde(default)]
    pub eval_seed: Option<u64>,
}

mod d {
    pub fn checkpoint_every_steps() -> u64 {
        50_000
    }
    pub fn keep_last_n() -> Option<usize> {
        Some(5)
    }
    pub fn eval_every_steps() -> u64 {
        10_000
    }
    pub fn eval_episodes() -> u64 {
        10
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            checkpoint_every_steps: d::checkpoint_every_steps(),
            keep_last_n: d::keep_last_n(),
            eval_every_steps: d::eval_every_steps(),
            eval_episodes: d::eval_episodes(),
            eval_seed: None,
        }
    }
}

impl Validate for RunSettings {
    fn validate(&self, path: &str) -> std::result::Result<(), ConfigError> {
        use hlynr_env::config::Interval;
        let p = |k: &str| join_path(path, k);
        ensure_range(
            &p("checkpoint_every_steps"),
            self.checkpoint_every_steps as f64,
            Interval::closed(1.0, 1e13),
        )?;
        if let Some(n) = self.keep_last_n {
            ensure_range(&p("keep_last_n"), n as f64, Interval::closed(0.0, 1e6))?;
        }
        ensure_range(
            &p("eval_every_steps"),
            self.eval_every_steps as f64,
            Interval::closed(0.0, 1e13),
        )?;
        ensure_range(
            &p("eval_episodes"),
            self.eval_episodes as f64,
            Interval::closed(1.0, crate::eval::MAX_EVAL_EPISODES as f64),
        )?;
        Ok(())
    }
}

/// A complete training-run config: [`TrainConfig`]'s `env`, `ppo`, `seed`
/// plus the `run` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The environment.
    pub env: EnvConfig,
    /// The algorithm.
    #[serde(default)]
    pub ppo: PpoConfig,
    /// Run seed (network initialisation, sampling, shuffling, environments).
    #[serde(default)]
    pub seed: u64,
    /// Checkpoints and evaluation.
    #[serde(default)]
    pub run: RunSettings,
    /// Optional curriculum of environment stages (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curriculum: Option<CurriculumConfig>,
    /// The training doctor's rules, thresholds and actions.
    #[serde(default)]
    pub doctor: DoctorConfig,
}

impl Validate for RunConfig {
    fn validate(&self, path: &str) -> std::result::Result<(), ConfigError> {
        self.train_config().validate(path)?;
        self.run.validate(&join_path(path, "run"))?;
        Validate::validate(&self.doctor, &join_path(path, "doctor"))?;
        if let Some(c) = &self.curriculum {
            c.validate(&join_path(path, "curriculum"))?;
            if self.run.eval_episodes < c.min_eval_episodes {
                return Err(ConfigError::invalid(
                    join_path(path, "run.eval_episodes"),
                    format!(
                        "{} is fewer than curriculum.min_eval_episodes = {}, so no evaluation could promote",
                        self.run.eval_episodes, c.min_eval_episodes
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Seed stream of the evaluation episodes when `run.eval_seed` is `null`.
const STREAM_EVAL: u64 = 0x6576_616c; // "eval"

impl RunConfig {
    /// The PPO part.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            env: self.env.clone(),
            ppo: self.ppo.clone(),
            seed: self.seed,
        }
    }

    /// Base seed of evaluation episodes.
    pub fn eval_seed(&self) -> u64 {
        self.run
            .eval_seed
            .unwrap_or_else(|| derive_seed(self.seed, STREAM_EVAL))
    }

    /// Number of environment stages: the curriculum's, or 1 without one.
    pub fn stage_count(&self) -> usize {
        self.curriculum.as_ref().map_or(1, |c| c.stages.len())
    }

    /// This config with the environment of stage `stage` (the config itself
    /// without a curriculum, where only stage 0 exists).
    pub fn stage_config(&self, stage: usize) -> Result<RunConfig> {
        let mut out = self.clone();
        match &self.curriculum {
            Some(c) => out.env = c.apply(&self.env, stage)?,
            None if stage == 0 => {}
            None => {
                return Err(TrainError::invalid(
                    "curriculum",
                    format!("stage {stage} asked of a run without a curriculum"),
                ));
            }
        }
        Ok(out)
    }

    /// Name of stage `stage`, if the run has a curriculum.
    pub fn stage_name(&self, stage: usize) -> Option<&str> {
        self.curriculum
            .as_ref()
            .and_then(|c| c.stages.get(stage))
            .map(|s| s.name.as_str())
    }

    /// Builds the environment factory of every stage with `factory_for` and
    /// one evaluation environment of each, so a bad stage override fails
    /// before training, naming the stage.
    pub fn stage_factories<F>(&self, factory_for: F) -> Result<Vec<Box<dyn EnvFactory>>>
    where
        F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
    {
        (0..self.stage_count())
            .map(|i| {
                let context = |e: &dyn std::fmt::Display| {
                    TrainError::invalid(
                        format!(
                            "curriculum.stages[{i}] (`{}`)",
                            self.stage_name(i).unwrap_or_default()
                        ),
                        e.to_string(),
                    )
                };
                let stage = self.stage_config(i)?;
                let factory = factory_for(&stage);
                if self.curriculum.is_none() {
                    return factory;
                }
                let factory = factory.map_err(|e| context(&e))?;
                factory.make_eval().map_err(|e| context(&e))?;
                Ok(factory)
            })
            .collect()
    }

    /// Strictly parses a resolved config value (a run's `config.yaml`).
    pub fn from_resolved(value: &Value) -> Result<Self> {
        let config: RunConfig = hlynr_env::config::from_value(value)?;
        config.validate("")?;
        Ok(config)
    }
}

// --------------------------------------------------------- environments ----

/// Builds the training and evaluation environments of a run.
pub trait EnvFactory: Sync + std::fmt::Debug {
    /// `n_envs` training environments, each wrapped in
    /// `hlynr_env::EpisodeStatistics` so episode returns are reported.
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>>;
    /// One evaluation environment (its own episodes end it: time limit or
    /// terminal state).
    fn make_eval(&self) -> hlynr_env::Result<Box<dyn Env>>;
}

/// The classic-control tasks (`CartPole-v1`, `Pendulum-v1`, ...).
#[derive(Clone, Debug)]
pub struct ClassicEnvFactory {
    env: EnvConfig,
    limit: u64,
}

impl ClassicEnvFactory {
    /// A factory for `env.id`, with `env.max_episode_steps` or the registered limit.
    pub fn new(env: &EnvConfig) -> Result<Self> {
        let spec = hlynr_env::classic::spec(&env.id)?;
        let limit = env
            .max_episode_steps
            .or(spec.max_episode_steps)
            .ok_or_else(|| {
                ConfigError::invalid(
                    "env.max_episode_steps",
                    format!("{} has no registered limit; set one", env.id),
                )
            })?;
        Ok(ClassicEnvFactory {
            env: env.clone(),
            limit,
        })
    }
}

impl EnvFactory for ClassicEnvFactory {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>> {
        Ok(Box::new(crate::ppo::make_classic_vec_env(
            &self.env, n_envs,
        )?))
    }

    fn make_eval(&self) -> hlynr_env::Result<Box<dyn Env>> {
        Ok(Box::new(TimeLimit::new(
            self.env.wrap(hlynr_env::classic::make(&self.env.id)?)?,
            self.limit,
        )?))
    }
}

/// `env.settings` of an environment built from named scenarios (the
/// interception simulator): `{scenario: NAME | PATH | mapping, set: [KEY=VALUE, ...]}`.
/// A new run stores the fully resolved scenario mapping (with `set` empty) in
/// its `config.yaml`, so resume and eval rebuild exactly the same environment
/// whatever happens to the shipped scenario files later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSettings {
    /// A shipped scenario name, a YAML file, or the scenario itself.
    #[serde(default = "default_scenario")]
    pub scenario: Value,
    /// Scenario overrides `key=value`, applied in order.
    #[serde(default)]
    pub set: Vec<String>,
}

fn default_scenario() -> Value {
    Value::String("medium".into())
}

impl ScenarioSettings {
    /// Strictly parses `env.settings`.
    pub fn parse(settings: &Value) -> Result<Self> {
        let s: ScenarioSettings = hlynr_env::config::from_value(settings)
            .map_err(|e| TrainError::invalid("env.settings", e.to_string()))?;
        if !(s.scenario.is_string() || s.scenario.is_object()) {
            return Err(TrainError::invalid(
                "env.settings.scenario",
                "must be a scenario name, a file path or a mapping",
            ));
        }
        Ok(s)
    }

    /// Replaces the settings of `config` and of its resolved form with the
    /// fully resolved scenario.
    pub fn store_resolved(
        config: &mut RunConfig,
        resolved: &mut Value,
        scenario: Value,
    ) -> Result<()> {
        let settings = serde_json::to_value(ScenarioSettings {
            scenario,
            set: Vec::new(),
        })
        .map_err(|e| TrainError::invalid("env.settings", e.to_string()))?;
        config.env.settings = settings.clone();
        match resolved.get_mut("env") {
            Some(Value::Object(env)) => {
                env.insert("settings".into(), settings);
                Ok(())
            }
            _ => Err(TrainError::invalid("config", "has no `env` mapping")),
        }
    }
}

/// A batch that passes everything through and keeps the `info.metrics` of
/// every episode that finished, so the driver can log their means.
pub struct EpisodeMetricsRecorder<B> {
    inner: B,
    /// Sum and count per metric since the last [`Self::take`].
    finished: Mutex<BTreeMap<&'static str, (f64, u64)>>,
}

impl<B> std::fmt::Debug for EpisodeMetricsRecorder<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The inner batch (often a trait object) has no `Debug` of its own.
        f.debug_struct("EpisodeMetricsRecorder")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// Final-step metrics that are codes, not quantities, and are not averaged.
const NOT_AVERAGED: [&str; 1] = ["termination_reason"];

impl<B: BatchEnv> EpisodeMetricsRecorder<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            finished: Mutex::new(BTreeMap::new()),
        }
    }

    /// Means of the recorded metrics as `episode/<name>`, and clears them.
    pub fn take(&self) -> Metrics {
        let mut map = self.finished.lock().unwrap_or_else(PoisonError::into_inner);
        let out = map
            .iter()
            .map(|(k, &(sum, n))| (format!("episode/{k}"), sum / n as f64))
            .collect();
        map.clear();
        out
    }
}

impl<B: BatchEnv> BatchEnv for EpisodeMetricsRecorder<B> {
    fn num_envs(&self) -> usize {
        self.inner.num_envs()
    }
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset(&mut self, seed: u64) -> hlynr_env::Result<()> {
        self.inner.reset(seed)
    }
    fn step(&mut self, actions: &[f32]) -> hlynr_env::Result<()> {
        self.inner.step(actions)?;
        let (term, trunc) = (self.inner.terminated(), self.inner.truncated());
        let mut map = self.finished.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, info) in self.inner.infos().iter().enumerate() {
            if !(term[i] || trunc[i]) {
                continue;
            }
            for &(k, v) in &info.metrics {
                if !NOT_AVERAGED.contains(&k) {
                    let slot = map.entry(k).or_insert((0.0, 0));
                    slot.0 += v;
                    slot.1 += 1;
                }
            }
        }
        Ok(())
    }
    fn obs(&self) -> &[f32] {
        self.inner.obs()
    }
    fn rewards(&self) -> &[f32] {
        self.inner.rewards()
    }
    fn terminated(&self) -> &[bool] {
        self.inner.terminated()
    }
    fn truncated(&self) -> &[bool] {
        self.inner.truncated()
    }
    fn infos(&self) -> &[hlynr_env::Info] {
        self.inner.infos()
    }
    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        self.inner.final_observation(i)
    }
    fn controller_view(&self) -> &[f64] {
        self.inner.controller_view()
    }
    fn controller_view_dim(&self) -> usize {
        self.inner.controller_view_dim()
    }
    fn state(&self) -> Value {
        self.inner.state()
    }
    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        self.inner.set_state(state)
    }
}

/// The environment batch the driver trains on.
pub type TrainEnv = EpisodeMetricsRecorder<Box<dyn BatchEnv>>;

// ------------------------------------------------------------- policy ----

/// A trained network as an evaluation [`Policy`]: observations go through
/// the run's observation normaliser, frozen, then the network.
#[derive(Debug)]
pub struct ModelPolicy {
    name: String,
    net: ActorCritic,
    normalizer: Option<ObsNormalizer>,
    normalized: Vec<f32>,
}

impl ModelPolicy {
    /// A copy of `ppo`'s network and frozen observation normaliser.
    pub fn from_ppo<B: BatchEnv>(ppo: &Ppo<B>, name: impl Into<String>) -> Result<Self> {
        let net = copy_network(ppo)?;
        let normalizer = ppo.env().obs_normalizer().cloned().map(|mut n| {
            n.freeze();
            n
        });
        Ok(ModelPolicy {
            name: name.into(),
            net,
            normalizer,
            normalized: Vec::new(),
        })
    }

    /// The observation normaliser (frozen), if the run used one.
    pub fn normalizer(&self) -> Option<&ObsNormalizer> {
        self.normalizer.as_ref()
    }

    /// Renames the policy (report names must be unique).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }
}

fn copy_network<B: BatchEnv>(ppo: &Ppo<B>) -> Result<ActorCritic> {
    let env = ppo.env();
    // The initialisation draw is overwritten by the copied weights.
    let mut net = ActorCritic::new(
        env.obs_dim(),
        env.action_space(),
        &ppo.config().policy,
        &mut Rng::seed_from_u64(0),
    )?;
    net.load_state_dict(&ppo.policy().state_dict())?;
    net.set_policy_rng(ppo.policy().policy_rng().clone());
    Ok(net)
}

impl Policy for ModelPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        deterministic: bool,
        actions: &mut [f32],
    ) -> std::result::Result<(), String> {
        let expected = self.net.obs_dim() * input.n;
        if input.obs.len() != expected {
            return Err(format!(
                "model `{}` takes {} observation values per env (its training env's), got {} for {} env(s)",
                self.name,
                self.net.obs_dim(),
                input.obs.len(),
                input.n
            ));
        }
        let Some(norm) = &self.normalizer else {
            return Policy::act(&mut self.net, input, deterministic, actions);
        };
        self.normalized.resize(input.obs.len(), 0.0);
        norm.normalize(input.obs, &mut self.normalized)
            .map_err(|e| e.to_string())?;
        let normalized = PolicyInput {
            n: input.n,
            obs: &self.normalized,
            controller_view: input.controller_view,
        };
        Policy::act(&mut self.net, &normalized, deterministic, actions)
    }

    fn reset_rows(&mut self, rows: &[usize]) {
        Policy::reset_rows(&mut self.net, rows);
    }
}

// --------------------------------------------------------- checkpoints ----

/// Driver state saved beside PPO's in every checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerMeta {
    /// Training wall time of all segments so far (s).
    pub elapsed_s: f64,
    /// Best evaluation so far: `(success_rate, mean_return)`.
    pub best: Option<EvalScore>,
    /// The most recent evaluation.
    pub last_eval: Option<EvalSummary>,
    /// Current curriculum stage (0 without a curriculum).
    #[serde(default)]
    pub stage: usize,
    /// The training doctor's state (rule counters and histories).
    #[serde(default)]
    pub doctor: Option<Value>,
    /// Rollbacks to `best/` the doctor has made.
    #[serde(default)]
    pub rollbacks: u32,
}

/// The key `best/` is chosen by: curriculum stage first (an evaluation on a
/// later, harder stage ranks above any on an earlier one), then success
/// rate, then mean return.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalScore {
    /// Curriculum stage the evaluation ran on (0 without a curriculum).
    #[serde(default)]
    pub stage: usize,
    /// Success rate; `null` for envs that define no success.
    pub success_rate: Option<f64>,
    /// Mean undiscounted return.
    pub mean_return: f64,
}

impl EvalScore {
    /// Whether `self` beats `other` (success rate, then return; a rate
    /// beats none).
    pub fn beats(&self, other: &EvalScore) -> bool {
        if self.stage != other.stage {
            return self.stage > other.stage;
        }
        match (self.success_rate, other.success_rate) {
            (Some(a), Some(b)) if a != b => a > b,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            _ => self.mean_return > other.mean_return,
        }
    }
}

/// What one evaluation measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    /// Env steps when it ran.
    pub env_steps: u64,
    /// Curriculum stage it ran on (0 without a curriculum).
    #[serde(default)]
    pub stage: usize,
    /// Episodes.
    pub episodes: u64,
    /// Mean undiscounted return.
    pub mean_reward: f64,
    /// Mean episode length.
    pub mean_ep_length: f64,
    /// Fraction of successful episodes; `null` when the env defines none.
    pub success_rate: Option<f64>,
}

impl EvalSummary {
    /// Summarises one policy's episodes.
    pub fn of(results: &PolicyEpisodes, env_steps: u64) -> Self {
        let eps = &results.episodes;
        let n = eps.len().max(1) as f64;
        let flagged = eps.iter().any(|e| e.is_success.is_some());
        EvalSummary {
            env_steps,
            stage: 0,
            episodes: eps.len() as u64,
            mean_reward: eps.iter().map(|e| e.episode_return).sum::<f64>() / n,
            mean_ep_length: eps.iter().map(|e| e.length as f64).sum::<f64>() / n,
            success_rate: flagged
                .then(|| eps.iter().filter(|e| e.is_success == Some(true)).count() as f64 / n),
        }
    }

    /// The score `best/` is chosen by.
    pub fn score(&self) -> EvalScore {
        EvalScore {
            stage: self.stage,
            success_rate: self.success_rate,
            mean_return: self.mean_reward,
        }
    }
}

/// Layout version of the driver's part of `state.json`.
pub const TRAINER_STATE_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedState {
    version: u32,
    /// Fingerprint of the resolved config the run was started with.
    config_fingerprint: String,
    ppo: PpoMeta,
    trainer: TrainerMeta,
}

fn payload_of(
    state: PpoState,
    trainer: &TrainerMeta,
    fingerprint: &str,
) -> Result<CheckpointPayload> {
    let saved = SavedState {
        version: TRAINER_STATE_VERSION,
        config_fingerprint: fingerprint.to_string(),
        ppo: state.meta,
        trainer: trainer.clone(),
    };
    let state_json = serde_json::to_value(&saved)
        .map_err(|e| TrainError::invalid("checkpoint state", e.to_string()))?;
    Ok(CheckpointPayload {
        model: state
            .weights
            .into_iter()
            .map(|(k, t)| (k, ModelTensor::Value(t)))
            .collect(),
        optimizer: state.optimizer,
        state: state_json,
    })
}

/// Splits a checkpoint into PPO's state and the driver's.
fn state_of(checkpoint: &Checkpoint) -> Result<(PpoState, TrainerMeta, String)> {
    let path = checkpoint.path.display();
    let saved: SavedState = serde_json::from_value(checkpoint.payload.state.clone())
        .map_err(|e| TrainError::invalid(format!("checkpoint {path}"), format!("state: {e}")))?;
    if saved.version != TRAINER_STATE_VERSION {
        return Err(TrainError::invalid(
            format!("checkpoint {path}"),
            format!(
                "trainer state version {} is not the supported {TRAINER_STATE_VERSION}",
                saved.version
            ),
        ));
    }
    let weights: BTreeMap<String, Tensor> = checkpoint
        .payload
        .model
        .iter()
        .map(|(k, t)| (k.clone(), t.tensor().clone()))
        .collect();
    Ok((
        PpoState {
            weights,
            optimizer: checkpoint.payload.optimizer.clone(),
            meta: saved.ppo,
        },
        saved.trainer,
        saved.config_fingerprint,
    ))
}

// -------------------------------------------------------------- driver ----

/// How a training segment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainStatus {
    /// `ppo.total_timesteps` reached.
    Completed,
    /// The `until` step of this segment reached before the total; resumable.
    Paused,
    /// Stopped by a signal or request; resumable.
    Interrupted,
    /// Stopped by a training-doctor rule whose action is `stop` (or after
    /// `doctor.max_rollbacks` rollbacks); resumable after a look at the run.
    DoctorStopped,
}

/// The result of [`Trainer::train`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOutcome {
    /// How it ended.
    pub status: TrainStatus,
    /// Env steps reached.
    pub env_steps: u64,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
    /// The most recent evaluation.
    pub last_eval: Option<EvalSummary>,
    /// Updates skipped by PPO's non-finite guard (whole run).
    pub nonfinite_skips: u64,
    /// Wall time of this segment (s).
    pub segment_s: f64,
}

/// Where to create a new run.
#[derive(Clone, Debug)]
pub struct RunLocation {
    /// Parent directory (`runs/`).
    pub runs_dir: PathBuf,
    /// Run name.
    pub name: String,
    /// The command line to record.
    pub command_line: Vec<String>,
}

/// What resuming found.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumeReport {
    /// The checkpoint used; `None` when the run had written none yet and
    /// started over from step 0 with its resolved config.
    pub checkpoint: Option<PathBuf>,
    /// Its env-step count.
    pub env_steps: u64,
    /// Newer checkpoints that failed validation: path and reason.
    pub rejected: Vec<(PathBuf, String)>,
    /// Interrupted writes that were completed or cleaned up.
    pub repairs: Vec<String>,
}

/// A training run in progress (see the module docs).
#[derive(Debug)]
pub struct Trainer {
    run: RunDir,
    config: RunConfig,
    fingerprint: String,
    /// One factory per curriculum stage (one without a curriculum).
    factories: Vec<Box<dyn EnvFactory>>,
    ppo: Ppo<TrainEnv>,
    sink: MetricsSink,
    checkpoints: CheckpointManager,
    meta: TrainerMeta,
    /// Env steps of the last checkpoint written (avoids saving twice).
    last_saved_step: Option<u64>,
    /// Watches every logged record.
    doctor: Doctor,
    /// Why the doctor asked to stop, once it has.
    doctor_stop: Option<String>,
}

/// Seed stream of the environment resets at curriculum promotions.
const STREAM_CURRICULUM: u64 = 0x6375_7272; // "curr"

fn stage_factory(factories: &[Box<dyn EnvFactory>], stage: usize) -> Result<&dyn EnvFactory> {
    factories.get(stage).map(Box::as_ref).ok_or_else(|| {
        TrainError::invalid(
            "curriculum",
            format!(
                "stage {stage} does not exist (the run has {} stages)",
                factories.len()
            ),
        )
    })
}

fn make_ppo(config: &RunConfig, factory: &dyn EnvFactory) -> Result<Ppo<TrainEnv>> {
    let env = EpisodeMetricsRecorder::new(factory.make_train(config.ppo.n_envs)?);
    Ok(Ppo::new(config.ppo.clone(), env, config.seed)?)
}

/// Validates `config` and builds the learner of its first stage, checking
/// that its evaluation env builds too: everything that can fail on bad input
/// before a run directory is written.
fn first_stage_ppo(config: &RunConfig, factories: &[Box<dyn EnvFactory>]) -> Result<Ppo<TrainEnv>> {
    config.validate("")?;
    let factory = stage_factory(factories, 0)?;
    let ppo = make_ppo(config, factory)?;
    factory.make_eval()?;
    Ok(ppo)
}

impl Trainer {
    /// Creates a new run directory for the resolved `config` (`resolved` is
    /// what `config.yaml` holds) and a trainer at step 0. A config with a
    /// curriculum needs one factory per stage: use [`Trainer::create_staged`].
    pub fn create(
        config: RunConfig,
        resolved: &Value,
        factory: Box<dyn EnvFactory>,
        location: &RunLocation,
        progress: ProgressMode,
    ) -> Result<Self> {
        if config.curriculum.is_some() {
            return Err(TrainError::invalid(
                "curriculum",
                "a run with a curriculum is created with Trainer::create_staged",
            ));
        }
        Self::create_with(config, resolved, vec![factory], location, progress)
    }

    /// Everything [`Trainer::create_staged`] checks before it writes a run
    /// directory (the config, every stage's environments, the learner),
    /// without creating one: `hlynr train --check`.
    pub fn check_staged<F>(config: &RunConfig, factory_for: F) -> Result<()>
    where
        F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
    {
        config.validate("")?;
        let factories = config.stage_factories(factory_for)?;
        first_stage_ppo(config, &factories).map(drop)
    }

    /// Like [`Trainer::create`], building the environments of every
    /// curriculum stage with `factory_for` (from the stage's config) and
    /// checking each before the run directory exists.
    pub fn create_staged<F>(
        config: RunConfig,
        resolved: &Value,
        factory_for: F,
        location: &RunLocation,
        progress: ProgressMode,
    ) -> Result<Self>
    where
        F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
    {
        config.validate("")?;
        let factories = config.stage_factories(factory_for)?;
        Self::create_with(config, resolved, factories, location, progress)
    }

    fn create_with(
        config: RunConfig,
        resolved: &Value,
        factories: Vec<Box<dyn EnvFactory>>,
        location: &RunLocation,
        progress: ProgressMode,
    ) -> Result<Self> {
        // Build everything that can fail on bad input before creating the directory.
        let ppo = first_stage_ppo(&config, &factories)?;
        let run = RunDir::create(&NewRun {
            runs_dir: &location.runs_dir,
            name: &location.name,
            seed: config.seed,
            resolved_config: resolved,
            command_line: location.command_line.clone(),
        })?;
        let progress = Progress::new(progress, 0, config.ppo.total_timesteps);
        let sink = MetricsSink::create_in(run.path(), Some(progress))?;
        Self::at_step_zero(run, resolved, config, factories, ppo, sink)
    }

    /// A trainer at step 0 writing `run` through `sink`.
    fn at_step_zero(
        run: RunDir,
        resolved: &Value,
        config: RunConfig,
        factories: Vec<Box<dyn EnvFactory>>,
        ppo: Ppo<TrainEnv>,
        sink: MetricsSink,
    ) -> Result<Self> {
        let checkpoints = CheckpointManager::new(&run.checkpoints_dir(), config.run.keep_last_n)?;
        Ok(Trainer {
            doctor: Doctor::new(config.doctor.clone()),
            fingerprint: crate::checkpoint::json_fingerprint(resolved),
            run,
            config,
            factories,
            ppo,
            sink,
            checkpoints,
            meta: TrainerMeta::default(),
            last_saved_step: None,
            doctor_stop: None,
        })
    }

    /// Reopens the run at `run_dir` from its newest valid checkpoint, or from
    /// step 0 when it was stopped before writing any (its resolved config is
    /// all a run needs to start). `factory_for` builds the environments from
    /// the run's config. The run's writer lock is taken first: a run that
    /// another process is writing is refused before anything is read or
    /// repaired.
    pub fn resume<F>(
        run_dir: &Path,
        factory_for: F,
        command_line: Vec<String>,
        progress: ProgressMode,
    ) -> Result<(Self, ResumeReport)>
    where
        F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
    {
        let lock = RunLock::acquire(run_dir)?;
        let opened = RunDir::open(run_dir)?;
        let resolved = opened.read_config()?;
        let config = RunConfig::from_resolved(&resolved)?;
        let factories = config.stage_factories(factory_for)?;
        let checkpoints =
            CheckpointManager::new(&opened.checkpoints_dir(), config.run.keep_last_n)?;
        let recovery = checkpoints.latest_valid()?;
        let report_rejected: Vec<(PathBuf, String)> = recovery
            .rejected
            .iter()
            .map(|r| (r.path.clone(), r.reason.clone()))
            .collect();
        let Some(checkpoint) = recovery.checkpoint else {
            if report_rejected.is_empty() {
                drop(opened);
                let report = ResumeReport {
                    checkpoint: None,
                    env_steps: 0,
                    rejected: Vec::new(),
                    repairs: recovery.repairs,
                };
                let trainer = Self::start_over(
                    run_dir,
                    lock,
                    &resolved,
                    config,
                    factories,
                    command_line,
                    progress,
                )?;
                return Ok((trainer, report));
            }
            let mut message = format!(
                "no valid checkpoint in {}",
                opened.checkpoints_dir().display()
            );
            for (p, why) in &report_rejected {
                message.push_str(&format!("; {} rejected: {why}", p.display()));
            }
            message.push_str(&format!(
                "; to train from the beginning, start a new run from its config: hlynr train --config {}",
                opened.config_path().display()
            ));
            return Err(TrainError::invalid("resume", message));
        };
        let (state, meta, fingerprint) = state_of(&checkpoint)?;
        let expected = crate::checkpoint::json_fingerprint(&resolved);
        if fingerprint != expected {
            return Err(TrainError::invalid(
                format!("checkpoint {}", checkpoint.path.display()),
                "was written for a different config.yaml (fingerprint mismatch); \
                 config.yaml must not be edited between segments",
            ));
        }
        // The checkpoint's environment state belongs to its stage's batch.
        let mut ppo = make_ppo(&config, stage_factory(&factories, meta.stage)?)?;
        ppo.import_state(&state)?;
        let env_steps = checkpoint.env_steps;
        if ppo.counters().num_timesteps != env_steps {
            return Err(TrainError::invalid(
                format!("checkpoint {}", checkpoint.path.display()),
                format!(
                    "records {env_steps} env steps but its state holds {}",
                    ppo.counters().num_timesteps
                ),
            ));
        }
        drop(opened);
        let run = RunDir::resume(
            run_dir,
            lock,
            Some(&checkpoint.path),
            env_steps,
            command_line,
        )?;
        let relative = checkpoint
            .path
            .strip_prefix(run_dir)
            .unwrap_or(&checkpoint.path)
            .display()
            .to_string();
        let progress = Progress::new(progress, env_steps, config.ppo.total_timesteps);
        let sink = MetricsSink::resume_in(
            run.path(),
            env_steps,
            &relative,
            meta.elapsed_s,
            Some(progress),
        )?;
        let mut doctor = Doctor::new(config.doctor.clone());
        if let Some(state) = &meta.doctor {
            doctor.set_state(state).map_err(|e| {
                TrainError::invalid(
                    format!("checkpoint {}", checkpoint.path.display()),
                    format!("training doctor state: {e}"),
                )
            })?;
        }
        let report = ResumeReport {
            checkpoint: Some(checkpoint.path.clone()),
            env_steps,
            rejected: report_rejected,
            repairs: recovery.repairs,
        };
        Ok((
            Trainer {
                run,
                fingerprint,
                config,
                factories,
                ppo,
                sink,
                checkpoints,
                meta,
                last_saved_step: Some(env_steps),
                doctor,
                doctor_stop: None,
            },
            report,
        ))
    }

    /// The trainer of a run that wrote no checkpoint: step 0 of its resolved
    /// config, in its own directory, which keeps its history (the manifest
    /// records the restart; metrics and TensorBoard start a new segment at 0).
    fn start_over(
        run_dir: &Path,
        lock: RunLock,
        resolved: &Value,
        config: RunConfig,
        factories: Vec<Box<dyn EnvFactory>>,
        command_line: Vec<String>,
        progress: ProgressMode,
    ) -> Result<Self> {
        let ppo = first_stage_ppo(&config, &factories)?;
        let run = RunDir::resume(run_dir, lock, None, 0, command_line)?;
        let progress = Progress::new(progress, 0, config.ppo.total_timesteps);
        let sink = MetricsSink::resume_in(run.path(), 0, NO_CHECKPOINT, 0.0, Some(progress))?;
        Self::at_step_zero(run, resolved, config, factories, ppo, sink)
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        self.run.path()
    }

    /// The config.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The PPO trainer.
    pub fn ppo(&self) -> &Ppo<TrainEnv> {
        &self.ppo
    }

    /// Trains until `until` env steps (default and cap: `ppo.total_timesteps`)
    /// or a stop request. Always ends with a checkpoint and the manifest's
    /// status; on error the run is marked `failed`.
    pub fn train(&mut self, until: Option<u64>, stop: Option<&StopSignal>) -> Result<TrainOutcome> {
        match self.train_inner(until, stop) {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                let _ = self.sink.event(
                    self.ppo.counters().num_timesteps,
                    &RunEvent::new(event_kind::FAILED, e.to_string()),
                );
                let _ = self.sink.finish();
                let _ = self.run.finish(RunStatus::Failed, Some(e.to_string()));
                Err(e)
            }
        }
    }

    fn train_inner(
        &mut self,
        until: Option<u64>,
        stop: Option<&StopSignal>,
    ) -> Result<TrainOutcome> {
        let total = self.config.ppo.total_timesteps;
        let until = until.unwrap_or(total);
        if until > total {
            return Err(TrainError::invalid(
                "--steps",
                format!(
                    "{until} is beyond ppo.total_timesteps = {total}, the horizon of the schedules; \
                     start a new run with a larger total_timesteps"
                ),
            ));
        }
        let started = std::time::Instant::now();
        let segment_start = self.ppo.counters().num_timesteps;
        let mut status = TrainStatus::Completed;
        while self.ppo.counters().num_timesteps < until {
            let before = self.ppo.counters().num_timesteps;
            let metrics = self.ppo.iterate()?;
            let step = self.ppo.counters().num_timesteps;
            let mut values: Metrics = metrics
                .scalars()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            values.extend(self.ppo.env().inner().take());
            let segment_s = started.elapsed().as_secs_f64();
            if segment_s > 0.0 {
                values.insert(keys::FPS.into(), (step - segment_start) as f64 / segment_s);
            }
            values.insert(keys::TIME_ELAPSED.into(), self.sink.elapsed_s());
            if self.config.curriculum.is_some() {
                values.insert(CURRICULUM_STAGE.into(), self.meta.stage as f64);
            }
            self.sink.log(step, &values)?;
            self.consult_doctor(step, &values)?;
            if metrics.nonfinite_skipped {
                self.sink.event(
                    step,
                    &RunEvent::new(
                        event_kind::NONFINITE,
                        "non-finite loss, gradient or weight: update skipped, last good parameters restored",
                    )
                    .with("skips", metrics.nonfinite_skips),
                )?;
            }
            let every = self.config.run.eval_every_steps;
            let finished = step >= total;
            if (every > 0 && crossed(before, step, every)) || finished {
                self.evaluate_and_keep_best(step)?;
            }
            if crossed(before, step, self.config.run.checkpoint_every_steps) {
                self.save_checkpoint(step)?;
            }
            if stop.is_some_and(StopSignal::stop_requested) {
                status = TrainStatus::Interrupted;
                break;
            }
            if self.doctor_stop.is_some() {
                status = TrainStatus::DoctorStopped;
                break;
            }
        }
        let step = self.ppo.counters().num_timesteps;
        if status == TrainStatus::Completed && step < total {
            status = TrainStatus::Paused;
        }
        if self.last_saved_step != Some(step) {
            self.save_checkpoint(step)?;
        }
        let (run_status, message) = match status {
            TrainStatus::Completed => (RunStatus::Completed, None),
            TrainStatus::Paused => (
                RunStatus::Interrupted,
                Some(format!(
                    "stopped at {step} of {total} env steps as asked (--steps); `hlynr resume` continues"
                )),
            ),
            TrainStatus::Interrupted => (
                RunStatus::Interrupted,
                Some(
                    stop.and_then(StopSignal::reason)
                        .unwrap_or_else(|| "stop requested".into()),
                ),
            ),
            TrainStatus::DoctorStopped => (
                RunStatus::Interrupted,
                Some(format!(
                    "stopped by the training doctor: {}",
                    self.doctor_stop.clone().unwrap_or_default()
                )),
            ),
        };
        if let Some(m) = &message {
            self.sink
                .event(step, &RunEvent::new(event_kind::STOPPED, m.clone()))?;
        }
        self.sink.finish()?;
        self.run.finish(run_status, message)?;
        Ok(TrainOutcome {
            status,
            env_steps: step,
            checkpoint: self.last_saved_step.map(|s| {
                self.checkpoints
                    .dir()
                    .join(crate::checkpoint::step_dir_name(s))
            }),
            last_eval: self.meta.last_eval,
            nonfinite_skips: self.ppo.counters().nonfinite_skips,
            segment_s: started.elapsed().as_secs_f64(),
        })
    }

    /// The current curriculum stage (0 without a curriculum).
    pub fn stage(&self) -> usize {
        self.meta.stage
    }

    /// Evaluates the current policy on fresh environments of the current
    /// curriculum stage (deterministic actions, frozen normaliser, the run's
    /// fixed evaluation seeds).
    pub fn evaluate_now(&self) -> Result<EvalSummary> {
        let step = self.ppo.counters().num_timesteps;
        let policy = ModelPolicy::from_ppo(&self.ppo, "model")?;
        let mut policies: Vec<Box<dyn Policy>> = vec![Box::new(policy)];
        let config = EvalConfig::new(self.config.run.eval_episodes, self.config.eval_seed());
        let factory = stage_factory(&self.factories, self.meta.stage)?;
        let results = evaluate(&|| factory.make_eval(), &mut policies, &config)?;
        let first = results
            .first()
            .ok_or_else(|| TrainError::invalid("evaluation", "returned no results"))?;
        Ok(EvalSummary {
            stage: self.meta.stage,
            ..EvalSummary::of(first, step)
        })
    }

    fn evaluate_and_keep_best(&mut self, step: u64) -> Result<()> {
        let summary = self.evaluate_now()?;
        let mut values = Metrics::new();
        values.insert(keys::EVAL_MEAN_REWARD.into(), summary.mean_reward);
        values.insert(keys::EVAL_MEAN_EP_LENGTH.into(), summary.mean_ep_length);
        if let Some(s) = summary.success_rate {
            values.insert(keys::EVAL_SUCCESS_RATE.into(), s);
        }
        self.sink.log(step, &values)?;
        self.consult_doctor(step, &values)?;
        self.meta.last_eval = Some(summary);
        let score = summary.score();
        if self.meta.best.is_none_or(|b| score.beats(&b)) {
            self.meta.best = Some(score);
            let payload = self.payload()?;
            let path = self.checkpoints.save_best(step, &payload)?;
            self.sink.event(
                step,
                &RunEvent::new(event_kind::CHECKPOINT, "new best evaluation")
                    .with("path", self.relative(&path))
                    .with("mean_reward", summary.mean_reward)
                    .with(
                        "success_rate",
                        summary.success_rate.map_or(Value::Null, Value::from),
                    ),
            )?;
        }
        let promotes = match &self.config.curriculum {
            Some(c) => c.promotes(self.meta.stage, &summary)?,
            None => false,
        };
        if promotes {
            self.promote(step, &summary)?;
        }
        Ok(())
    }

    /// Moves to the next curriculum stage: a fresh training batch of that
    /// stage, reset with a seed derived from the run seed and the stage
    /// (normaliser statistics, network and optimizer carry over).
    fn promote(&mut self, step: u64, summary: &EvalSummary) -> Result<()> {
        let next = self.meta.stage + 1;
        let factory = stage_factory(&self.factories, next)?;
        let batch = EpisodeMetricsRecorder::new(factory.make_train(self.config.ppo.n_envs)?);
        let seed = derive_seed(
            derive_seed(self.config.seed, STREAM_CURRICULUM),
            next as u64,
        );
        self.ppo.replace_env_batch(batch, seed)?;
        self.meta.stage = next;
        let name = self.config.stage_name(next).unwrap_or_default().to_string();
        self.sink.event(
            step,
            &RunEvent::new(
                event_kind::CURRICULUM,
                format!("promoted to stage {next} `{name}`"),
            )
            .with("stage", next as u64)
            .with("name", name)
            .with("mean_reward", summary.mean_reward)
            .with(
                "success_rate",
                summary.success_rate.map_or(Value::Null, Value::from),
            ),
        )?;
        Ok(())
    }

    /// Shows a logged record to the doctor and acts on its findings: every
    /// finding becomes a `doctor` event (JSONL, TensorBoard text, progress
    /// display); `stop` ends training after this update; `rollback` restores
    /// `best/` with a lower learning rate (a stop once `max_rollbacks` are used).
    fn consult_doctor(&mut self, step: u64, values: &Metrics) -> Result<()> {
        for finding in self.doctor.observe(step, values) {
            self.sink.event(
                step,
                &RunEvent::new(event_kind::DOCTOR, finding.diagnosis.clone())
                    .with("rule", finding.rule.clone())
                    .with("severity", finding.severity.name())
                    .with("action", finding.action.name())
                    .with("suggestion", finding.suggestion.clone())
                    .with("evidence", crate::doctor::evidence_json(&finding.evidence)),
            )?;
            match finding.action {
                DoctorAction::Warn => {}
                DoctorAction::Stop => {
                    self.doctor_stop
                        .get_or_insert_with(|| format!("{} at step {step}", finding.rule));
                }
                DoctorAction::Rollback => self.roll_back(step, &finding.rule)?,
            }
        }
        Ok(())
    }

    /// Restores `best/` (weights, optimizer, normaliser statistics) and scales
    /// the learning rate by `doctor.rollback_lr_factor`; the step count,
    /// environments and generators continue.
    fn roll_back(&mut self, step: u64, rule: &str) -> Result<()> {
        let (factor, max) = (
            self.config.doctor.rollback_lr_factor,
            self.config.doctor.max_rollbacks,
        );
        if self.meta.rollbacks >= max {
            let why = format!("{rule} at step {step} after {max} rollbacks");
            self.sink.event(
                step,
                &RunEvent::new(
                    event_kind::STOP,
                    format!("rollback limit (doctor.max_rollbacks = {max}) reached: stopping"),
                )
                .with("rule", rule),
            )?;
            self.doctor_stop.get_or_insert(why);
            return Ok(());
        }
        let best_dir = self.checkpoints.dir().join(BEST);
        let best = if best_dir.is_dir() {
            match crate::checkpoint::read_checkpoint(&best_dir).and_then(|c| {
                state_of(&c)
                    .map(|(state, _, _)| (state, c.env_steps))
                    .map_err(|e| crate::run::RunError::corrupt(&best_dir, e.to_string()))
            }) {
                Ok(found) => Some(found),
                Err(e) => {
                    self.sink.event(
                        step,
                        &RunEvent::new(
                            event_kind::ROLLBACK,
                            format!("best/ unusable ({e}); not rolled back"),
                        )
                        .with("rule", rule),
                    )?;
                    return Ok(());
                }
            }
        } else {
            None
        };
        let Some((state, best_step)) = best else {
            self.sink.event(
                step,
                &RunEvent::new(
                    event_kind::ROLLBACK,
                    "no best/ checkpoint yet; not rolled back",
                )
                .with("rule", rule),
            )?;
            return Ok(());
        };
        self.ppo.roll_back_to(&state, factor)?;
        self.meta.rollbacks += 1;
        self.sink.event(
            step,
            &RunEvent::new(
                event_kind::ROLLBACK,
                format!(
                    "restored best/ (step {best_step}); learning rate now x{:.3}",
                    self.ppo.lr_scale()
                ),
            )
            .with("rule", rule)
            .with("best_step", best_step)
            .with("lr_scale", self.ppo.lr_scale())
            .with("rollbacks", self.meta.rollbacks),
        )?;
        Ok(())
    }

    fn payload(&mut self) -> Result<CheckpointPayload> {
        self.meta.elapsed_s = self.sink.elapsed_s();
        self.meta.doctor = Some(self.doctor.state());
        payload_of(self.ppo.export_state()?, &self.meta, &self.fingerprint)
    }

    fn save_checkpoint(&mut self, step: u64) -> Result<()> {
        let payload = self.payload()?;
        let path = self.checkpoints.save(step, &payload)?;
        self.last_saved_step = Some(step);
        self.sink.event(
            step,
            &RunEvent::new(event_kind::CHECKPOINT, "saved").with("path", self.relative(&path)),
        )?;
        Ok(())
    }

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(self.run.path())
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Metric key of the current curriculum stage, logged every update.
pub const CURRICULUM_STAGE: &str = "curriculum/stage";

/// Whether a multiple of `every` lies in `(before, after]`.
fn crossed(before: u64, after: u64, every: u64) -> bool {
    every > 0 && after / every > before / every
}

// ----------------------------------------------------------- loading ----

/// A trained policy loaded from a run for evaluation.
#[derive(Debug)]
pub struct LoadedModel {
    /// The run's config.
    pub config: RunConfig,
    /// The checkpoint directory used.
    pub checkpoint: PathBuf,
    /// Env steps of that checkpoint.
    pub env_steps: u64,
    /// The policy (network + frozen observation normaliser).
    pub policy: ModelPolicy,
    /// For a run with a curriculum: the stage whose environment `config`
    /// holds (the final stage), index and name.
    pub stage: Option<(usize, String)>,
}

/// Resolves `RUN_DIR` or `RUN_DIR/checkpoints/NAME` to the run directory and
/// the checkpoint directory (`best/` by default, `last/` when there is no
/// `best/`).
pub fn locate_model(path: &Path) -> Result<(PathBuf, PathBuf)> {
    if path.join(crate::run::MANIFEST_FILE).is_file() {
        let ckpts = path.join(crate::run::CHECKPOINTS_DIR);
        for name in [BEST, crate::checkpoint::LAST] {
            if ckpts.join(name).is_dir() {
                return Ok((path.to_path_buf(), ckpts.join(name)));
            }
        }
        return Err(TrainError::invalid(
            format!("model {}", path.display()),
            "the run has neither checkpoints/best nor checkpoints/last",
        ));
    }
    let parent = path.parent().filter(|p| {
        p.file_name()
            .is_some_and(|n| n == crate::run::CHECKPOINTS_DIR)
    });
    if let Some(run) = parent.and_then(Path::parent)
        && run.join(crate::run::MANIFEST_FILE).is_file()
    {
        return Ok((run.to_path_buf(), path.to_path_buf()));
    }
    Err(TrainError::invalid(
        format!("model {}", path.display()),
        "is neither a run directory (with manifest.json) nor RUN_DIR/checkpoints/NAME",
    ))
}

/// Loads the policy of checkpoint `checkpoint_dir` of the run at `run_dir`,
/// with the run's own config and normaliser statistics. `factory_for`
/// builds the environments from the run's config. For a run with a
/// curriculum the returned config holds the final stage's environment,
/// whatever stage the checkpoint was written at: a model is judged on the
/// task the curriculum leads to.
pub fn load_model<F>(run_dir: &Path, checkpoint_dir: &Path, factory_for: F) -> Result<LoadedModel>
where
    F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
{
    let run = RunDir::open(run_dir)?;
    let config = RunConfig::from_resolved(&run.read_config()?)?;
    let checkpoint = crate::checkpoint::read_checkpoint(checkpoint_dir)?;
    let (state, meta, _) = state_of(&checkpoint)?;
    // The checkpoint's environment state belongs to its own stage's batch.
    let factory = factory_for(&config.stage_config(meta.stage)?)?;
    let mut ppo = make_ppo(&config, factory.as_ref())?;
    ppo.import_state(&state)?;
    let name = run.manifest().name.clone();
    let (config, stage) = match &config.curriculum {
        Some(c) => {
            let last = c.final_stage();
            let stage = (
                last,
                config.stage_name(last).unwrap_or_default().to_string(),
            );
            (config.stage_config(last)?, Some(stage))
        }
        None => (config, None),
    };
    Ok(LoadedModel {
        policy: ModelPolicy::from_ppo(&ppo, name)?,
        stage,
        config,
        checkpoint: checkpoint.path,
        env_steps: checkpoint.env_steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_counts_env_steps() {
        assert!(crossed(0, 256, 256));
        assert!(!crossed(256, 511, 256));
        assert!(crossed(500, 520, 256 * 2));
        assert!(!crossed(0, 100, 0));
    }

    #[test]
    fn success_rate_ranks_before_return() {
        let s = |r: Option<f64>, m: f64| EvalScore {
            stage: 0,
            success_rate: r,
            mean_return: m,
        };
        assert!(s(Some(0.9), -10.0).beats(&s(Some(0.8), 100.0)));
        assert!(s(Some(0.8), 5.0).beats(&s(Some(0.8), 4.0)));
        assert!(!s(Some(0.8), 4.0).beats(&s(Some(0.8), 4.0)));
        assert!(s(None, 500.0).beats(&s(None, 499.0)));
        assert!(s(Some(0.0), 0.0).beats(&s(None, 1e9)));
        // A later curriculum stage ranks above any score on an earlier one.
        let later = EvalScore {
            stage: 1,
            ..s(Some(0.1), -5.0)
        };
        assert!(later.beats(&s(Some(1.0), 100.0)));
        assert!(!s(Some(1.0), 100.0).beats(&later));
    }

    #[test]
    fn run_settings_validate_and_reject_unknown_keys() {
        let e = hlynr_env::config::from_yaml_str::<RunConfig>(
            "env: {id: CartPole-v1}\nrun: {checkpoint_every: 5}\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("checkpoint_every") && e.contains("checkpoint_every_steps"),
            "{e}"
        );
        let e = hlynr_env::config::from_yaml_str::<RunConfig>(
            "env: {id: CartPole-v1}\nrun: {eval_episodes: 0}\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("run.eval_episodes"), "{e}");
    }
}
