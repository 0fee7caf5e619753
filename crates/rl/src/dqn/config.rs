//! The `dqn` section: Stable-Baselines3's DQN keys (same names, same
//! defaults) plus the Rainbow switches (double Q, n-step returns, prioritised
//! replay, a distributional head; dueling heads are `policy.dueling`).

use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, join_path};
use serde::{Deserialize, Serialize};

use crate::common::schedule::Schedule;
use crate::policy::{ImplicitQuantiles, QNetConfig, QOutputs};

mod d {
    use crate::common::schedule::Schedule;
    pub fn learning_rate() -> Schedule {
        Schedule::Constant(1e-4)
    }
    pub fn buffer_size() -> usize {
        1_000_000
    }
    pub fn learning_starts() -> u64 {
        100
    }
    pub fn batch_size() -> usize {
        32
    }
    pub fn tau() -> f64 {
        1.0
    }
    pub fn gamma() -> f64 {
        0.99
    }
    pub fn train_freq() -> u64 {
        4
    }
    pub fn gradient_steps() -> u64 {
        1
    }
    pub fn target_update_interval() -> u64 {
        10_000
    }
    pub fn exploration_fraction() -> f64 {
        0.1
    }
    pub fn exploration_initial_eps() -> f64 {
        1.0
    }
    pub fn exploration_final_eps() -> f64 {
        0.05
    }
    pub fn max_grad_norm() -> f64 {
        10.0
    }
    pub fn adam_eps() -> f64 {
        1e-8
    }
    pub fn n_step() -> usize {
        1
    }
    pub fn huber_delta() -> f64 {
        1.0
    }
    pub fn weight_sync_interval() -> u64 {
        10
    }
}

/// What the network learns of the return: its expectation (the default,
/// `null`) or its distribution.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Distribution {
    /// QR-DQN (Dabney et al., 2018): `n_quantiles` fixed quantiles of the
    /// return per action, at the midpoints `(2i + 1) / 2N`, fitted with the
    /// quantile Huber loss of threshold `kappa`.
    Qr { n_quantiles: usize, kappa: f64 },
    /// IQN (Dabney et al., 2018): quantiles at fractions sampled uniformly
    /// for every sample, `n_quantiles` (N) for the online network and
    /// `n_target_quantiles` (N') for the target; actions are chosen on the
    /// mean of `n_policy_quantiles` (K) midpoint fractions. The fractions
    /// enter through a cosine embedding of `cosine_dim` functions after the
    /// trunk, followed by `head_arch` hidden layers.
    Iqn {
        n_quantiles: usize,
        n_target_quantiles: usize,
        n_policy_quantiles: usize,
        cosine_dim: usize,
        head_arch: Vec<usize>,
        kappa: f64,
    },
}

/// [`Distribution`] as read, keyed by its `type`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum DistributionSpec {
    Qr {
        #[serde(default = "dist::n_quantiles")]
        n_quantiles: usize,
        #[serde(default = "dist::kappa")]
        kappa: f64,
    },
    Iqn {
        #[serde(default = "dist::iqn_quantiles")]
        n_quantiles: usize,
        #[serde(default = "dist::iqn_quantiles")]
        n_target_quantiles: usize,
        #[serde(default = "dist::iqn_policy_quantiles")]
        n_policy_quantiles: usize,
        #[serde(default = "dist::cosine_dim")]
        cosine_dim: usize,
        #[serde(default)]
        head_arch: Vec<usize>,
        #[serde(default = "dist::kappa")]
        kappa: f64,
    },
}

impl<'de> Deserialize<'de> for Distribution {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let spec: DistributionSpec =
            hlynr_env::config::from_typed_mapping(value, "a return distribution", &["qr", "iqn"])?;
        Ok(match spec {
            DistributionSpec::Qr { n_quantiles, kappa } => Distribution::Qr { n_quantiles, kappa },
            DistributionSpec::Iqn {
                n_quantiles,
                n_target_quantiles,
                n_policy_quantiles,
                cosine_dim,
                head_arch,
                kappa,
            } => Distribution::Iqn {
                n_quantiles,
                n_target_quantiles,
                n_policy_quantiles,
                cosine_dim,
                head_arch,
                kappa,
            },
        })
    }
}

