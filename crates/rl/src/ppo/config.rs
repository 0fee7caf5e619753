//! PPO hyperparameters (the `ppo` section of a training config).
//!
//! Keys carry Stable-Baselines3's names where SB3 has the setting, and every
//! stabiliser users reach for is a documented key of its own. Defaults are
//! SB3's PPO defaults. Every key is range-checked by [`Validate`], and unknown
//! keys are errors naming the closest valid key.

use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, join_path};
use serde::{Deserialize, Serialize};

use crate::common::schedule::Schedule;
use crate::policy::{PolicyConfig, PolicyKind};

/// How the value prediction is kept near the rollout's old prediction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueClip {
    /// No clipping.
    None,
    /// `V_clip = V_old + clamp(V - V_old, -c, c)` with `c = clip_range_vf` in
    /// return units (SB3, CleanRL, Sample Factory).
    Absolute,
    /// `V_clip = V_old + clamp(V - V_old, -c |V_old|, c |V_old|)`: the range
    /// is a fraction of the old value's magnitude, so it scales with returns.
    Relative,
    /// RLlib's `vf_clip_param`: each sample's value loss is capped at
    /// `clip_range_vf`; a capped sample gives no gradient.
    SquaredErrorCap,
}

/// How clipped and unclipped value losses combine for `absolute`/`relative`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueClipLoss {
    /// SB3: the loss of the clipped prediction only.
    Clipped,
    /// CleanRL / PPO2: the per-sample maximum of the clipped and unclipped
    /// losses (pessimistic).
    Max,
}

/// Per-sample value loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueLoss {
    /// `(V - R)^2` (SB3's `F.mse_loss`, no factor 1/2).
    #[serde(rename = "mse")]
    Mse,
    /// Huber with threshold `huber_delta` (PyTorch `HuberLoss`).
    #[serde(rename = "huber")]
    Huber,
    /// `0.5 mse + 0.5 huber` (the predator-prey server's critic loss).
    #[serde(rename = "mse+huber")]
    MseHuber,
}

/// How advantages are normalised when `normalize_advantage` is on (per minibatch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvantageNorm {
    /// `(A - mean) / (std + 1e-8)` (SB3).
    Standard,
    /// Like `standard` when `std > advantage_std_threshold`; otherwise only
    /// centred (`A - mean`), so near-constant advantages are not blown up
    /// into noise.
    Robust,
}

/// When the KL early stop is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KlCheck {
    /// SB3: after each minibatch's forward pass, before its optimiser step;
    /// when `approx_kl > kl_factor * target_kl`, that step is skipped and the
    /// update ends.
    Minibatch,
    /// After each epoch, on the mean approx KL of its minibatches; the epoch's
    /// steps are kept and no further epoch runs.
    Epoch,
}

