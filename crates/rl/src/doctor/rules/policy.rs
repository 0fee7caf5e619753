//! Rules on how the policy moves: frozen updates, KL blow-ups, entropy
//! collapse and stagnation, gradient spikes and saturated LSTMs.

use serde::{Deserialize, Serialize};

use super::extra_keys::{self, GRAD_NORM};
use super::{
    ENTROPY_COLLAPSE, ENTROPY_STUCK, FROZEN_POLICY, GRAD_NORM_SPIKE, KL_BLOWUP, LSTM_SATURATION,
};
use super::{Raise, get};
use crate::doctor::Severity;
use crate::doctor::config::DoctorConfig;
use crate::doctor::stats::{History, Latch, trend};
use crate::format;
use crate::metrics::{Metrics, keys};

// -------------------------------------------------------- policy motion ---

/// State of the frozen-policy rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct FrozenPolicyState {
    latch: Latch,
    /// Largest `train/learning_rate` seen.
    max_lr: Option<f64>,
}

pub(super) fn frozen_policy(
    state: &mut FrozenPolicyState,
    c: &DoctorConfig,
    v: &Metrics,
    r: &mut Raise<'_>,
) {
    let cfg = &c.frozen_policy;
    let (Some(kl), Some(clip)) = (get(v, keys::APPROX_KL), get(v, keys::CLIP_FRACTION)) else {
        return;
    };
    // A schedule annealed to (almost) nothing freezes the policy on purpose.
    let annealed = get(v, keys::LEARNING_RATE).is_some_and(|lr| {
        let max = state.max_lr.map_or(lr, |m| m.max(lr));
        state.max_lr = Some(max);
        lr < cfg.annealed_lr_fraction * max
    });
    let latch = &mut state.latch;
    let condition = kl < cfg.kl_below && clip <= cfg.clip_fraction_at_most && !annealed;
    if !latch.update(condition, cfg.window, c.rearm_after) {
        return;
    }
    let mut evidence = vec![
        (keys::APPROX_KL, kl),
        (keys::CLIP_FRACTION, clip),
        ("updates", f64::from(latch.streak)),
    ];
    if let Some(e) = get(v, keys::ENTROPY_LOSS) {
        evidence.push((keys::ENTROPY_LOSS, e));
    }
    r.push(
        FROZEN_POLICY,
        Severity::Warn,
        cfg.action,
        &evidence,
        format!(
            "The policy has stopped changing: approx KL {} and {} of samples clipped for {} \
             updates. The updates are too small to learn anything (vanishing advantages or \
             learning rate).",
            format::number(kl),
            format::rate(clip),
            latch.streak
        ),
        "Raise `ppo.learning_rate`; make advantages informative (`ppo.normalize_advantage: \
         true`, `ppo.normalize_reward: true` for tiny rewards); lower `ppo.ent_coef` if the \
         entropy bonus pins the policy random; check that `ppo.max_grad_norm` is not tiny.",
    );
}

