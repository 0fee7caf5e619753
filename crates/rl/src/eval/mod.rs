//! Policy evaluation: run several policies on the same seeded episodes and
//! summarise what they achieved.
//!
//! The engine owns the episode loop shared by `hlynr eval`, scenario checks and
//! (later) periodic evaluation during training:
//! - **Same engagements for everyone.** Episode `k` of every policy starts from
//!   `reset(Some(episode_seed(seed, k)))`, so differences between policies come
//!   from the policies, not from the draw of scenarios.
//! - **Deterministic.** Each policy runs its episodes in order on its own env;
//!   policies run in parallel on the rayon pool, which changes only the wall-clock
//!   time, never a number (results are independent of the thread count).
//! - **One definition of success.** Success is the env's `info.is_success` on the
//!   final step; the engine never recomputes it. Every `info.metrics` value of the
//!   final step is recorded as well.
//!
//! Env-type-specific needs (recording trajectories of a concrete simulator, naming
//! why an episode ended) go through an [`EpisodeProbe`], so this module stays
//! generic over [`Env`].

pub mod plot;
mod random;
pub mod report;
pub mod stats;
pub mod summary;

pub use random::RandomPolicy;
pub use summary::{EvalScore, EvalSummary};

use hlynr_env::{Env, EnvError, Info, ObsMut, Policy, PolicyInput, Space, Step};
use rayon::prelude::*;
use thiserror::Error;

/// Everything that can go wrong while evaluating.
#[derive(Debug, Error)]
pub enum EvalError {
    /// The environment factory failed.
    #[error("building the evaluation environment: {0}")]
    Env(#[from] EnvError),
    /// A policy returned an error.
    #[error("policy {policy:?}, episode {episode}, step {step}: {message}")]
    Policy {
        policy: String,
        episode: u64,
        step: u64,
        message: String,
    },
    /// The environment failed during an episode.
    #[error("policy {policy:?}, episode {episode}, step {step}: {source}")]
    EnvFailed {
        policy: String,
        episode: u64,
        step: u64,
        source: EnvError,
    },
    /// A policy produced an action outside the action space (or not finite).
    #[error("policy {policy:?}, episode {episode}, step {step}: invalid action: {message}")]
    InvalidAction {
        policy: String,
        episode: u64,
        step: u64,
        message: String,
    },
    /// A bad argument or an inconsistent input.
    #[error("{context}: {message}")]
    Invalid { context: String, message: String },
    /// Writing a report or plot failed.
    #[error("writing {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl EvalError {
    /// Shorthand for an invalid argument.
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        EvalError::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }
}

/// Result alias for evaluation.
pub type Result<T> = std::result::Result<T, EvalError>;

/// What to evaluate: how many episodes, from which seed, in which mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalConfig {
    /// Episodes per policy (at least 1).
    pub episodes: u64,
    /// Base seed; episode `k` uses [`episode_seed`]`(seed, k)`.
    pub seed: u64,
    /// Asks stochastic policies for their mode (the usual evaluation setting).
    pub deterministic: bool,
    /// A safety cap on steps per episode for envs without their own time
    /// limit; an episode reaching it is recorded as truncated with reason
    /// [`STEP_CAP_REASON`]. `None` trusts the env to end every episode.
    pub max_episode_steps: Option<u64>,
}

impl EvalConfig {
    /// `episodes` deterministic episodes from `seed`, no step cap.
    pub fn new(episodes: u64, seed: u64) -> Self {
        Self {
            episodes,
            seed,
            deterministic: true,
            max_episode_steps: None,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(1..=MAX_EVAL_EPISODES).contains(&self.episodes) {
            return Err(EvalError::invalid(
                "evaluation episodes",
                format!("must be in 1..={MAX_EVAL_EPISODES}, got {}", self.episodes),
            ));
        }
        if self.max_episode_steps == Some(0) {
            return Err(EvalError::invalid(
                "evaluation max_episode_steps",
                "must be at least 1 when set, got 0",
            ));
        }
        Ok(())
    }
}

/// The most episodes one evaluation runs per policy. Every episode's result
/// is kept for the report (about 100 bytes each), and a million episodes
/// already pin a success rate to +-0.1 point; beyond it a typo would exhaust
/// memory before it ran a step.
pub const MAX_EVAL_EPISODES: u64 = 1_000_000;

/// Termination reason of an episode cut by [`EvalConfig::max_episode_steps`].
pub const STEP_CAP_REASON: &str = "step_cap";

/// The reset seed of episode `episode` in an evaluation seeded with `seed`.
pub fn episode_seed(seed: u64, episode: u64) -> u64 {
    hlynr_rng::derive_seed(seed, episode)
}

/// What one episode produced, read from the final step.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeResult {
    /// Index of the episode in the evaluation (0-based).
    pub episode: u64,
    /// The seed the env was reset with.
    pub seed: u64,
    /// Undiscounted sum of rewards.
    pub episode_return: f64,
    /// Number of steps taken.
    pub length: u64,
    /// The env's success flag on the final step (`None` if it defines none).
    pub is_success: Option<bool>,
    /// The episode ended in a terminal state.
    pub terminated: bool,
    /// The episode was cut (time limit or step cap).
    pub truncated: bool,
    /// Why the episode ended (see [`EpisodeProbe::termination_reason`]).
    pub termination_reason: String,
    /// Every metric of the final step's `info.metrics`, in the env's order.
    pub metrics: Vec<(&'static str, f64)>,
}

impl EpisodeResult {
    /// The value of a final-step metric, if the env reported it.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, v)| v)
    }
}

