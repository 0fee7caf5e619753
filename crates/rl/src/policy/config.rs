//! The network section of an algorithm's config (`ppo.policy`): layer
//! widths, activation, normalisation, initialisation, squashing and the
//! recurrent core.

use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, join_path};
use serde::{Deserialize, Deserializer, Serialize};

use super::features::FeaturesConfig;

/// Hidden-layer nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `tanh` (Stable-Baselines3's default for PPO).
    Tanh,
    /// `max(0, x)`.
    Relu,
    /// `max(0.01 x, x)`.
    LeakyRelu,
}

/// How a Gaussian sample becomes a bounded environment action (see the module
/// documentation for the exact log-probability semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Squash {
    /// Send the sample unchanged (unbounded boxes only).
    None,
    /// Clip the sample to the bounds when sending it; log-prob of the unclipped sample.
    Clip,
    /// Squash with `tanh` and rescale to the bounds; log-prob with the Jacobian correction.
    Tanh,
}

/// Hidden widths of the trunk and the two heads' MLPs.
///
/// In a config: a list (`[64, 64]`, separate policy and value MLPs of those
/// widths, as Stable-Baselines3's `net_arch=[64, 64]`) or a mapping
/// `{shared: [...], pi: [...], vf: [...]}` (any of them may be empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetArch {
    /// Trunk shared by policy and value function.
    pub shared: Vec<usize>,
    /// Policy MLP after the trunk.
    pub pi: Vec<usize>,
    /// Value MLP after the trunk.
    pub vf: Vec<usize>,
}

impl Default for NetArch {
    fn default() -> Self {
        Self {
            shared: Vec::new(),
            pi: vec![64, 64],
            vf: vec![64, 64],
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetArchMap {
    #[serde(default)]
    shared: Vec<usize>,
    #[serde(default)]
    pi: Vec<usize>,
    #[serde(default)]
    vf: Vec<usize>,
}

impl<'de> Deserialize<'de> for NetArch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.is_array() {
            let widths: Vec<usize> = hlynr_env::config::from_buffered(value)?;
            return Ok(Self {
                shared: Vec::new(),
                pi: widths.clone(),
                vf: widths,
            });
        }
        let m: NetArchMap = hlynr_env::config::from_buffered(value)?;
        Ok(Self {
            shared: m.shared,
            pi: m.pi,
            vf: m.vf,
        })
    }
}

fn default_log_std_init() -> f64 {
    0.0
}
fn default_true() -> bool {
    true
}
fn default_activation() -> Activation {
    Activation::Tanh
}
fn default_squash() -> Squash {
    Squash::Clip
}
/// LSTM hidden size when `lstm_hidden_size` is not set.
pub const DEFAULT_LSTM_HIDDEN_SIZE: usize = 64;

/// Network family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// Feed-forward: the MLPs see the current observation only.
    #[default]
    Mlp,
    /// Recurrent: an LSTM (see [`crate::recurrent`]) in front of the policy
    /// and value MLPs carries memory across the steps of an episode.
    Lstm,
}

/// Network configuration (the `ppo.policy` section).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// `mlp` (default) or `lstm`.
    #[serde(default, rename = "type")]
    pub kind: PolicyKind,
    /// LSTM hidden size (`type: lstm` only); `null` = 64.
    #[serde(default)]
    pub lstm_hidden_size: Option<usize>,
    /// One LSTM for actor and critic instead of one each (`type: lstm` only);
    /// default off, as sb3-contrib's `RecurrentPPO`.
    #[serde(default)]
    pub shared_lstm: bool,
    /// Hidden widths; default `[64, 64]` for both heads.
    #[serde(default)]
    pub net_arch: NetArch,
    /// Hidden nonlinearity; default `tanh`.
    #[serde(default = "default_activation")]
    pub activation: Activation,
    /// Insert a `LayerNorm` after every hidden `Linear`; default off.
    #[serde(default)]
    pub layer_norm: bool,
    /// Orthogonal initialisation (SB3 gains); default on. Off gives PyTorch's default.
    #[serde(default = "default_true")]
    pub ortho_init: bool,
    /// Initial value of the state-independent Gaussian log standard deviation.
    #[serde(default = "default_log_std_init")]
    pub log_std_init: f64,
    /// How Gaussian samples map to bounded actions; default `clip`.
    #[serde(default = "default_squash")]
    pub squash: Squash,
    /// How observations become features; default `flatten`.
    #[serde(default, skip_serializing_if = "FeaturesConfig::is_flatten")]
    pub features: FeaturesConfig,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            kind: PolicyKind::Mlp,
            lstm_hidden_size: None,
            shared_lstm: false,
            net_arch: NetArch::default(),
            activation: Activation::Tanh,
            layer_norm: false,
            ortho_init: true,
            log_std_init: 0.0,
            squash: Squash::Clip,
            features: FeaturesConfig::Flatten,
        }
    }
}

impl PolicyConfig {
    /// The LSTM hidden size of a recurrent policy (`None` for an MLP).
    pub fn recurrent_hidden_size(&self) -> Option<usize> {
        (self.kind == PolicyKind::Lstm)
            .then(|| self.lstm_hidden_size.unwrap_or(DEFAULT_LSTM_HIDDEN_SIZE))
    }
}

impl Validate for PolicyConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        for (name, widths) in [
            ("shared", &self.net_arch.shared),
            ("pi", &self.net_arch.pi),
            ("vf", &self.net_arch.vf),
        ] {
            for (i, &w) in widths.iter().enumerate() {
                ensure_range(
                    &format!("{}[{i}]", join_path(&join_path(path, "net_arch"), name)),
                    w as f64,
                    Interval::closed(1.0, 65536.0),
                )?;
            }
        }
        self.features.validate(&join_path(path, "features"))?;
        ensure_range(
            &join_path(path, "log_std_init"),
            self.log_std_init,
            Interval::closed(-20.0, 5.0),
        )?;
        if let Some(h) = self.lstm_hidden_size {
            ensure_range(
                &join_path(path, "lstm_hidden_size"),
                h as f64,
                Interval::closed(1.0, 65536.0),
            )?;
        }
        match self.kind {
            PolicyKind::Mlp if self.shared_lstm || self.lstm_hidden_size.is_some() => {
                let key = if self.shared_lstm {
                    "shared_lstm"
                } else {
                    "lstm_hidden_size"
                };
                return Err(ConfigError::invalid(
                    join_path(path, key),
                    "applies to `type: lstm` only",
                ));
            }
            PolicyKind::Lstm if !self.net_arch.shared.is_empty() => {
                return Err(ConfigError::invalid(
                    join_path(path, "net_arch.shared"),
                    "must be empty with `type: lstm`: the LSTM output feeds the pi and vf MLPs directly (use shared_lstm to share the recurrent trunk)",
                ));
            }
            _ => {}
        }
        Ok(())
    }
}