pub(super) fn kl_blowup(latch: &mut Latch, c: &DoctorConfig, v: &Metrics, r: &mut Raise<'_>) {
    let cfg = &c.kl_blowup;
    let Some(kl) = get(v, keys::APPROX_KL) else {
        return;
    };
    let clip = get(v, keys::CLIP_FRACTION);
    let condition = kl > cfg.kl_above || clip.is_some_and(|f| f > cfg.clip_fraction_above);
    if !latch.update(condition, cfg.window, c.rearm_after) {
        return;
    }
    let mut evidence = vec![(keys::APPROX_KL, kl), ("updates", f64::from(latch.streak))];
    if let Some(clip) = clip {
        evidence.push((keys::CLIP_FRACTION, clip));
    }
    r.push(
        KL_BLOWUP,
        Severity::Warn,
        cfg.action,
        &evidence,
        format!(
            "Approx KL above {} or clip fraction above {} for {} updates (now {} and {}): \
             each update moves the policy far outside PPO's trust region, which precedes \
             collapse.",
            format::number(cfg.kl_above),
            format::number(cfg.clip_fraction_above),
            latch.streak,
            format::number(kl),
            clip.map_or("n/a".to_string(), format::number)
        ),
        "Lower `ppo.learning_rate`, set `ppo.target_kl` (e.g. 0.015) to end updates early, and \
         reduce `ppo.n_epochs` or `ppo.clip_range`.",
    );
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct EntropyCollapseState {
    /// Entropies of the last `window + 1` updates.
    entropy: History,
    latch: Latch,
}

impl EntropyCollapseState {
    pub(super) fn observe(&mut self, c: &DoctorConfig, v: &Metrics, r: &mut Raise<'_>) {
        let cfg = &c.entropy_collapse;
        let Some(loss) = get(v, keys::ENTROPY_LOSS) else {
            return;
        };
        let h = -loss;
        self.entropy.push(h, cfg.window as usize + 1);
        let peak = self.entropy.max().unwrap_or(h);
        let dropped = peak - h > cfg.drop_nats;
        let below_floor = cfg.floor.is_some_and(|f| h < f);
        if !self.latch.update(dropped || below_floor, 1, c.rearm_after) {
            return;
        }
        let why = if dropped {
            format!(
                "fell from {} to {} nats within {} updates",
                format::number(peak),
                format::number(h),
                cfg.window
            )
        } else {
            format!(
                "is {} nats, below the floor of {}",
                format::number(h),
                format::number(cfg.floor.unwrap_or(h))
            )
        };
        r.push(
            ENTROPY_COLLAPSE,
            Severity::Warn,
            cfg.action,
            &[
                ("entropy", h),
                ("entropy_window_max", peak),
                (keys::ENTROPY_LOSS, loss),
            ],
            format!(
                "The policy entropy {why}: the policy is turning deterministic before it has \
                 explored, and a collapsed policy rarely recovers."
            ),
            "Raise `ppo.ent_coef` (e.g. 0.01), lower `ppo.learning_rate`, or slow updates with \
             `ppo.target_kl` and a smaller `ppo.clip_range`.",
        );
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct EntropyStuckState {
    /// Entropy, return and success of the last `window` updates; absent
    /// values are not recorded, so the return and success windows may be
    /// shorter.
    entropy: History,
    returns: History,
    success: History,
    latch: Latch,
    /// Fired once already (the rule reports once per run).
    #[serde(default)]
    fired: bool,
}

impl EntropyStuckState {
    pub(super) fn observe(&mut self, c: &DoctorConfig, v: &Metrics, r: &mut Raise<'_>) {
        let cfg = &c.entropy_stuck;
        let Some(loss) = get(v, keys::ENTROPY_LOSS) else {
            return;
        };
        let cap = cfg.window as usize;
        self.entropy.push(-loss, cap);
        if let Some(ret) = get(v, keys::EP_REW_MEAN) {
            self.returns.push(ret, cap);
        }
        if let Some(s) = get(v, keys::SUCCESS_RATE) {
            self.success.push(s, cap);
        }
        // Informational, and a plateaued run keeps meeting the condition
        // on and off: say it once per run, never re-armed.
        if self.fired {
            return;
        }
        let condition = self.condition(cap, cfg);
        if !self.latch.update(condition.is_some(), 1, c.rearm_after) {
            return;
        }
        self.fired = true;
        let Some((entropy_change, return_change)) = condition else {
            return;
        };
        r.push(
            ENTROPY_STUCK,
            Severity::Info,
            cfg.action,
            &[
                ("entropy", -loss),
                ("entropy_change", entropy_change),
                ("return_change", return_change),
                ("updates", cfg.window as f64),
            ],
            format!(
                "The policy entropy has not decreased in {} updates (fitted change {} nats) \
                 while the return has not improved: the policy is not committing to anything it \
                 learned (a converged run also matches; then ignore this).",
                cfg.window,
                format::number(entropy_change)
            ),
            "Lower `ppo.ent_coef`; if the approx KL is also tiny, raise `ppo.learning_rate`; \
             check that the reward carries a learnable signal (`ppo.normalize_reward: true`).",
        );
    }

    /// `Some((entropy change, return change))` when the entropy is stuck and
    /// nothing improves.
    fn condition(
        &self,
        cap: usize,
        cfg: &crate::doctor::config::EntropyStuckConfig,
    ) -> Option<(f64, f64)> {
        if self.entropy.len() < cap || self.returns.len() < cap.div_ceil(2) {
            return None;
        }
        let h = trend(&self.entropy.to_vec())?;
        if -h.change >= cfg.min_decrease {
            return None;
        }
        let rets = self.returns.to_vec();
        let t = trend(&rets)?;
        let scale = (rets.iter().sum::<f64>() / rets.len() as f64)
            .abs()
            .max(1.0);
        if t.change > cfg.min_return_gain * scale {
            return None;
        }
        if self.success.len() >= cap.div_ceil(2) {
            let s = trend(&self.success.to_vec())?;
            if s.change > cfg.min_success_gain {
                return None;
            }
        }
        Some((h.change, t.change))
    }
}

// ------------------------------------------------------------ gradients ---

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct GradNormSpikeState {
    /// The previous `window` gradient norms.
    history: History,
    latch: Latch,
}

impl GradNormSpikeState {
    pub(super) fn observe(&mut self, c: &DoctorConfig, v: &Metrics, r: &mut Raise<'_>) {
        let cfg = &c.grad_norm_spike;
        let Some(g) = get(v, GRAD_NORM) else {
            return;
        };
        let reference = if self.history.len() >= cfg.min_history as usize {
            format::median(&self.history.to_vec())
        } else {
            None
        };
        self.history.push(g, cfg.window as usize);
        let spike = reference.is_some_and(|m| m > 0.0 && g > cfg.factor * m);
        if !self.latch.update(spike, 1, c.rearm_after) {
            return;
        }
        let m = reference.unwrap_or(0.0);
        r.push(
            GRAD_NORM_SPIKE,
            Severity::Warn,
            cfg.action,
            &[(GRAD_NORM, g), ("grad_norm_median", m), ("factor", g / m)],
            format!(
                "The gradient norm jumped to {}, {}x its recent median of {}: an exploding \
                 gradient, often the first sign of divergence.",
                format::number(g),
                format::number(g / m),
                format::number(m)
            ),
            "Lower `ppo.max_grad_norm` (e.g. 0.5) and `ppo.learning_rate`; normalise rewards and \
             observations (`ppo.normalize_reward: true`, `ppo.normalize_observations: true`).",
        );
    }
}

pub(super) fn lstm_saturation(latch: &mut Latch, c: &DoctorConfig, v: &Metrics, r: &mut Raise<'_>) {
    let cfg = &c.lstm_saturation;
    let Some(s) = get(v, extra_keys::LSTM_SATURATION) else {
        return;
    };
    if !latch.update(s > cfg.above, cfg.window, c.rearm_after) {
        return;
    }
    r.push(
        LSTM_SATURATION,
        Severity::Warn,
        cfg.action,
        &[
            (extra_keys::LSTM_SATURATION, s),
            ("updates", f64::from(latch.streak)),
        ],
        format!(
            "{} of the LSTM's gate and cell activations have been saturated for {} updates: \
             saturated units pass no gradient, so the recurrent state stops learning.",
            format::rate(s),
            latch.streak
        ),
        "Lower `ppo.learning_rate` and `ppo.max_grad_norm`, normalise observations \
         (`ppo.normalize_observations: true`), and keep returns at unit scale \
         (`ppo.normalize_returns: true`).",
    );
}