impl Distribution {
    /// What the network outputs per action.
    pub fn outputs(&self) -> QOutputs {
        match self {
            Distribution::Qr { n_quantiles, .. } => QOutputs::Quantiles(*n_quantiles),
            Distribution::Iqn {
                n_policy_quantiles,
                cosine_dim,
                head_arch,
                ..
            } => QOutputs::Implicit(ImplicitQuantiles {
                cosine_dim: *cosine_dim,
                head_arch: head_arch.clone(),
                policy_quantiles: *n_policy_quantiles,
            }),
        }
    }

    /// The quantile Huber loss threshold.
    pub fn kappa(&self) -> f64 {
        match self {
            Distribution::Qr { kappa, .. } | Distribution::Iqn { kappa, .. } => *kappa,
        }
    }
}

/// The optimiser.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    /// Adam (weight decay as an L2 term).
    #[default]
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
}

mod dist {
    pub fn n_quantiles() -> usize {
        50
    }
    pub fn kappa() -> f64 {
        1.0
    }
    /// Dopamine's IQN: N = N' = 64, K = 32, 64 cosine functions.
    pub fn iqn_quantiles() -> usize {
        64
    }
    pub fn iqn_policy_quantiles() -> usize {
        32
    }
    pub fn cosine_dim() -> usize {
        64
    }
}

/// How epsilon falls from `exploration_initial_eps` to
/// `exploration_final_eps`. Either way it is `exploration_final_eps` from
/// `exploration_fraction` of the run on (the cut-off).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExplorationDecay {
    /// Linearly over `exploration_fraction` of the run's env steps (SB3).
    #[default]
    Linear,
    /// `max(final, initial * rate^n)`, `n` counting env steps or finished
    /// episodes (`unit`).
    Exponential { rate: f64, unit: DecayUnit },
}

/// [`ExplorationDecay`] as read, keyed by its `type`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ExplorationDecaySpec {
    Linear {},
    Exponential {
        rate: f64,
        #[serde(default)]
        unit: DecayUnit,
    },
}

impl<'de> Deserialize<'de> for ExplorationDecay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let spec: ExplorationDecaySpec = hlynr_env::config::from_typed_mapping(
            value,
            "an epsilon decay",
            &["linear", "exponential"],
        )?;
        Ok(match spec {
            ExplorationDecaySpec::Linear {} => ExplorationDecay::Linear,
            ExplorationDecaySpec::Exponential { rate, unit } => {
                ExplorationDecay::Exponential { rate, unit }
            }
        })
    }
}

/// What an exponential epsilon decay counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayUnit {
    /// Env steps, summed over envs.
    #[default]
    Steps,
    /// Finished episodes (the rate then depends on how long episodes last).
    Episodes,
}

/// Prioritised experience replay (Schaul et al., 2016), proportional variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrioritizedReplay {
    /// Priority exponent: 0 is uniform sampling.
    #[serde(default = "per::alpha")]
    pub alpha: f64,
    /// Importance-sampling exponent at the start, annealed linearly to 1 over
    /// `total_timesteps` env steps.
    #[serde(default = "per::beta0")]
    pub beta0: f64,
    /// Added to `|TD error|` so that no transition's priority is 0.
    #[serde(default = "per::eps")]
    pub eps: f64,
}

mod per {
    pub fn alpha() -> f64 {
        0.6
    }
    pub fn beta0() -> f64 {
        0.4
    }
    pub fn eps() -> f64 {
        1e-6
    }
}

