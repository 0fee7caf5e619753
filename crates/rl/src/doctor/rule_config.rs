//! The thresholds of each rule (one struct per `doctor.<rule>` section),
//! with the exact definition of the rule's condition. Range checks live with
//! [`super::DoctorConfig`]'s validation.

use serde::{Deserialize, Serialize};

use super::DoctorAction;

/// `doctor.value_loss_explosion`: the value loss grows faster than the
/// return scale can explain.
///
/// The relative value loss `r` is `train/value_loss / train/value_target_std^2`
/// when the trainer logs the spread of the critic's targets (PPO does: it is
/// in the critic's units whatever normalisation is on, and 1 means "no better
/// than predicting the mean"); else `train/value_loss` itself when
/// `train/return_std` is logged (standardised returns); and otherwise
/// `train/value_loss / S^2` with `S` the largest `|rollout/ep_rew_mean|` seen
/// so far (at least 1; the rule waits for the first one). The rule fires when
/// `r` is above its threshold and at least `rise_factor` times its value
/// `window` updates earlier. Dividing by the return scale keeps a value loss
/// that grows because returns grow (a healthy learning curve) from firing; the
/// largest scale so far, not the current one, keeps a return passing through
/// zero from looking like an explosion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueLossExplosionConfig {
    /// Updates over which the rise is measured.
    pub window: u32,
    /// Required growth of `r` over `window` updates.
    pub rise_factor: f64,
    /// Consecutive updates the condition must hold (a critic catching up
    /// with a fast-improving policy spikes for an update or two).
    pub sustain: u32,
    /// Threshold on `r` relative to the targets' spread (`train/value_target_std`
    /// or `train/return_std` logged).
    pub normalized_ratio_above: f64,
    /// Threshold on `r = value_loss / S^2` for raw returns (0.005: the RMS value
    /// error is about 7% of the episode-return scale).
    pub raw_ratio_above: f64,
    /// Updates whose critic targets vary by less than this fraction of their
    /// mean magnitude are skipped (a ratio to a near-zero spread is noise).
    pub min_relative_target_std: f64,
    /// Default `warn`: large value losses also occur while a critic catches up
    /// with a fast-improving policy.
    pub action: DoctorAction,
}

impl Default for ValueLossExplosionConfig {
    fn default() -> Self {
        ValueLossExplosionConfig {
            window: 5,
            rise_factor: 2.0,
            sustain: 3,
            normalized_ratio_above: 1.0,
            raw_ratio_above: 0.005,
            min_relative_target_std: 0.01,
            action: DoctorAction::Warn,
        }
    }
}

/// `doctor.value_loss_dominates`: the value loss dwarfs the policy loss.
///
/// `vf_coef` is not logged, so the rule compares the raw losses:
/// `ratio = train/value_loss / max(|train/policy_gradient_loss|, pg_loss_floor)`.
/// It fires when `ratio > ratio_above` and `value_loss > min_value_loss` for
/// `window` consecutive updates. With a global gradient-norm clip, a value
/// gradient that large uses up the clip budget and shrinks the policy's share
/// of every step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueLossDominatesConfig {
    /// Consecutive updates the condition must hold.
    pub window: u32,
    /// Threshold on the ratio (100: the reports of value losses 100x the
    /// policy loss).
    pub ratio_above: f64,
    /// Smallest policy-loss magnitude used in the ratio (the mean clipped
    /// surrogate of normalised advantages hovers around 0).
    pub pg_loss_floor: f64,
    /// The value loss must also exceed this, in loss units: below it the
    /// value gradient of a small task rarely swamps a clipped update, however
    /// small the policy loss is.
    pub min_value_loss: f64,
    /// Default `warn`: a reward-scale issue, not a failure by itself.
    pub action: DoctorAction,
}

impl Default for ValueLossDominatesConfig {
    fn default() -> Self {
        ValueLossDominatesConfig {
            window: 20,
            ratio_above: 100.0,
            pg_loss_floor: 0.01,
            min_value_loss: 100.0,
            action: DoctorAction::Warn,
        }
    }
}

/// `doctor.explained_variance_negative`: `train/explained_variance` below
/// `below` for `window` consecutive updates, ignoring the first `warmup`
/// updates that log it (a fresh critic starts near or below 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExplainedVarianceConfig {
    /// Consecutive updates the condition must hold.
    pub window: u32,
    /// Updates ignored at the start.
    pub warmup: u32,
    /// Threshold on the explained variance.
    pub below: f64,
    /// Updates whose critic targets vary by less than this fraction of their
    /// mean magnitude (`train/value_target_std < x * max(|mean|, 1)`) are
    /// skipped: explained variance is meaningless on near-constant targets.
    pub min_relative_target_std: f64,
    /// Default `warn`.
    pub action: DoctorAction,
}

