//! Rules on the critic: value-loss explosion, a value loss that dwarfs the
//! policy loss, and negative explained variance.

use serde::{Deserialize, Serialize};

use super::extra_keys::{RETURN_STD, VALUE_TARGET_MEAN, VALUE_TARGET_STD};
use super::{EXPLAINED_VARIANCE_NEGATIVE, VALUE_LOSS_DOMINATES, VALUE_LOSS_EXPLOSION};
use super::{Raise, get};
use crate::doctor::Severity;
use crate::doctor::config::DoctorConfig;
use crate::doctor::stats::{History, Latch};
use crate::format;
use crate::metrics::{Metrics, keys};

/// True when the critic's targets of this update vary by less than
/// `min_relative_std` of their mean magnitude (`train/value_target_std <
/// x * max(|train/value_target_mean|, 1)`): ratios to their spread are noise.
fn targets_nearly_constant(v: &Metrics, min_relative_std: f64) -> bool {
    matches!(
        (get(v, VALUE_TARGET_STD), get(v, VALUE_TARGET_MEAN)),
        (Some(std), Some(mean)) if std < min_relative_std * mean.abs().max(1.0)
    )
}

// ---------------------------------------------------------- value losses ---

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct ValueLossExplosionState {
    latch: Latch,
    /// Relative value losses of the last `window + 1` updates.
    ratios: History,
    /// Largest `|rollout/ep_rew_mean|` so far.
    return_scale: Option<f64>,
}

impl ValueLossExplosionState {
    pub(super) fn observe(&mut self, c: &DoctorConfig, v: &Metrics, r: &mut Raise<'_>) {
        let cfg = &c.value_loss_explosion;
        let cap = cfg.window as usize + 1;
        if let Some(ret) = get(v, keys::EP_REW_MEAN) {
            self.return_scale = Some(self.return_scale.map_or(ret.abs(), |s| s.max(ret.abs())));
        }
        let Some(vl) = get(v, keys::VALUE_LOSS) else {
            return;
        };
        // The value loss is in the critic's own units: compare it with the
        // spread of the critic's targets when the trainer logs it (exact
        // whatever reward or return normalisation is on), else with the
        // standardised returns' unit variance, else with the raw return scale.
        let target_std = get(v, VALUE_TARGET_STD).filter(|s| *s > 0.0);
        if targets_nearly_constant(v, cfg.min_relative_target_std) {
            return;
        }
        let normalized = target_std.is_some() || get(v, RETURN_STD).is_some();
        let (ratio, scale, threshold) = if let Some(s) = target_std {
            (vl / (s * s), s, cfg.normalized_ratio_above)
        } else if normalized {
            (vl, 1.0, cfg.normalized_ratio_above)
        } else {
            let Some(s) = self.return_scale else {
                return; // no return scale known yet
            };
            let s = s.max(1.0);
            (vl / (s * s), s, cfg.raw_ratio_above)
        };
        self.ratios.push(ratio, cap);
        let before = self.ratios.first().unwrap_or(ratio);
        let condition =
            self.ratios.len() == cap && ratio > threshold && ratio >= cfg.rise_factor * before;
        if !self.latch.update(condition, cfg.sustain, c.rearm_after) {
            return;
        }
        let scale_text = if target_std.is_some() {
            format!("the critic's targets (std {})", format::number(scale))
        } else if normalized {
            "the standardised returns".to_string()
        } else {
            format!("an episode-return scale of {}", format::number(scale))
        };
        r.push(
            VALUE_LOSS_EXPLOSION,
            Severity::Error,
            cfg.action,
            &[
                (keys::VALUE_LOSS, vl),
                ("relative_value_loss", ratio),
                ("relative_value_loss_before", before),
                ("return_scale", scale),
                ("updates", f64::from(cfg.window)),
            ],
            format!(
                "The value loss is {} and its size relative to {scale_text} grew {}x in {} \
                 updates: the critic is diverging, so the advantages it feeds the policy are noise.",
                format::number(vl),
                format::number(ratio / before.max(f64::MIN_POSITIVE)),
                cfg.window
            ),
            "Standardise the critic's targets (`ppo.normalize_returns: true`) or rewards \
             (`ppo.normalize_reward: true`); limit value steps with `ppo.value_clip: relative` \
             and `ppo.clip_range_vf: 0.2`; consider `ppo.value_loss: huber` and a lower \
             `ppo.critic_learning_rate`.",
        );
    }
}

