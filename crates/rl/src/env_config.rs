//! The `env` section of a run config: which registered environment to build
//! and how to wrap it.

use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, join_path};
use serde::{Deserialize, Serialize};

/// The environment section of a training config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// Registered id, e.g. `CartPole-v1`.
    pub id: String,
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

fn empty_map() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl Validate for EnvConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.id.trim().is_empty() {
            return Err(ConfigError::invalid(join_path(path, "id"), "is empty"));
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
        if !self.settings.is_object() {
            return Err(ConfigError::invalid(
                join_path(path, "settings"),
                "must be a mapping",
            ));
        }
        Ok(())
    }
}
