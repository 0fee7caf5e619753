//! Rules on what training produces: non-finite numbers, success collapse,
//! reward farming and diverging Q-values.

use serde::{Deserialize, Serialize};

use super::extra_keys::{NONFINITE_OBS, NONFINITE_SKIP, NONFINITE_SKIPS, Q_MAX, Q_MEAN};
use super::{NONFINITE, Q_DIVERGENCE, REWARD_FARMING, SUCCESS_COLLAPSE};
use super::{Raise, get};
use crate::doctor::config::DoctorConfig;
use crate::doctor::stats::{History, Latch, trend};
use crate::doctor::{DoctorAction, Severity};
use crate::format;
use crate::metrics::{Metrics, keys};

// ------------------------------------------------------------- nonfinite ---

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct NonfiniteState {
    values: Latch,
    skips: Latch,
}

impl NonfiniteState {
    pub(super) fn observe(&mut self, c: &DoctorConfig, v: &Metrics, r: &mut Raise<'_>) {
        let cfg = &c.nonfinite;
        let bad: Vec<(&str, f64)> = v
            .iter()
            .filter(|(_, x)| !x.is_finite())
            .map(|(k, &x)| (k.as_str(), x))
            .collect();
        let skipped = get(v, NONFINITE_SKIP).is_some_and(|s| s > 0.0);
        let fire_values = self.values.update(!bad.is_empty(), 1, c.rearm_after);
        // Only update records count towards skip streaks.
        let fire_skips = if v.contains_key(NONFINITE_SKIP) {
            self.skips
                .update(skipped, cfg.skips_in_a_row, c.rearm_after)
        } else {
            false
        };
        if !(fire_values || fire_skips) {
            if skipped {
                // One abandoned update is already recovered from (the weights
                // before it are kept); it is recorded, and only a streak acts.
                let mut evidence = vec![(NONFINITE_SKIP, 1.0)];
                if let Some(n) = get(v, NONFINITE_SKIPS) {
                    evidence.push((NONFINITE_SKIPS, n));
                }
                if let Some(n) = get(v, NONFINITE_OBS) {
                    evidence.push((NONFINITE_OBS, n));
                }
                r.push(
                    NONFINITE,
                    Severity::Info,
                    DoctorAction::Warn,
                    &evidence,
                    "One update was abandoned: its rollout held NaN or infinite observations or \
                     rewards, or its loss, gradients or weights became non-finite. Training went \
                     on from the weights before it."
                        .to_string(),
                    "Nothing to do for a rare skip; if it recurs, check the environment for \
                     NaN observations or rewards and lower `ppo.learning_rate`.",
                );
            }
            return;
        }
        let mut evidence = bad.clone();
        if let Some(n) = get(v, NONFINITE_SKIPS) {
            evidence.push((NONFINITE_SKIPS, n));
        }
        if fire_skips {
            evidence.push(("updates", f64::from(self.skips.streak)));
        }
        let what = if bad.is_empty() {
            format!(
                "{} consecutive updates were abandoned because the loss, gradients or weights \
                 became non-finite",
                self.skips.streak
            )
        } else {
            let names: Vec<&str> = bad.iter().map(|(k, _)| *k).collect();
            format!("non-finite values were logged for {}", names.join(", "))
        };
        r.push(
            NONFINITE,
            Severity::Error,
            cfg.action,
            &evidence,
            format!("The run produced NaN or infinite numbers: {what}. Training on from here learns nothing."),
            "Lower `ppo.learning_rate` and `ppo.max_grad_norm`, normalise rewards and \
             observations (`ppo.normalize_reward: true`, `ppo.normalize_observations: true`), \
             and check the environment for NaN observations or rewards.",
        );
    }
}

// -------------------------------------------------------------- outcome ---

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct SuccessTracker {
    best: Option<f64>,
    latch: Latch,
}