pub(super) fn value_loss_dominates(
    latch: &mut Latch,
    c: &DoctorConfig,
    v: &Metrics,
    r: &mut Raise<'_>,
) {
    let cfg = &c.value_loss_dominates;
    let (Some(vl), Some(pg)) = (get(v, keys::VALUE_LOSS), get(v, keys::POLICY_GRADIENT_LOSS))
    else {
        return;
    };
    let ratio = vl / pg.abs().max(cfg.pg_loss_floor);
    let condition = ratio > cfg.ratio_above && vl > cfg.min_value_loss;
    if !latch.update(condition, cfg.window, c.rearm_after) {
        return;
    }
    r.push(
        VALUE_LOSS_DOMINATES,
        Severity::Warn,
        cfg.action,
        &[
            (keys::VALUE_LOSS, vl),
            (keys::POLICY_GRADIENT_LOSS, pg),
            ("ratio", ratio),
            ("updates", f64::from(latch.streak)),
        ],
        format!(
            "The value loss ({}) has been more than {}x the policy loss ({}) for {} updates: \
             the critic's gradient dominates shared layers and the gradient-norm clip, \
             starving the policy of learning signal.",
            format::number(vl),
            format::number(cfg.ratio_above),
            format::number(pg),
            latch.streak
        ),
        "Bring returns to unit scale (`ppo.normalize_returns: true` or \
         `ppo.normalize_reward: true`), lower `ppo.vf_coef`, or give the critic its own layers \
         (`ppo.policy.net_arch: {pi: [...], vf: [...]}`) and learning rate \
         (`ppo.critic_learning_rate`).",
    );
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct ExplainedVarianceState {
    /// Updates that logged an explained variance.
    seen: u64,
    latch: Latch,
}

impl ExplainedVarianceState {
    pub(super) fn observe(&mut self, c: &DoctorConfig, v: &Metrics, r: &mut Raise<'_>) {
        let cfg = &c.explained_variance_negative;
        let Some(ev) = get(v, keys::EXPLAINED_VARIANCE) else {
            return;
        };
        self.seen += 1;
        if self.seen <= u64::from(cfg.warmup) {
            return;
        }
        // When the targets hardly vary (every episode far from its end, e.g.
        // CartPole at its time limit), explained variance divides noise by
        // noise: such updates say nothing either way.
        if targets_nearly_constant(v, cfg.min_relative_target_std) {
            return;
        }
        if !self.latch.update(ev < cfg.below, cfg.window, c.rearm_after) {
            return;
        }
        r.push(
            EXPLAINED_VARIANCE_NEGATIVE,
            Severity::Warn,
            cfg.action,
            &[
                (keys::EXPLAINED_VARIANCE, ev),
                ("updates", f64::from(self.latch.streak)),
            ],
            format!(
                "The explained variance has been below {} for {} updates (now {}): the value \
                 function predicts returns worse than their mean, so GAE advantages are \
                 meaningless.",
                format::number(cfg.below),
                self.latch.streak,
                format::number(ev)
            ),
            "Standardise the critic's targets (`ppo.normalize_returns: true`), give the critic \
             its own layers (`ppo.policy.net_arch: {pi: [...], vf: [...]}`) and a higher \
             `ppo.critic_learning_rate`, and check `ppo.gamma` and `ppo.gae_lambda` against the \
             episode length.",
        );
    }
}
