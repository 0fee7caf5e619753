//! The rules: each reads the keys it needs from one record, updates its own
//! state, and raises at most one finding per episode of its condition (see
//! [`Latch`]). Thresholds and the exact definitions are documented on the
//! rule's config struct in [`super::config`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod critic;
mod outcome;
mod policy;

use critic::{ExplainedVarianceState, ValueLossExplosionState, value_loss_dominates};
use outcome::{NonfiniteState, QDivergenceState, RewardFarmingState, SuccessCollapseState};
use policy::{
    EntropyCollapseState, EntropyStuckState, FrozenPolicyState, GradNormSpikeState, frozen_policy,
    kl_blowup, lstm_saturation,
};

use super::config::DoctorConfig;
use super::stats::Latch;
use super::{DoctorAction, Finding, Severity};
use crate::metrics::Metrics;

/// Every rule's stable name, in the order findings of one record are listed.
pub const RULE_NAMES: [&str; 13] = [
    NONFINITE,
    VALUE_LOSS_EXPLOSION,
    VALUE_LOSS_DOMINATES,
    EXPLAINED_VARIANCE_NEGATIVE,
    FROZEN_POLICY,
    KL_BLOWUP,
    ENTROPY_COLLAPSE,
    ENTROPY_STUCK,
    SUCCESS_COLLAPSE,
    REWARD_FARMING,
    Q_DIVERGENCE,
    GRAD_NORM_SPIKE,
    LSTM_SATURATION,
];

const NONFINITE: &str = "nonfinite";
const VALUE_LOSS_EXPLOSION: &str = "value_loss_explosion";
const VALUE_LOSS_DOMINATES: &str = "value_loss_dominates";
const EXPLAINED_VARIANCE_NEGATIVE: &str = "explained_variance_negative";
const FROZEN_POLICY: &str = "frozen_policy";
const KL_BLOWUP: &str = "kl_blowup";
const ENTROPY_COLLAPSE: &str = "entropy_collapse";
const ENTROPY_STUCK: &str = "entropy_stuck";
const SUCCESS_COLLAPSE: &str = "success_collapse";
const REWARD_FARMING: &str = "reward_farming";
const Q_DIVERGENCE: &str = "q_divergence";
const GRAD_NORM_SPIKE: &str = "grad_norm_spike";
const LSTM_SATURATION: &str = "lstm_saturation";

/// Keys the rules read beyond [`keys`].
pub mod extra_keys {
    /// Pre-clip gradient norm of the update.
    pub const GRAD_NORM: &str = "train/grad_norm";
    /// Standard deviation of the returns the critic is standardised by.
    pub const RETURN_STD: &str = "train/return_std";
    /// Standard deviation of the critic's targets in its own units.
    pub const VALUE_TARGET_STD: &str = "train/value_target_std";
    /// Mean of the critic's targets in its own units.
    pub const VALUE_TARGET_MEAN: &str = "train/value_target_mean";
    /// 1 when the update was abandoned because of non-finite numbers.
    pub const NONFINITE_SKIP: &str = "train/nonfinite_skip";
    /// Abandoned updates over the run.
    pub const NONFINITE_SKIPS: &str = "train/nonfinite_skips";
    /// NaN or infinite observation values in the update's rollout.
    pub const NONFINITE_OBS: &str = "rollout/nonfinite_obs";
    /// Mean Q estimate (DQN family).
    pub const Q_MEAN: &str = "train/q_mean";
    /// Largest Q estimate (DQN family).
    pub const Q_MAX: &str = "train/q_max";
    /// Fraction of saturated LSTM gate and cell activations.
    pub const LSTM_SATURATION: &str = "train/lstm_saturation";
}

/// A finite value of `key`, if the record has one. Non-finite values are the
/// `nonfinite` rule's business; to every other rule they are absent.
fn get(values: &Metrics, key: &str) -> Option<f64> {
    values.get(key).copied().filter(|v| v.is_finite())
}

/// Builds findings; `rule` and `action` come from the rule that fired.
struct Raise<'a> {
    step: u64,
    out: &'a mut Vec<Finding>,
}

impl Raise<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        rule: &str,
        severity: Severity,
        action: DoctorAction,
        evidence: &[(&str, f64)],
        diagnosis: String,
        suggestion: &str,
    ) {
        self.out.push(Finding {
            rule: rule.to_string(),
            severity,
            step: self.step,
            evidence: evidence
                .iter()
                .map(|&(k, v)| (k.to_string(), v))
                .collect::<BTreeMap<_, _>>(),
            diagnosis,
            suggestion: suggestion.to_string(),
            action,
        });
    }
}

/// The state of every rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesState {
    nonfinite: NonfiniteState,
    value_loss_explosion: ValueLossExplosionState,
    value_loss_dominates: Latch,
    explained_variance_negative: ExplainedVarianceState,
    frozen_policy: FrozenPolicyState,
    kl_blowup: Latch,
    entropy_collapse: EntropyCollapseState,
    entropy_stuck: EntropyStuckState,
    success_collapse: SuccessCollapseState,
    reward_farming: RewardFarmingState,
    q_divergence: QDivergenceState,
    grad_norm_spike: GradNormSpikeState,
    lstm_saturation: Latch,
}

impl RulesState {
    /// Runs every rule on one record.
    pub fn observe(&mut self, c: &DoctorConfig, step: u64, v: &Metrics) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut r = Raise {
            step,
            out: &mut out,
        };
        self.nonfinite.observe(c, v, &mut r);
        self.value_loss_explosion.observe(c, v, &mut r);
        value_loss_dominates(&mut self.value_loss_dominates, c, v, &mut r);
        self.explained_variance_negative.observe(c, v, &mut r);
        frozen_policy(&mut self.frozen_policy, c, v, &mut r);
        kl_blowup(&mut self.kl_blowup, c, v, &mut r);
        self.entropy_collapse.observe(c, v, &mut r);
        self.entropy_stuck.observe(c, v, &mut r);
        self.success_collapse.observe(c, v, &mut r);
        self.reward_farming.observe(c, v, &mut r);
        self.q_divergence.observe(c, v, &mut r);
        self.grad_norm_spike.observe(c, v, &mut r);
        lstm_saturation(&mut self.lstm_saturation, c, v, &mut r);
        out
    }
}
