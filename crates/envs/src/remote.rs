//! Env clients over WebSocket as a run's training envs (`env.remote`, see
//! `hlynr_remote`). `env.id` names the local twin whose spaces the clients
//! must match and on which evaluations run (the arena for the browser
//! game); `env.id: remote` takes the spaces from `env.remote.spec` and has
//! nothing to evaluate on (`run.evaluate: false`).

use hlynr_env::{BatchEnv, Env};
use hlynr_remote::{RemoteBatch, RemoteConfig, Serving, Spec};
use hlynr_rl::trainer::{EnvFactory, Result, TrainError};

/// The `env.id` of a remote env without a local twin.
pub const REMOTE: &str = "remote";

/// Remote training envs, and the local twin (if any) for evaluation.
#[derive(Debug)]
pub struct RemoteFactory {
    config: RemoteConfig,
    spec: Spec,
    twin: Option<Box<dyn EnvFactory>>,
    page: Option<String>,
}

impl RemoteFactory {
    /// Remote envs of `config`, with the twin built by `twin` (`None` for
    /// `env.id: remote`); browsers that open the server's address get
    /// `page` (the arena's game).
    pub fn new(
        remote: &serde_json::Value,
        twin: Option<Box<dyn EnvFactory>>,
        page: Option<String>,
    ) -> Result<Self> {
        let config = RemoteConfig::from_value(remote)?;
        let spec = match (&twin, &config.spec) {
            (Some(twin), given) => {
                let env = twin.make_eval()?;
                let spec = Spec {
                    observation_space: env.observation_space().clone(),
                    action_space: env.action_space().clone(),
                };
                if given.as_ref().is_some_and(|g| *g != spec) {
                    return Err(TrainError::invalid(
                        "env.remote.spec",
                        "differs from the spaces of env.id; leave it out (they are the env's) \
                         or set env.id: remote",
                    ));
                }
                spec
            }
            (None, Some(spec)) => spec.clone(),
            (None, None) => {
                return Err(TrainError::invalid(
                    "env.remote.spec",
                    "env.id: remote needs the agents' spaces: spec: {observation_space: ..., \
                     action_space: ...}",
                ));
            }
        };
        Ok(Self {
            config,
            spec,
            twin,
            page,
        })
    }
}

impl EnvFactory for RemoteFactory {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>> {
        Ok(Box::new(RemoteBatch::new(
            self.config.clone(),
            self.spec.clone(),
            n_envs,
            Serving {
                page: self.page.clone(),
                quiet: false,
            },
        )?))
    }

    fn baseline_names(&self) -> Vec<&'static str> {
        self.twin
            .as_ref()
            .map_or_else(Vec::new, |t| t.baseline_names())
    }

    fn default_baselines(&self) -> Vec<&'static str> {
        self.twin
            .as_ref()
            .map_or_else(Vec::new, |t| t.default_baselines())
    }

    fn make_baseline(&self, name: &str) -> hlynr_env::Result<Box<dyn hlynr_env::Policy>> {
        match &self.twin {
            Some(twin) => twin.make_baseline(name),
            None => Err(hlynr_env::EnvError::invalid(
                "run.eval_baselines",
                "a remote env without a local twin has no baselines",
            )),
        }
    }

    fn make_eval(&self) -> hlynr_env::Result<Box<dyn Env>> {
        match &self.twin {
            Some(twin) => twin.make_eval(),
            None => Err(hlynr_env::EnvError::invalid(
                "env.id: remote",
                "a remote env has no local twin to evaluate on: set run.evaluate: false, or \
                 name the local env with the same spaces in env.id",
            )),
        }
    }
}
