//! `env.remote`: where the learner listens for env clients and how long it
//! waits for them.

use hlynr_env::EnvError;
use hlynr_env::config::{Interval, ensure_range, join_path};
use serde::{Deserialize, Serialize};

/// The `env.remote` section of a run config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Address the WebSocket server binds, `host:port` (port 0 picks a free
    /// one, printed at start).
    pub listen: String,
    /// The longest a client waits for its actions: a request the learner has
    /// not answered by then (it is learning) is answered with held actions,
    /// so a real-time client never waits for learning.
    #[serde(default = "d::act_timeout_ms")]
    pub act_timeout_ms: u64,
    /// The longest the learner waits for an agent's next observation; an
    /// agent later than that has its episode cut for learning (it may go
    /// on: its next observation starts a new segment).
    #[serde(default = "d::stall_timeout_ms")]
    pub stall_timeout_ms: u64,
    /// The longest the learner waits with no agent at all before the run
    /// fails (checkpoint kept, resumable).
    #[serde(default = "d::wait_for_clients_s")]
    pub wait_for_clients_s: f64,
    /// Largest message accepted, in bytes.
    #[serde(default = "d::max_message_bytes")]
    pub max_message_bytes: usize,
    /// The agents' spaces, for an env with no local twin (`env.id:
    /// remote`); otherwise they are the twin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<crate::Spec>,
}

mod d {
    pub fn act_timeout_ms() -> u64 {
        50
    }
    pub fn stall_timeout_ms() -> u64 {
        10_000
    }
    pub fn wait_for_clients_s() -> f64 {
        600.0
    }
    pub fn max_message_bytes() -> usize {
        1 << 20
    }
}

impl RemoteConfig {
    /// Reads `env.remote` strictly (an unknown key is named with the
    /// closest known one) and checks its ranges.
    pub fn from_value(value: &serde_json::Value) -> hlynr_env::Result<Self> {
        let config: RemoteConfig = hlynr_env::config::from_value(value)
            .map_err(|e| EnvError::invalid("env.remote", e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> hlynr_env::Result<()> {
        let path = "env.remote";
        let check = |key: &str, v: f64, range: Interval| {
            ensure_range(&join_path(path, key), v, range)
                .map_err(|e| EnvError::invalid(path, e.to_string()))
        };
        if self.listen.parse::<std::net::SocketAddr>().is_err() && !self.listen.contains(':') {
            return Err(EnvError::invalid(
                join_path(path, "listen"),
                format!("`{}` is not host:port", self.listen),
            ));
        }
        check(
            "act_timeout_ms",
            self.act_timeout_ms as f64,
            Interval::closed(1.0, 60_000.0),
        )?;
        check(
            "stall_timeout_ms",
            self.stall_timeout_ms as f64,
            Interval::closed(1.0, 3_600_000.0),
        )?;
        check(
            "wait_for_clients_s",
            self.wait_for_clients_s,
            Interval::closed(0.001, 86_400.0 * 7.0),
        )?;
        check(
            "max_message_bytes",
            self.max_message_bytes as f64,
            Interval::closed(1024.0, 1024.0 * 1024.0 * 1024.0),
        )?;
        Ok(())
    }

    /// A config listening on `listen` with every other key at its default.
    pub fn listening_on(listen: impl Into<String>) -> Self {
        Self {
            listen: listen.into(),
            act_timeout_ms: d::act_timeout_ms(),
            stall_timeout_ms: d::stall_timeout_ms(),
            wait_for_clients_s: d::wait_for_clients_s(),
            max_message_bytes: d::max_message_bytes(),
            spec: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_strictly_and_checked() {
        let ok = RemoteConfig::from_value(&serde_json::json!({"listen": "127.0.0.1:8765"}));
        assert_eq!(ok.unwrap().act_timeout_ms, 50);
        let typo =
            RemoteConfig::from_value(&serde_json::json!({"listen": "a:1", "act_timeout": 5}))
                .unwrap_err()
                .to_string();
        assert!(typo.contains("act_timeout_ms"), "{typo}");
        let zero =
            RemoteConfig::from_value(&serde_json::json!({"listen": "a:1", "stall_timeout_ms": 0}))
                .unwrap_err()
                .to_string();
        assert!(zero.contains("stall_timeout_ms"), "{zero}");
        let no_port = RemoteConfig::from_value(&serde_json::json!({"listen": "localhost"}));
        assert!(no_port.unwrap_err().to_string().contains("host:port"));
    }
}
