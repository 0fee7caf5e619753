//! The `env` section of a run config: which registered environment to build
//! and how to wrap it.

use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, join_path};
use serde::{Deserialize, Serialize};

/// The environment section of a training config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// Registered id, e.g. `CartPole-v1`; [`PYTHON_ID`] (the default) when
    /// `python` names the environment.
    #[serde(default = "python_id")]
    pub id: String,
    /// A Python Gymnasium environment instead of an hlynr one:
    /// `gymnasium:Acrobot-v1` (an id for `gymnasium.make`, whose keyword
    /// arguments are `settings`) or `package.module:callable` (called with
    /// `settings` as keyword arguments, returning a `gymnasium.Env`).
    /// Hosted by the Python package (`python -m hlynr train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// Episode step limit; `null` uses the registered one.
    #[serde(default)]
    pub max_episode_steps: Option<u64>,
    /// Environment-specific settings, interpreted by the environment's builder
    /// (an empty mapping for the classic-control tasks, which take none).
    #[serde(default = "empty_map")]
    pub settings: serde_json::Value,
    /// Stack the last `k` observations into one (`hlynr_env::FrameStack`):
    /// the feed-forward alternative to a recurrent policy. `null` = no stacking.
    #[serde(default)]
    pub frame_stack: Option<usize>,
    /// Train on env clients that connect over WebSocket instead of on
    /// local envs: `{listen: "127.0.0.1:8765", ...}`, read by
    /// `hlynr_remote::RemoteConfig`. `id` names the local env with the same
    /// spaces (the twin that evaluations run on), or is `remote` with the
    /// spaces given under `remote.spec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<serde_json::Value>,
}

impl EnvConfig {
    /// `env` wrapped in the configured frame stack, if any.
    pub fn wrap(&self, env: Box<dyn hlynr_env::Env>) -> hlynr_env::Result<Box<dyn hlynr_env::Env>> {
        match self.frame_stack {
            Some(k) => Ok(Box::new(hlynr_env::FrameStack::new(env, k)?)),
            None => Ok(env),
        }
    }
}

/// The `env.id` of a Python environment (see [`EnvConfig::python`]).
pub const PYTHON_ID: &str = "python";

fn python_id() -> String {
    PYTHON_ID.into()
}

fn empty_map() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl Validate for EnvConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.id.trim().is_empty() {
            return Err(ConfigError::invalid(join_path(path, "id"), "is empty"));
        }
        match &self.python {
            None if self.id == PYTHON_ID => {
                return Err(ConfigError::invalid(
                    path,
                    "names no environment: give `id` (an hlynr environment such as \
                     CartPole-v1) or `python` (a Gymnasium one such as gymnasium:Acrobot-v1)",
                ));
            }
            Some(_) if self.id != PYTHON_ID => {
                return Err(ConfigError::invalid(
                    path,
                    format!(
                        "`id: {}` and `python` name two environments; give one of them",
                        self.id
                    ),
                ));
            }
            Some(spec) if !spec.contains(':') || spec.starts_with(':') || spec.ends_with(':') => {
                return Err(ConfigError::invalid(
                    join_path(path, "python"),
                    format!("`{spec}` is not `gymnasium:ENV_ID` or `module:callable`"),
                ));
            }
            _ => {}
        }
        if let Some(m) = self.max_episode_steps {
            ensure_range(
                &join_path(path, "max_episode_steps"),
                m as f64,
                Interval::closed(1.0, 1e12),
            )?;
        }
        if let Some(k) = self.frame_stack {
            ensure_range(
                &join_path(path, "frame_stack"),
                k as f64,
                Interval::closed(1.0, 1024.0),
            )?;
        }
        if let Some(remote) = &self.remote {
            if !remote.is_object() {
                return Err(ConfigError::invalid(
                    join_path(path, "remote"),
                    "must be a mapping (e.g. {listen: \"127.0.0.1:8765\"})",
                ));
            }
            if self.python.is_some() {
                return Err(ConfigError::invalid(
                    path,
                    "`python` and `remote` name two environments; give one of them",
                ));
            }
        }
        if !self.settings.is_object() {
            return Err(ConfigError::invalid(
                join_path(path, "settings"),
                "must be a mapping",
            ));
        }
        Ok(())
    }
}