impl Default for ExplainedVarianceConfig {
    fn default() -> Self {
        ExplainedVarianceConfig {
            window: 5,
            warmup: 10,
            below: 0.0,
            min_relative_target_std: 0.01,
            action: DoctorAction::Warn,
        }
    }
}

/// `doctor.frozen_policy`: `train/approx_kl < kl_below` and
/// `train/clip_fraction <= clip_fraction_at_most` for `window` consecutive
/// updates: the policy no longer moves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrozenPolicyConfig {
    /// Consecutive updates the condition must hold.
    pub window: u32,
    /// KL threshold (healthy PPO updates sit around 1e-3 to 2e-2).
    pub kl_below: f64,
    /// Clip-fraction threshold.
    pub clip_fraction_at_most: f64,
    /// Updates whose learning rate is below this fraction of the largest seen
    /// are ignored: a schedule that anneals to zero freezes the policy on
    /// purpose.
    pub annealed_lr_fraction: f64,
    /// Default `warn`.
    pub action: DoctorAction,
}

impl Default for FrozenPolicyConfig {
    fn default() -> Self {
        FrozenPolicyConfig {
            window: 5,
            kl_below: 1e-5,
            clip_fraction_at_most: 1e-6,
            annealed_lr_fraction: 0.05,
            action: DoctorAction::Warn,
        }
    }
}

/// `doctor.kl_blowup`: `train/approx_kl > kl_above` or `train/clip_fraction >
/// clip_fraction_above` for `window` consecutive updates: each update moves
/// the policy far outside the trust region (a too-high learning rate or too
/// many epochs). Healthy PPO clips 5-20% of samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KlBlowupConfig {
    /// Consecutive updates the condition must hold.
    pub window: u32,
    /// KL threshold.
    pub kl_above: f64,
    /// Clip-fraction threshold.
    pub clip_fraction_above: f64,
    /// Default `warn`.
    pub action: DoctorAction,
}

impl Default for KlBlowupConfig {
    fn default() -> Self {
        KlBlowupConfig {
            window: 5,
            kl_above: 0.1,
            clip_fraction_above: 0.3,
            action: DoctorAction::Warn,
        }
    }
}

/// `doctor.entropy_collapse`: the policy entropy `H = -train/entropy_loss`
/// (nats) fell by more than `drop_nats` below its highest value of the last
/// `window` updates, or below `floor` when one is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntropyCollapseConfig {
    /// Updates over which the drop is measured.
    pub window: u32,
    /// Largest allowed drop within `window` updates, nats.
    pub drop_nats: f64,
    /// Optional absolute floor, nats (`null`: none; Gaussian entropies can be
    /// negative, so no floor suits every action space).
    pub floor: Option<f64>,
    /// Default `warn`.
    pub action: DoctorAction,
}

impl Default for EntropyCollapseConfig {
    fn default() -> Self {
        EntropyCollapseConfig {
            window: 10,
            drop_nats: 0.5,
            floor: None,
            action: DoctorAction::Warn,
        }
    }
}

/// `doctor.entropy_stuck`: over the last `window` updates the entropy did not
/// decrease by at least `min_decrease` nats, while neither the return nor the
/// success rate improved. Improvement is the least-squares fitted change over
/// the window: the return must rise by `min_return_gain` times its scale
/// (`max(|mean return|, 1)`), the success rate by `min_success_gain`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntropyStuckConfig {
    /// Updates in the window.
    pub window: u32,
    /// Smallest entropy decrease over the window, nats.
    pub min_decrease: f64,
    /// Smallest fitted relative return gain that counts as improvement.
    pub min_return_gain: f64,
    /// Smallest fitted success-rate gain that counts as improvement.
    pub min_success_gain: f64,
    /// Default `warn`.
    pub action: DoctorAction,
}

impl Default for EntropyStuckConfig {
    fn default() -> Self {
        EntropyStuckConfig {
            window: 50,
            min_decrease: 0.01,
            min_return_gain: 0.05,
            min_success_gain: 0.02,
            action: DoctorAction::Warn,
        }
    }
}

/// `doctor.success_collapse`: the success rate (`eval/success_rate`, or
/// `rollout/success_rate` while no evaluation has been logged) is below
/// `fraction` of its best for `window` consecutive observations, the best
/// having reached `min_best`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SuccessCollapseConfig {
    /// Consecutive observations the condition must hold.
    pub window: u32,
    /// Fraction of the best success rate.
    pub fraction: f64,
    /// The best must have reached this before a collapse counts.
    pub min_best: f64,
    /// Default `rollback`: the best checkpoint holds the policy the user
    /// wants, and training on from a collapsed policy rarely recovers.
    pub action: DoctorAction,
}