/// DQN hyperparameters (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DqnConfig {
    /// Adam learning rate (a schedule over training progress).
    #[serde(default = "d::learning_rate")]
    pub learning_rate: Schedule,
    /// Transitions the replay buffer holds.
    #[serde(default = "d::buffer_size")]
    pub buffer_size: usize,
    /// Env steps of uniformly random actions before learning starts.
    #[serde(default = "d::learning_starts")]
    pub learning_starts: u64,
    /// Transitions per gradient step.
    #[serde(default = "d::batch_size")]
    pub batch_size: usize,
    /// Target-network update coefficient: 1 copies (hard update), below 1
    /// moves the target by `tau` towards the online network (soft).
    #[serde(default = "d::tau")]
    pub tau: f64,
    /// Discount factor.
    #[serde(default = "d::gamma")]
    pub gamma: f64,
    /// Vector steps collected between learning phases.
    #[serde(default = "d::train_freq")]
    pub train_freq: u64,
    /// Gradient steps per learning phase.
    #[serde(default = "d::gradient_steps")]
    pub gradient_steps: u64,
    /// Env steps (all envs together) between target updates.
    #[serde(default = "d::target_update_interval")]
    pub target_update_interval: u64,
    /// Fraction of `total_timesteps` over which epsilon falls linearly.
    #[serde(default = "d::exploration_fraction")]
    pub exploration_fraction: f64,
    /// Epsilon at the start.
    #[serde(default = "d::exploration_initial_eps")]
    pub exploration_initial_eps: f64,
    /// Epsilon from `exploration_fraction` on.
    #[serde(default = "d::exploration_final_eps")]
    pub exploration_final_eps: f64,
    /// How epsilon falls; default linear.
    #[serde(default)]
    pub exploration_decay: ExplorationDecay,
    /// `adam` (default) or `adamw`.
    #[serde(default)]
    pub optimizer: Optimizer,
    /// Weight decay (L2 for Adam, decoupled for AdamW); default 0.
    #[serde(default)]
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    #[serde(default = "d::max_grad_norm")]
    pub max_grad_norm: f64,
    /// Adam's epsilon.
    #[serde(default = "d::adam_eps")]
    pub adam_eps: f64,
    /// Huber threshold of the TD loss (SB3's `smooth_l1_loss`: 1).
    #[serde(default = "d::huber_delta")]
    pub huber_delta: f64,
    /// Double Q-learning: the online network picks the next action, the
    /// target network values it (van Hasselt et al., 2016).
    #[serde(default)]
    pub double_q: bool,
    /// Steps summed into each return before bootstrapping.
    #[serde(default = "d::n_step")]
    pub n_step: usize,
    /// Prioritised replay; `null` (default) samples uniformly.
    #[serde(default)]
    pub prioritized_replay: Option<PrioritizedReplay>,
    /// A distributional network; `null` (default) learns expected returns.
    #[serde(default)]
    pub distribution: Option<Distribution>,
    /// The Q-network.
    #[serde(default)]
    pub policy: QNetConfig,
    /// Acting on its own thread, apart from learning (for envs that run in
    /// real time); `null` (default) acts and learns in turn on one thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoupled_acting: Option<DecoupledActing>,
}

/// Acting decoupled from learning: an actor thread steps the envs with its
/// own copy of the Q-network, refreshed from the learner every
/// `weight_sync_interval` gradient steps, so that no gradient step ever
/// delays an action. The learner takes `gradient_steps` per `train_freq`
/// vector steps it receives, waiting when ahead of the actor and falling
/// behind (fewer gradient steps per env step) when slower; never the actor.
/// Such runs are not bitwise reproducible (which weights an action is
/// chosen with depends on timing), and a resumed one starts fresh episodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoupledActing {
    /// Gradient steps between fresh weights for the actor.
    #[serde(default = "d::weight_sync_interval")]
    pub weight_sync_interval: u64,
}

impl Default for DqnConfig {
    fn default() -> Self {
        hlynr_env::config::from_value(&serde_json::json!({})).expect("every DQN key has a default")
    }
}