/// All episodes of one policy, in episode order.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyEpisodes {
    /// The policy's report name.
    pub policy: String,
    /// One entry per episode, episode `k` at index `k`.
    pub episodes: Vec<EpisodeResult>,
}

/// Hooks for a concrete env type: observe it while episodes run, and name how
/// each episode ended.
///
/// One probe is made per policy (see [`evaluate_with_probes`]) and handed back
/// after the run, so it can carry what it recorded.
pub trait EpisodeProbe<E>: Send {
    /// Called after every reset (`step == 0`) and after every step
    /// (`step` = steps taken so far in the episode).
    fn on_step(&mut self, _episode: u64, _step: u64, _env: &E) {}

    /// Names why an episode ended, from the env and its final step. The
    /// default is `"terminated"` or `"truncated"`.
    fn termination_reason(&self, _env: &E, _info: &Info, step: &Step) -> String {
        default_termination_reason(step).to_string()
    }

    /// Whether final-step metric `key` belongs in the results. Lets a probe
    /// drop metrics that are not quantities (a termination-reason code that
    /// [`EpisodeProbe::termination_reason`] already names). Default: all.
    fn keep_metric(&self, _key: &str) -> bool {
        true
    }
}

/// `"terminated"` for a true end, `"truncated"` for a cut.
pub fn default_termination_reason(step: &Step) -> &'static str {
    if step.terminated {
        "terminated"
    } else {
        "truncated"
    }
}

/// A probe that observes nothing and uses the default termination reasons.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProbe;

impl<E> EpisodeProbe<E> for NoProbe {}

/// A closure called after every reset and step, as a probe.
#[derive(Debug)]
pub struct StepObserver<F>(pub F);

impl<E, F: FnMut(u64, &E) + Send> EpisodeProbe<E> for StepObserver<F> {
    fn on_step(&mut self, episode: u64, _step: u64, env: &E) {
        (self.0)(episode, env)
    }
}

/// Evaluates every policy for `config.episodes` episodes on identical seeds,
/// policies in parallel on the current rayon pool.
pub fn evaluate<E, F>(
    make_env: &F,
    policies: &mut [Box<dyn Policy>],
    config: &EvalConfig,
) -> Result<Vec<PolicyEpisodes>>
where
    E: Env,
    F: Fn() -> hlynr_env::Result<E> + Sync,
{
    evaluate_with_probes(make_env, policies, config, |_| NoProbe).map(|(results, _)| results)
}

/// As [`evaluate`], with one probe per policy made by `make_probe(policy_index)`;
/// returns the results and the probes, both in policy order.
pub fn evaluate_with_probes<E, F, P, M>(
    make_env: &F,
    policies: &mut [Box<dyn Policy>],
    config: &EvalConfig,
    make_probe: M,
) -> Result<(Vec<PolicyEpisodes>, Vec<P>)>
where
    E: Env,
    F: Fn() -> hlynr_env::Result<E> + Sync,
    P: EpisodeProbe<E>,
    M: Fn(usize) -> P + Sync,
{
    config.validate()?;
    check_unique_names(policies)?;
    let outcomes: Vec<Result<(PolicyEpisodes, P)>> = policies
        .par_iter_mut()
        .enumerate()
        .map(|(index, policy)| {
            let mut probe = make_probe(index);
            let mut env = make_env()?;
            let episodes = run_policy(&mut env, policy.as_mut(), config, &mut probe)?;
            Ok((
                PolicyEpisodes {
                    policy: policy.name().to_string(),
                    episodes,
                },
                probe,
            ))
        })
        .collect();
    let mut results = Vec::with_capacity(outcomes.len());
    let mut probes = Vec::with_capacity(outcomes.len());
    // The first error in policy order is reported, whatever finished first.
    for outcome in outcomes {
        let (result, probe) = outcome?;
        results.push(result);
        probes.push(probe);
    }
    Ok((results, probes))
}

