//! How a run gets its environments: the [`EnvFactory`] seam the trainer
//! builds training batches and evaluation envs through, and the factory of the
//! classic-control tasks.

use hlynr_env::config::ConfigError;
use hlynr_env::{BatchEnv, Env, EnvError, EpisodeStatistics, Policy, TimeLimit, VecEnv};

use crate::env_config::EnvConfig;
use crate::error::{Result, TrainError};

/// Builds the training and evaluation environments of a run.
pub trait EnvFactory: Sync + std::fmt::Debug {
    /// `n_envs` training environments, each wrapped in
    /// `hlynr_env::EpisodeStatistics` so episode returns are reported.
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>>;
    /// One evaluation environment (its own episodes end it: time limit or
    /// terminal state).
    fn make_eval(&self) -> hlynr_env::Result<Box<dyn Env>>;

    /// The scripted baselines this env offers to evaluations, by name.
    fn baseline_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// The baselines evaluations table beside the policy when
    /// `run.eval_baselines` is `null`.
    fn default_baselines(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// The baseline `name` (one of [`EnvFactory::baseline_names`]), playing
    /// this factory's evaluation env.
    fn make_baseline(&self, name: &str) -> hlynr_env::Result<Box<dyn Policy>> {
        Err(hlynr_env::EnvError::invalid(
            "run.eval_baselines",
            format!("`{name}`: this environment has no scripted baselines"),
        ))
    }
}

/// The classic-control tasks (`CartPole-v1`, `Pendulum-v1`, ...).
#[derive(Clone, Debug)]
pub struct ClassicEnvFactory {
    env: EnvConfig,
    limit: u64,
}

impl ClassicEnvFactory {
    /// A factory for `env.id`, with `env.max_episode_steps` or the registered
    /// limit; the classic tasks take no `env.settings`.
    pub fn new(env: &EnvConfig) -> Result<Self> {
        let spec = hlynr_env::classic::spec(&env.id)?;
        if env.settings.as_object().is_some_and(|m| !m.is_empty()) {
            return Err(TrainError::Config(ConfigError::invalid(
                "env.settings",
                format!("{} takes no settings", env.id),
            )));
        }
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

    /// One env: the task behind its configured wrappers and time limit.
    fn make_one(&self) -> hlynr_env::Result<TimeLimit<Box<dyn Env>>> {
        TimeLimit::new(
            self.env.wrap(hlynr_env::classic::make(&self.env.id)?)?,
            self.limit,
        )
    }

    /// `n_envs` envs, each with episode statistics, stepped together.
    pub fn make_vec(&self, n_envs: usize) -> Result<ClassicVecEnv> {
        let envs = (0..n_envs)
            .map(|_| Ok(EpisodeStatistics::new(self.make_one()?)))
            .collect::<std::result::Result<Vec<_>, EnvError>>()?;
        Ok(VecEnv::new(envs)?)
    }
}

impl EnvFactory for ClassicEnvFactory {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>> {
        Ok(Box::new(self.make_vec(n_envs)?))
    }

    fn make_eval(&self) -> hlynr_env::Result<Box<dyn Env>> {
        Ok(Box::new(self.make_one()?))
    }
}

/// A classic-control batch as the training configs describe it: each env is
/// the registered task with its time limit, wrapped in episode statistics.
pub type ClassicVecEnv = VecEnv<EpisodeStatistics<TimeLimit<Box<dyn Env>>>>;

/// `n_envs` copies of the classic-control task `env.id` (see
/// [`ClassicEnvFactory`]).
pub fn make_classic_vec_env(env: &EnvConfig, n_envs: usize) -> Result<ClassicVecEnv> {
    ClassicEnvFactory::new(env)?.make_vec(n_envs)
}