/// The PPO section of a training config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoConfig {
    /// Learning rate of the actor (and trunk); a schedule.
    #[serde(default = "d::learning_rate")]
    pub learning_rate: Schedule,
    /// Learning rate of the critic (value MLP and head); `null` = `learning_rate`.
    #[serde(default)]
    pub critic_learning_rate: Option<Schedule>,
    /// Adam epsilon (SB3 uses 1e-5).
    #[serde(default = "d::adam_eps")]
    pub adam_eps: f64,
    /// Steps per environment per rollout.
    #[serde(default = "d::n_steps")]
    pub n_steps: usize,
    /// Minibatch size.
    #[serde(default = "d::batch_size")]
    pub batch_size: usize,
    /// Passes over each rollout.
    #[serde(default = "d::n_epochs")]
    pub n_epochs: usize,
    /// Discount factor.
    #[serde(default = "d::gamma")]
    pub gamma: f64,
    /// GAE lambda.
    #[serde(default = "d::gae_lambda")]
    pub gae_lambda: f64,
    /// Policy ratio clip epsilon; a schedule.
    #[serde(default = "d::clip_range")]
    pub clip_range: Schedule,
    /// Value clipping mode (see [`ValueClip`]).
    #[serde(default = "d::value_clip")]
    pub value_clip: ValueClip,
    /// Range of the value clip: return units (`absolute`), fraction of
    /// `|V_old|` (`relative`) or loss cap (`squared_error_cap`). Required
    /// exactly when `value_clip` is not `none`.
    #[serde(default)]
    pub clip_range_vf: Option<f64>,
    /// Clipped-loss combination for `absolute`/`relative` (see [`ValueClipLoss`]).
    #[serde(default = "d::value_clip_loss")]
    pub value_clip_loss: ValueClipLoss,
    /// Per-sample value loss.
    #[serde(default = "d::value_loss")]
    pub value_loss: ValueLoss,
    /// Huber threshold (return units) for `huber` and `mse+huber`.
    #[serde(default = "d::huber_delta")]
    pub huber_delta: f64,
    /// Entropy bonus coefficient; a schedule.
    #[serde(default = "d::ent_coef")]
    pub ent_coef: Schedule,
    /// Per-component entropy weights (Gaussian and categorical parts in the
    /// order of the action space's flat encoding): component `c`'s coefficient
    /// is `ent_coef * entropy_head_weights[c]`. Empty = all 1.
    #[serde(default)]
    pub entropy_head_weights: Vec<f64>,
    /// Value loss coefficient.
    #[serde(default = "d::vf_coef")]
    pub vf_coef: f64,
    /// Global gradient-norm clip.
    #[serde(default = "d::max_grad_norm")]
    pub max_grad_norm: f64,
    /// KL early-stop target; `null` disables the stop.
    #[serde(default)]
    pub target_kl: Option<f64>,
    /// When the KL stop is checked.
    #[serde(default = "d::kl_check")]
    pub kl_check: KlCheck,
    /// The stop fires when `approx_kl > kl_factor * target_kl` (SB3: 1.5).
    #[serde(default = "d::kl_factor")]
    pub kl_factor: f64,
    /// Normalise advantages per minibatch.
    #[serde(default = "d::normalize_advantage")]
    pub normalize_advantage: bool,
    /// Normalisation method when `normalize_advantage` is on.
    #[serde(default = "d::advantage_norm")]
    pub advantage_norm: AdvantageNorm,
    /// Standard deviation below which `robust` only centres.
    #[serde(default = "d::advantage_std_threshold")]
    pub advantage_std_threshold: f64,
    /// Value head predicts returns standardised by running statistics of the
    /// GAE returns (see [`crate::normalize_returns`]).
    #[serde(default)]
    pub normalize_returns: bool,
    /// Normalise observations with running statistics (saved with the model).
    #[serde(default)]
    pub normalize_observations: bool,
    /// Clip of normalised observations.
    #[serde(default = "d::clip_obs")]
    pub clip_obs: f64,
    /// Scale rewards by the running std of the discounted return.
    #[serde(default)]
    pub normalize_reward: bool,
    /// Clip of scaled rewards.
    #[serde(default = "d::clip_reward")]
    pub clip_reward: f64,
    /// Network and action distribution.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Truncated backpropagation-through-time length of a recurrent policy
    /// (`policy.type: lstm`): rollouts are cut into sequences of this many
    /// steps per env, and minibatches hold `batch_size / bptt_length` whole
    /// sequences. `null` = `n_steps` (one sequence per env per rollout).
    /// Must divide `n_steps` and `batch_size`.
    #[serde(default)]
    pub bptt_length: Option<usize>,
}

/// Defaults (Stable-Baselines3's PPO defaults where it has the key).
mod d {
    use super::*;
    pub fn learning_rate() -> Schedule {
        Schedule::Constant(3e-4)
    }
    pub fn adam_eps() -> f64 {
        1e-5
    }
    pub fn n_steps() -> usize {
        2048
    }
    pub fn batch_size() -> usize {
        64
    }
    pub fn n_epochs() -> usize {
        10
    }
    pub fn gamma() -> f64 {
        0.99
    }
    pub fn gae_lambda() -> f64 {
        0.95
    }
    pub fn clip_range() -> Schedule {
        Schedule::Constant(0.2)
    }
    pub fn value_clip() -> ValueClip {
        ValueClip::None
    }
    pub fn value_clip_loss() -> ValueClipLoss {
        ValueClipLoss::Clipped
    }
    pub fn value_loss() -> ValueLoss {
        ValueLoss::Mse
    }
    pub fn huber_delta() -> f64 {
        1.0
    }
    pub fn ent_coef() -> Schedule {
        Schedule::Constant(0.0)
    }
    pub fn vf_coef() -> f64 {
        0.5
    }
    pub fn max_grad_norm() -> f64 {
        0.5
    }
    pub fn kl_check() -> KlCheck {
        KlCheck::Minibatch
    }
    pub fn kl_factor() -> f64 {
        1.0
    }
    pub fn normalize_advantage() -> bool {
        true
    }
    pub fn advantage_norm() -> AdvantageNorm {
        AdvantageNorm::Standard
    }
    pub fn advantage_std_threshold() -> f64 {
        0.01
    }
    pub fn clip_obs() -> f64 {
        10.0
    }
    pub fn clip_reward() -> f64 {
        10.0
    }
}