impl Validate for DqnConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        self.learning_rate
            .validate_in(&p("learning_rate"), Interval::closed(0.0, 10.0))?;
        let counts = [
            ("buffer_size", self.buffer_size as f64, 1e10),
            ("batch_size", self.batch_size as f64, 1e6),
            ("train_freq", self.train_freq as f64, 1e9),
            ("gradient_steps", self.gradient_steps as f64, 1e6),
            (
                "target_update_interval",
                self.target_update_interval as f64,
                1e13,
            ),
            ("n_step", self.n_step as f64, 1000.0),
        ];
        for (key, v, max) in counts {
            ensure_range(&p(key), v, Interval::closed(1.0, max))?;
        }
        ensure_range(
            &p("learning_starts"),
            self.learning_starts as f64,
            Interval::closed(0.0, 1e13),
        )?;
        let unit = Interval::closed(0.0, 1.0);
        for (key, v) in [
            ("gamma", self.gamma),
            ("exploration_fraction", self.exploration_fraction),
            ("exploration_initial_eps", self.exploration_initial_eps),
            ("exploration_final_eps", self.exploration_final_eps),
        ] {
            ensure_range(&p(key), v, unit)?;
        }
        ensure_range(&p("tau"), self.tau, Interval::open_closed(0.0, 1.0))?;
        ensure_range(
            &p("max_grad_norm"),
            self.max_grad_norm,
            Interval::open_closed(0.0, 1e9),
        )?;
        ensure_range(
            &p("adam_eps"),
            self.adam_eps,
            Interval::open_closed(0.0, 1.0),
        )?;
        ensure_range(
            &p("huber_delta"),
            self.huber_delta,
            Interval::open_closed(0.0, 1e9),
        )?;
        if self.batch_size > self.buffer_size {
            return Err(ConfigError::invalid(
                p("batch_size"),
                format!(
                    "{} is larger than buffer_size {}",
                    self.batch_size, self.buffer_size
                ),
            ));
        }
        if let Some(per) = &self.prioritized_replay {
            let q = |k: &str| join_path(&p("prioritized_replay"), k);
            ensure_range(&q("alpha"), per.alpha, Interval::closed(0.0, 10.0))?;
            ensure_range(&q("beta0"), per.beta0, unit)?;
            ensure_range(&q("eps"), per.eps, Interval::open_closed(0.0, 1.0))?;
        }
        if let ExplorationDecay::Exponential { rate, .. } = &self.exploration_decay {
            ensure_range(
                &join_path(&p("exploration_decay"), "rate"),
                *rate,
                Interval::open_closed(0.0, 1.0),
            )?;
        }
        ensure_range(
            &p("weight_decay"),
            self.weight_decay,
            Interval::closed(0.0, 10.0),
        )?;
        if let Some(dist) = &self.distribution {
            let q = |k: &str| join_path(&p("distribution"), k);
            let counts = match dist {
                Distribution::Qr { n_quantiles, .. } => vec![("n_quantiles", *n_quantiles)],
                Distribution::Iqn {
                    n_quantiles,
                    n_target_quantiles,
                    n_policy_quantiles,
                    cosine_dim,
                    head_arch,
                    ..
                } => {
                    for (i, &w) in head_arch.iter().enumerate() {
                        ensure_range(
                            &format!("{}[{i}]", q("head_arch")),
                            w as f64,
                            Interval::closed(1.0, 65536.0),
                        )?;
                    }
                    vec![
                        ("n_quantiles", *n_quantiles),
                        ("n_target_quantiles", *n_target_quantiles),
                        ("n_policy_quantiles", *n_policy_quantiles),
                        ("cosine_dim", *cosine_dim),
                    ]
                }
            };
            for (key, v) in counts {
                ensure_range(&q(key), v as f64, Interval::closed(1.0, 1024.0))?;
            }
            ensure_range(&q("kappa"), dist.kappa(), Interval::closed(0.0, 1e6))?;
        }
        if let Some(acting) = &self.decoupled_acting {
            ensure_range(
                &join_path(&p("decoupled_acting"), "weight_sync_interval"),
                acting.weight_sync_interval as f64,
                Interval::closed(1.0, 1e9),
            )?;
        }
        self.policy.validate(&p("policy"))
    }
}