/// Runs one policy for `config.episodes` episodes on `env`, sequentially.
pub fn run_policy<E, P>(
    env: &mut E,
    policy: &mut dyn Policy,
    config: &EvalConfig,
    probe: &mut P,
) -> Result<Vec<EpisodeResult>>
where
    E: Env,
    P: EpisodeProbe<E> + ?Sized,
{
    config.validate()?;
    let obs_dim = env.observation_space().flat_dim();
    let action_space = env.action_space().clone();
    let act_dim = action_space.flat_dim();
    let view_dim = env.controller_view_dim();
    let mut obs = vec![0.0f32; obs_dim];
    let mut obs_bytes = vec![0u8; env.observation_space().byte_dim()];
    let mut view = vec![0.0f64; view_dim];
    let mut action = vec![0.0f32; act_dim];
    let mut info = Info::default();
    let mut results = Vec::with_capacity(config.episodes as usize);

    for episode in 0..config.episodes {
        let seed = episode_seed(config.seed, episode);
        info.clear();
        let name = policy.name().to_string();
        let failed = |step: u64, source: EnvError| EvalError::EnvFailed {
            policy: name.clone(),
            episode,
            step,
            source,
        };
        env.reset(Some(seed), ObsMut::new(&mut obs, &mut obs_bytes), &mut info)
            .map_err(|e| failed(0, e))?;
        policy.reset_rows(&[0]);
        probe.on_step(episode, 0, env);
        let mut episode_return = 0.0;
        let mut length = 0u64;
        loop {
            env.write_controller_view(&mut view);
            let input = PolicyInput {
                n: 1,
                obs: &obs,
                obs_bytes: &obs_bytes,
                controller_view: &view,
            };
            policy
                .act(&input, config.deterministic, &mut action)
                .map_err(|message| EvalError::Policy {
                    policy: policy.name().to_string(),
                    episode,
                    step: length,
                    message,
                })?;
            clip_to_space(&action_space, &mut action);
            action_space
                .check(&action)
                .map_err(|message| EvalError::InvalidAction {
                    policy: policy.name().to_string(),
                    episode,
                    step: length,
                    message,
                })?;
            info.clear();
            let mut step = env
                .step(&action, ObsMut::new(&mut obs, &mut obs_bytes), &mut info)
                .map_err(|e| failed(length, e))?;
            episode_return += step.reward;
            length += 1;
            probe.on_step(episode, length, env);
            let capped = !step.done() && config.max_episode_steps.is_some_and(|m| length >= m);
            if step.done() || capped {
                let termination_reason = if capped {
                    step.truncated = true;
                    STEP_CAP_REASON.to_string()
                } else {
                    probe.termination_reason(env, &info, &step)
                };
                results.push(EpisodeResult {
                    episode,
                    seed,
                    episode_return,
                    length,
                    is_success: info.is_success,
                    terminated: step.terminated,
                    truncated: step.truncated,
                    termination_reason,
                    metrics: info
                        .metrics
                        .iter()
                        .filter(|(k, _)| probe.keep_metric(k))
                        .copied()
                        .collect(),
                });
                break;
            }
        }
    }
    Ok(results)
}

/// Clamps the `Box` parts of a flat action into their bounds, as
/// Stable-Baselines3's `predict` does, so the mean of a Gaussian policy slightly
/// outside the box is applied at the bound rather than rejected. Non-finite
/// values and discrete parts are left for [`Space::check`] to judge.
pub fn clip_to_space(space: &Space, action: &mut [f32]) {
    match space {
        Space::Box { low, high, .. } => {
            for ((a, &lo), &hi) in action.iter_mut().zip(low).zip(high) {
                if a.is_finite() {
                    *a = a.max(lo).min(hi);
                }
            }
        }
        Space::Tuple { spaces } => {
            let mut at = 0;
            for s in spaces {
                let d = s.flat_dim();
                if at + d <= action.len() {
                    clip_to_space(s, &mut action[at..at + d]);
                }
                at += d;
            }
        }
        Space::Discrete { .. } | Space::MultiDiscrete { .. } => {}
    }
}

fn check_unique_names(policies: &[Box<dyn Policy>]) -> Result<()> {
    if policies.is_empty() {
        return Err(EvalError::invalid(
            "evaluation policies",
            "at least one policy is needed",
        ));
    }
    for (i, p) in policies.iter().enumerate() {
        if policies[..i].iter().any(|q| q.name() == p.name()) {
            return Err(EvalError::invalid(
                "evaluation policies",
                format!(
                    "policy name {:?} appears twice; report names must be unique",
                    p.name()
                ),
            ));
        }
    }
    Ok(())
}