impl Default for PpoConfig {
    fn default() -> Self {
        // An empty mapping takes every serde default.
        serde_json::from_value(serde_json::json!({})).expect("every PpoConfig key has a default")
    }
}

impl PpoConfig {
    /// Environment steps per rollout (`n_steps * n_envs`).
    pub fn rollout_size(&self, n_envs: usize) -> usize {
        self.n_steps * n_envs
    }

    /// Checks what depends on the run's env count: a minibatch must fit in a
    /// rollout. `path` is the `ppo` section's path.
    pub fn validate_for_envs(&self, path: &str, n_envs: usize) -> Result<(), ConfigError> {
        if self.batch_size > self.rollout_size(n_envs) {
            return Err(ConfigError::invalid(
                join_path(path, "batch_size"),
                format!(
                    "{} is larger than a rollout (n_steps {} x n_envs {n_envs} = {})",
                    self.batch_size,
                    self.n_steps,
                    self.rollout_size(n_envs)
                ),
            ));
        }
        Ok(())
    }

    /// The SB3 preset of the KL stop: per minibatch with factor 1.5.
    pub const SB3_KL_FACTOR: f64 = 1.5;

    /// Training sequence length of a recurrent policy: `bptt_length`, or
    /// `n_steps` when unset.
    pub fn sequence_length(&self) -> usize {
        self.bptt_length.unwrap_or(self.n_steps)
    }
}