impl SuccessTracker {
    /// True when the collapse fires now.
    fn update(
        &mut self,
        s: f64,
        cfg: &crate::doctor::config::SuccessCollapseConfig,
        rearm: u32,
    ) -> bool {
        let best = self.best.map_or(s, |b| b.max(s));
        self.best = Some(best);
        let condition = best >= cfg.min_best && s < cfg.fraction * best;
        self.latch.update(condition, cfg.window, rearm)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct SuccessCollapseState {
    eval: SuccessTracker,
    rollout: SuccessTracker,
    /// An `eval/success_rate` has been logged: from then on only evaluation
    /// findings are raised (deterministic, fixed seeds: less noisy).
    eval_seen: bool,
}

impl SuccessCollapseState {
    pub(super) fn observe(&mut self, c: &DoctorConfig, v: &Metrics, r: &mut Raise<'_>) {
        let cfg = &c.success_collapse;
        let mut fired = None;
        if let Some(s) = get(v, keys::EVAL_SUCCESS_RATE) {
            self.eval_seen = true;
            if self.eval.update(s, cfg, c.rearm_after) {
                fired = Some((keys::EVAL_SUCCESS_RATE, s, &self.eval));
            }
        }
        if let Some(s) = get(v, keys::SUCCESS_RATE) {
            let f = self.rollout.update(s, cfg, c.rearm_after);
            if f && !self.eval_seen && fired.is_none() {
                fired = Some((keys::SUCCESS_RATE, s, &self.rollout));
            }
        }
        let Some((key, s, tracker)) = fired else {
            return;
        };
        let best = tracker.best.unwrap_or(s);
        let n = tracker.latch.streak;
        r.push(
            SUCCESS_COLLAPSE,
            Severity::Error,
            cfg.action,
            &[
                (key, s),
                ("best_success_rate", best),
                ("observations", f64::from(n)),
            ],
            format!(
                "The success rate collapsed from its best of {} to {} ({} observations in a row \
                 below {} of the best): the policy has unlearned the task.",
                format::rate(best),
                format::rate(s),
                n,
                format::rate(cfg.fraction)
            ),
            "The `best/` checkpoint holds the policy before the collapse. Lower \
             `ppo.learning_rate` (or make it decay), set `ppo.target_kl`, lower \
             `ppo.clip_range` and `ppo.max_grad_norm`; for recurrent policies watch \
             `train/lstm_saturation`.",
        );
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct RewardFarmingState {
    /// Paired return and success of the last `window` updates that had both.
    returns: History,
    success: History,
    latch: Latch,
}

impl RewardFarmingState {
    pub(super) fn observe(&mut self, c: &DoctorConfig, v: &Metrics, r: &mut Raise<'_>) {
        let cfg = &c.reward_farming;
        let (Some(ret), Some(s)) = (get(v, keys::EP_REW_MEAN), get(v, keys::SUCCESS_RATE)) else {
            return;
        };
        let cap = cfg.window as usize;
        self.returns.push(ret, cap);
        self.success.push(s, cap);
        let mut evidence = None;
        if self.returns.len() == cap {
            let rets = self.returns.to_vec();
            let scale = (rets.iter().sum::<f64>() / rets.len() as f64)
                .abs()
                .max(1.0);
            if let (Some(tr), Some(ts)) = (trend(&rets), trend(&self.success.to_vec())) {
                let farming = tr.change > cfg.min_return_rise * scale
                    && tr.correlation >= cfg.min_correlation
                    && ts.change < -cfg.min_success_drop
                    && ts.correlation <= -cfg.min_correlation;
                if farming {
                    evidence = Some((tr, ts, scale));
                }
            }
        }
        if !self.latch.update(evidence.is_some(), 1, c.rearm_after) {
            return;
        }
        let Some((tr, ts, scale)) = evidence else {
            return;
        };
        r.push(
            REWARD_FARMING,
            Severity::Warn,
            cfg.action,
            &[
                (keys::EP_REW_MEAN, ret),
                (keys::SUCCESS_RATE, s),
                ("return_change", tr.change),
                ("success_change", ts.change),
                ("return_scale", scale),
                ("updates", cfg.window as f64),
            ],
            format!(
                "Over the last {} updates the return rose by {} while the success rate fell by \
                 {} points: the policy is farming reward without solving the task.",
                cfg.window,
                format::number(tr.change),
                format::number(-100.0 * ts.change)
            ),
            "Fix the reward, not the optimiser: make success dominate the return and remove \
             shaping terms that pay without progress (the environment's reward settings under \
             `env.settings`); compare the `episode/*` metrics to see what is being paid for.",
        );
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct QDivergenceState {
    /// `train/q_mean` of the last `window + 1` updates.
    q_mean: History,
    latch: Latch,
}

impl QDivergenceState {
    pub(super) fn observe(&mut self, c: &DoctorConfig, v: &Metrics, r: &mut Raise<'_>) {
        let cfg = &c.q_divergence;
        let q_mean = get(v, Q_MEAN);
        let q_max = get(v, Q_MAX);
        if q_mean.is_none() && q_max.is_none() {
            return;
        }
        let bound = match (cfg.max_abs_reward, cfg.gamma) {
            (Some(rm), Some(g)) if g < 1.0 => Some(rm / (1.0 - g)),
            _ => None,
        };
        let beyond = bound.is_some_and(|b| {
            q_mean.is_some_and(|q| q.abs() > b) || q_max.is_some_and(|q| q.abs() > b)
        });
        let mut drift = None;
        if let Some(q) = q_mean {
            let cap = cfg.window as usize + 1;
            self.q_mean.push(q, cap);
            if self.q_mean.len() == cap {
                let qs = self.q_mean.to_vec();
                let start = qs[0];
                let change = q - start;
                let steps = qs
                    .windows(2)
                    .filter(|w| (w[1] - w[0]) * change > 0.0)
                    .count();
                let monotone = steps as f64 >= cfg.monotone_fraction * cfg.window as f64;
                if monotone && change.abs() > cfg.drift_factor * start.abs().max(cfg.q_scale_floor)
                {
                    drift = Some(start);
                }
            }
        }
        if !self
            .latch
            .update(beyond || drift.is_some(), 1, c.rearm_after)
        {
            return;
        }
        let mut evidence = Vec::new();
        if let Some(q) = q_mean {
            evidence.push((Q_MEAN, q));
        }
        if let Some(q) = q_max {
            evidence.push((Q_MAX, q));
        }
        if let Some(b) = bound {
            evidence.push(("q_bound", b));
        }
        let what = if let Some(start) = drift {
            evidence.push(("q_mean_window_start", start));
            evidence.push(("updates", f64::from(cfg.window)));
            format!(
                "the mean Q estimate drifted from {} to {} in {} updates",
                format::number(start),
                format::number(q_mean.unwrap_or(start)),
                cfg.window
            )
        } else {
            format!(
                "a Q estimate is beyond the largest possible discounted return of {}",
                format::number(bound.unwrap_or(f64::NAN))
            )
        };
        r.push(
            Q_DIVERGENCE,
            Severity::Error,
            cfg.action,
            &evidence,
            format!(
                "The Q-values are diverging: {what}. Bootstrapped targets are chasing their own \
                 error."
            ),
            "Use hard target-network updates at a fixed interval instead of soft updates on \
             every step, keep the learning rate constant rather than decaying it, bound the \
             horizon (a smaller gamma or no per-step penalty), and clip gradients and rewards.",
        );
    }
}