impl Default for SuccessCollapseConfig {
    fn default() -> Self {
        SuccessCollapseConfig {
            window: 3,
            fraction: 0.5,
            min_best: 0.2,
            action: DoctorAction::Rollback,
        }
    }
}

/// `doctor.reward_farming`: over the last `window` updates the return rose
/// while the success rate fell. Both trends are least-squares fits against
/// the update index; the fitted return change over the window must exceed
/// `min_return_rise` times the return scale (`max(|mean return|, 1)`), the
/// fitted success change must be below `-min_success_drop`, and both series
/// must correlate with time at `|r| >= min_correlation`, so noise does not fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardFarmingConfig {
    /// Updates in the window.
    pub window: u32,
    /// Smallest fitted relative return rise.
    pub min_return_rise: f64,
    /// Smallest fitted success-rate drop (absolute).
    pub min_success_drop: f64,
    /// Smallest |correlation| of each series with time.
    pub min_correlation: f64,
    /// Default `warn`: the reward needs fixing, which no rollback does.
    pub action: DoctorAction,
}

impl Default for RewardFarmingConfig {
    fn default() -> Self {
        RewardFarmingConfig {
            window: 20,
            min_return_rise: 0.1,
            min_success_drop: 0.05,
            min_correlation: 0.5,
            action: DoctorAction::Warn,
        }
    }
}

/// `doctor.q_divergence` (DQN family: `train/q_mean`, `train/q_max`): a Q
/// estimate beyond the largest possible return `max_abs_reward / (1 - gamma)`
/// (checked only when both are set), or a sustained drift: over `window`
/// updates `train/q_mean` moved in one direction in at least
/// `monotone_fraction` of the steps and its magnitude changed by more than
/// `drift_factor * max(|q at the window start|, q_scale_floor)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QDivergenceConfig {
    /// Updates over which drift is measured.
    pub window: u32,
    /// Largest per-step reward magnitude (`null`: bound check off).
    pub max_abs_reward: Option<f64>,
    /// Discount factor of the bound (`null`: bound check off).
    pub gamma: Option<f64>,
    /// Relative change over the window that counts as drift.
    pub drift_factor: f64,
    /// Smallest Q scale used in the relative change.
    pub q_scale_floor: f64,
    /// Fraction of steps that must move in the drift direction.
    pub monotone_fraction: f64,
    /// Default `warn`.
    pub action: DoctorAction,
}

impl Default for QDivergenceConfig {
    fn default() -> Self {
        QDivergenceConfig {
            window: 10,
            max_abs_reward: None,
            gamma: None,
            drift_factor: 1.0,
            q_scale_floor: 10.0,
            monotone_fraction: 0.8,
            action: DoctorAction::Warn,
        }
    }
}

/// `doctor.nonfinite`: any logged metric is NaN or infinite, or
/// `train/nonfinite_skip` was set on `skips_in_a_row` consecutive updates (a
/// single skip is already recovered by the update itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NonfiniteConfig {
    /// Consecutive skipped updates that fire the rule.
    pub skips_in_a_row: u32,
    /// Default `rollback`: the last good checkpoint with a smaller learning
    /// rate is the standard cure, and continuing from non-finite numbers
    /// only wastes compute.
    pub action: DoctorAction,
}

impl Default for NonfiniteConfig {
    fn default() -> Self {
        NonfiniteConfig {
            skips_in_a_row: 3,
            action: DoctorAction::Rollback,
        }
    }
}

/// `doctor.grad_norm_spike`: `train/grad_norm` above `factor` times the median
/// of its previous `window` values (once `min_history` values are known).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GradNormSpikeConfig {
    /// Values in the running median.
    pub window: u32,
    /// Values needed before the rule can fire.
    pub min_history: u32,
    /// Spike factor over the median.
    pub factor: f64,
    /// Default `warn`.
    pub action: DoctorAction,
}

impl Default for GradNormSpikeConfig {
    fn default() -> Self {
        GradNormSpikeConfig {
            window: 20,
            min_history: 5,
            factor: 10.0,
            action: DoctorAction::Warn,
        }
    }
}

/// `doctor.lstm_saturation`: `train/lstm_saturation` (fraction of saturated
/// gate and cell activations, 0..1, logged by recurrent policies) above
/// `above` for `window` consecutive updates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LstmSaturationConfig {
    /// Consecutive updates the condition must hold.
    pub window: u32,
    /// Saturated fraction threshold.
    pub above: f64,
    /// Default `warn`.
    pub action: DoctorAction,
}

impl Default for LstmSaturationConfig {
    fn default() -> Self {
        LstmSaturationConfig {
            window: 5,
            above: 0.5,
            action: DoctorAction::Warn,
        }
    }
}