impl Validate for PpoConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        let count = |k: &str, v: usize, hi: f64| {
            ensure_range(&p(k), v as f64, Interval::closed(1.0, hi)).map(|_| ())
        };
        let lr = Interval::closed(0.0, 1.0);
        self.learning_rate.validate_in(&p("learning_rate"), lr)?;
        if let Some(c) = &self.critic_learning_rate {
            c.validate_in(&p("critic_learning_rate"), lr)?;
        }
        ensure_range(
            &p("adam_eps"),
            self.adam_eps,
            Interval::open_closed(0.0, 1.0),
        )?;
        count("n_steps", self.n_steps, 1e7)?;
        count("batch_size", self.batch_size, 1e8)?;
        count("n_epochs", self.n_epochs, 10_000.0)?;
        ensure_range(&p("gamma"), self.gamma, Interval::closed(0.0, 1.0))?;
        ensure_range(
            &p("gae_lambda"),
            self.gae_lambda,
            Interval::closed(0.0, 1.0),
        )?;
        self.clip_range
            .validate_in(&p("clip_range"), Interval::closed(0.0, 10.0))?;
        match (self.value_clip, self.clip_range_vf) {
            (ValueClip::None, Some(_)) => {
                return Err(ConfigError::invalid(
                    p("clip_range_vf"),
                    "is set but value_clip is `none`; choose value_clip: absolute | relative | squared_error_cap",
                ));
            }
            (ValueClip::None, None) => {}
            (mode, None) => {
                return Err(ConfigError::invalid(
                    p("clip_range_vf"),
                    format!("value_clip `{mode:?}` needs clip_range_vf (its range)"),
                ));
            }
            (_, Some(c)) => {
                ensure_range(&p("clip_range_vf"), c, Interval::POSITIVE)?;
            }
        }
        ensure_range(&p("huber_delta"), self.huber_delta, Interval::POSITIVE)?;
        self.ent_coef
            .validate_in(&p("ent_coef"), Interval::closed(0.0, 10.0))?;
        for (i, &w) in self.entropy_head_weights.iter().enumerate() {
            ensure_range(
                &format!("{}[{i}]", p("entropy_head_weights")),
                w,
                Interval::closed(0.0, 1e6),
            )?;
        }
        ensure_range(&p("vf_coef"), self.vf_coef, Interval::closed(0.0, 1e6))?;
        ensure_range(&p("max_grad_norm"), self.max_grad_norm, Interval::POSITIVE)?;
        if let Some(t) = self.target_kl {
            ensure_range(&p("target_kl"), t, Interval::POSITIVE)?;
        }
        ensure_range(
            &p("kl_factor"),
            self.kl_factor,
            Interval::open_closed(0.0, 100.0),
        )?;
        ensure_range(
            &p("advantage_std_threshold"),
            self.advantage_std_threshold,
            Interval::NON_NEGATIVE,
        )?;
        ensure_range(&p("clip_obs"), self.clip_obs, Interval::POSITIVE)?;
        ensure_range(&p("clip_reward"), self.clip_reward, Interval::POSITIVE)?;
        self.policy.validate(&p("policy"))?;
        match (self.policy.kind, self.bptt_length) {
            (PolicyKind::Mlp, Some(_)) => {
                return Err(ConfigError::invalid(
                    p("bptt_length"),
                    "applies to recurrent policies only (policy.type: lstm)",
                ));
            }
            (PolicyKind::Mlp, None) => {}
            (PolicyKind::Lstm, _) => {
                let l = self.sequence_length();
                count("bptt_length", l, 1e7)?;
                for (key, v) in [("n_steps", self.n_steps), ("batch_size", self.batch_size)] {
                    if v % l != 0 {
                        return Err(ConfigError::invalid(
                            p(key),
                            format!(
                                "{v} is not a multiple of bptt_length {l} (minibatches hold whole sequences)"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlynr_env::config::from_yaml_str;

    #[test]
    fn defaults_are_sb3_and_valid() {
        let c = PpoConfig::default();
        c.validate("ppo").unwrap();
        assert_eq!((c.n_steps, c.batch_size, c.n_epochs), (2048, 64, 10));
        assert_eq!(c.clip_range, Schedule::Constant(0.2));
        assert_eq!(c.learning_rate, Schedule::Constant(3e-4));
        assert!(c.target_kl.is_none() && c.normalize_advantage);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = from_yaml_str::<PpoConfig>("n_step: 32\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("n_step") && e.contains("n_steps"), "{e}");
        let e = from_yaml_str::<PpoConfig>("gamma: 1.5\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("gamma") && e.contains("1.5"), "{e}");
        let e = from_yaml_str::<PpoConfig>("value_clip: absolute\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("clip_range_vf"), "{e}");
        let c = from_yaml_str::<PpoConfig>("n_steps: 8\nbatch_size: 64\n", "t").unwrap();
        let e = c.validate_for_envs("ppo", 4).unwrap_err().to_string();
        assert_eq!(
            e,
            "ppo.batch_size: 64 is larger than a rollout (n_steps 8 x n_envs 4 = 32)"
        );
        c.validate_for_envs("ppo", 8).unwrap();
        let e = from_yaml_str::<PpoConfig>("value_loss: l1\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mse+huber"), "{e}");
        let e = from_yaml_str::<PpoConfig>("policy: {activation: gelu}\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy.activation"), "{e}");
    }

    #[test]
    fn every_variant_parses() {
        let c: PpoConfig = from_yaml_str(
            "value_clip: relative\nclip_range_vf: 0.2\nvalue_clip_loss: max\nvalue_loss: mse+huber\n\
             kl_check: epoch\ntarget_kl: 0.015\nkl_factor: 1.5\nadvantage_norm: robust\n\
             learning_rate: {type: cosine, initial: 1.0e-3, final: 1.0e-5}\n\
             critic_learning_rate: 3.0e-3\nent_coef: {type: step, initial: 0.01, factor: 0.5, milestones: [0.5]}\n\
             policy: {net_arch: {pi: [128, 128], vf: [128, 128]}, activation: relu, squash: tanh, log_std_init: -0.5}\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.value_clip, ValueClip::Relative);
        assert_eq!(c.value_loss, ValueLoss::MseHuber);
        assert_eq!(c.kl_check, KlCheck::Epoch);
        assert_eq!(c.critic_learning_rate, Some(Schedule::Constant(3e-3)));
        let back: PpoConfig = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
