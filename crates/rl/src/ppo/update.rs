//! The PPO loss, its gradient, and the minibatch-epoch update.
//!
//! For a minibatch of `B` samples with ratio `r = exp(log_prob - old_log_prob)`:
//!
//! ```text
//! L = L_pg + vf_coef * L_v - sum_c ent_coef_c * mean(H_c)
//! L_pg = -mean(min(r A, clip(r, 1 - eps, 1 + eps) A))
//! L_v  = mean(l_v(V, V_old, R))        (see `ValueClip`, `ValueClipLoss`, `ValueLoss`)
//! ```
//!
//! `approx_kl = mean((r - 1) - log r)`, the non-negative, lower-variance
//! estimator of KL(old || new). The loss's derivatives with respect to each
//! sample's log-probability, entropies and value are formed here and handed to
//! [`ActorCritic::backward`], which carries them through the heads and MLPs.

use hlynr_env::BatchEnv;
use hlynr_nn::{Tensor, clip_grad_norm};

use super::config::{AdvantageNorm, KlCheck, ValueClip, ValueClipLoss, ValueLoss};
use super::{ACTOR_GROUP, CRITIC_GROUP, Ppo, PpoError};
use crate::common::nonfinite::all_finite;
use crate::policy::ActorCritic;
use crate::recurrent::SequenceBatch;

/// Loss coefficients and modes of one update (schedules already evaluated).
#[derive(Clone, Debug, PartialEq)]
pub struct LossSettings {
    /// Policy ratio clip epsilon.
    pub clip_range: f64,
    /// Entropy coefficient of each action component.
    pub ent_coefs: Vec<f64>,
    /// Value loss coefficient.
    pub vf_coef: f64,
    /// Value clipping mode.
    pub value_clip: ValueClip,
    /// Its range (unused for `none`).
    pub clip_range_vf: f64,
    /// Clipped-loss combination.
    pub value_clip_loss: ValueClipLoss,
    /// Per-sample value loss.
    pub value_loss: ValueLoss,
    /// Huber threshold.
    pub huber_delta: f64,
}

/// One minibatch, values and returns on the critic's scale.
#[derive(Clone, Debug, Default)]
pub struct Minibatch {
    /// `[B, obs_dim]`.
    pub obs: Tensor,
    /// Observation bytes, `[B * obs_bytes]`.
    pub obs_bytes: Vec<u8>,
    /// Raw actions `[B, act_dim]`.
    pub actions: Tensor,
    /// Log-probabilities at collection time.
    pub old_log_prob: Vec<f32>,
    /// (Normalised) advantages.
    pub advantages: Vec<f32>,
    /// Value targets.
    pub returns: Vec<f32>,
    /// Values at collection time.
    pub old_values: Vec<f32>,
    /// For a recurrent policy: the rows are these sequences, time-major.
    pub sequences: Option<SequenceBatch>,
}

impl Minibatch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.old_log_prob.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.old_log_prob.is_empty()
    }
}

/// Reusable buffers of [`ppo_loss`]: the loss's derivatives.
#[derive(Clone, Debug, Default)]
pub struct LossWorkspace {
    log_prob: Vec<f32>,
    d_log_prob: Vec<f32>,
    d_entropy: Vec<Vec<f32>>,
    d_value: Tensor,
}

/// Values of the loss terms on one minibatch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossStats {
    /// Total loss.
    pub loss: f64,
    /// Clipped surrogate loss.
    pub pg_loss: f64,
    /// Value loss (before `vf_coef`).
    pub value_loss: f64,
    /// Mean total entropy (sum over components, unweighted).
    pub entropy: f64,
    /// `mean((r - 1) - log r)`.
    pub approx_kl: f64,
    /// Fraction of samples with `|r - 1| > clip_range`.
    pub clip_fraction: f64,
    /// Fraction of samples whose value was clipped or capped.
    pub value_clip_fraction: f64,
}

/// `(l(e), dl/de)` of the per-sample value loss at error `e = V - R`.
#[inline]
fn base_value_loss(kind: ValueLoss, delta: f64, e: f64) -> (f64, f64) {
    let huber = |e: f64| {
        if e.abs() < delta {
            (0.5 * e * e, e)
        } else {
            (delta * (e.abs() - 0.5 * delta), delta * e.signum())
        }
    };
    match kind {
        ValueLoss::Mse => (e * e, 2.0 * e),
        ValueLoss::Huber => huber(e),
        ValueLoss::MseHuber => {
            let (h, dh) = huber(e);
            (0.5 * e * e + 0.5 * h, e + 0.5 * dh)
        }
    }
}

/// `(loss, d loss / d V, clipped)` of one sample.
#[inline]
fn value_sample(s: &LossSettings, v: f64, v_old: f64, ret: f64) -> (f64, f64, bool) {
    let (lu, du) = base_value_loss(s.value_loss, s.huber_delta, v - ret);
    let half_width = match s.value_clip {
        ValueClip::None => return (lu, du, false),
        ValueClip::SquaredErrorCap => {
            return if lu > s.clip_range_vf {
                (s.clip_range_vf, 0.0, true)
            } else {
                (lu, du, false)
            };
        }
        ValueClip::Absolute => s.clip_range_vf,
        ValueClip::Relative => s.clip_range_vf * v_old.abs(),
    };
    let diff = v - v_old;
    let inside = diff.abs() < half_width;
    let v_clip = v_old + diff.clamp(-half_width, half_width);
    let (lc, dc) = base_value_loss(s.value_loss, s.huber_delta, v_clip - ret);
    let dc = if inside { dc } else { 0.0 };
    match s.value_clip_loss {
        ValueClipLoss::Clipped => (lc, dc, !inside),
        ValueClipLoss::Max => {
            if lc > lu {
                (lc, dc, true)
            } else {
                (lu, du, false)
            }
        }
    }
}

/// Forward pass and loss on `mb`; fills `ws` with the loss's derivatives with
/// respect to log-probabilities, entropies and values, ready for
/// [`ppo_backward`].
pub fn ppo_loss(
    net: &mut ActorCritic,
    mb: &Minibatch,
    s: &LossSettings,
    ws: &mut LossWorkspace,
) -> Result<LossStats, PpoError> {
    let b = mb.len();
    if b == 0
        || mb.advantages.len() != b
        || mb.returns.len() != b
        || mb.old_values.len() != b
        || s.ent_coefs.len() != net.num_components()
    {
        return Err(PpoError::invalid(
            "ppo_loss",
            format!(
                "minibatch of {b} log-probs with {} advantages, {} returns, {} old values; {} entropy coefficients for {} components",
                mb.advantages.len(),
                mb.returns.len(),
                mb.old_values.len(),
                s.ent_coefs.len(),
                net.num_components()
            ),
        ));
    }
    net.forward(&mb.obs, &mb.obs_bytes, mb.sequences.as_ref())?;
    ws.log_prob.resize(b, 0.0);
    net.evaluate(&mb.actions, &mut ws.log_prob)?;
    let inv_b = 1.0 / b as f64;
    let (lo, hi) = (1.0 - s.clip_range, 1.0 + s.clip_range);
    let mut st = LossStats::default();
    ws.d_log_prob.resize(b, 0.0);
    for n in 0..b {
        let log_ratio = ws.log_prob[n] as f64 - mb.old_log_prob[n] as f64;
        let ratio = log_ratio.exp();
        let adv = mb.advantages[n] as f64;
        let unclipped = ratio * adv;
        let clipped = ratio.clamp(lo, hi) * adv;
        st.pg_loss -= unclipped.min(clipped);
        // The unclipped branch carries the gradient d(r A)/d log_prob = r A.
        ws.d_log_prob[n] = if unclipped <= clipped {
            (-ratio * adv * inv_b) as f32
        } else {
            0.0
        };
        st.approx_kl += (ratio - 1.0) - log_ratio;
        if (ratio - 1.0).abs() > s.clip_range {
            st.clip_fraction += 1.0;
        }
    }
    st.pg_loss *= inv_b;
    st.approx_kl *= inv_b;
    st.clip_fraction *= inv_b;
    ws.d_value.resize(&[b, 1]);
    let values = net.values();
    for (n, &value) in values.iter().enumerate().take(b) {
        let (l, d, clipped) = value_sample(
            s,
            value as f64,
            mb.old_values[n] as f64,
            mb.returns[n] as f64,
        );
        st.value_loss += l;
        ws.d_value.data_mut()[n] = (s.vf_coef * d * inv_b) as f32;
        if clipped {
            st.value_clip_fraction += 1.0;
        }
    }
    st.value_loss *= inv_b;
    st.value_clip_fraction *= inv_b;
    ws.d_entropy.resize(s.ent_coefs.len(), Vec::new());
    let mut entropy_term = 0.0;
    for (c, (&coef, d)) in s.ent_coefs.iter().zip(&mut ws.d_entropy).enumerate() {
        let mean_h = net.entropy(c).iter().map(|&h| h as f64).sum::<f64>() * inv_b;
        st.entropy += mean_h;
        entropy_term += coef * mean_h;
        d.clear();
        d.resize(b, (-coef * inv_b) as f32);
    }
    st.loss = st.pg_loss + s.vf_coef * st.value_loss - entropy_term;
    Ok(st)
}

/// Adds the gradient of the last [`ppo_loss`] into the network's parameter
/// gradients (which the caller zeroes first).
pub fn ppo_backward(
    net: &mut ActorCritic,
    mb: &Minibatch,
    ws: &LossWorkspace,
) -> Result<(), PpoError> {
    let d_entropy: Vec<&[f32]> = ws.d_entropy.iter().map(Vec::as_slice).collect();
    net.backward(
        &mb.obs,
        &ws.d_log_prob,
        &d_entropy,
        &ws.d_value,
        mb.sequences.as_ref(),
    )?;
    Ok(())
}

/// Metrics of one iteration, reported under Stable-Baselines3's names by
/// [`PpoMetrics::scalars`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PpoMetrics {
    /// `train/value_loss`: mean over minibatches.
    pub value_loss: f64,
    /// `train/policy_gradient_loss`.
    pub policy_gradient_loss: f64,
    /// `train/entropy_loss`: `-mean(entropy)`.
    pub entropy_loss: f64,
    /// `train/loss`: total loss of the last minibatch.
    pub loss: f64,
    /// `train/approx_kl`: mean over minibatches.
    pub approx_kl: f64,
    /// `train/clip_fraction`.
    pub clip_fraction: f64,
    /// `train/clip_range`.
    pub clip_range: f64,
    /// `train/clip_range_vf` (when value clipping is on).
    pub clip_range_vf: Option<f64>,
    /// `train/value_clip_fraction` (when value clipping is on).
    pub value_clip_fraction: Option<f64>,
    /// `train/explained_variance` of the rollout's values for its returns
    /// (`None` when the returns have zero variance).
    pub explained_variance: Option<f64>,
    /// `train/learning_rate` (actor group).
    pub learning_rate: f64,
    /// `train/critic_learning_rate`.
    pub critic_learning_rate: f64,
    /// `train/ent_coef`.
    pub ent_coef: f64,
    /// `train/n_updates`: epochs completed over the run.
    pub n_updates: u64,
    /// `train/gradient_steps`: optimiser steps over the run.
    pub gradient_steps: u64,
    /// `train/std`: mean Gaussian standard deviation.
    pub std: Option<f64>,
    /// `train/grad_norm`: mean pre-clip gradient norm.
    pub grad_norm: f64,
    /// `train/epochs`: epochs run in this update (fewer than `n_epochs` after
    /// a KL stop; a stop in epoch `k` counts `k`).
    pub epochs: usize,
    /// `train/kl_stop`: 1 when the KL check stopped this update.
    pub kl_stopped: bool,
    /// `train/kl_stop_minibatch`: minibatch index (within its epoch) of a
    /// per-minibatch KL stop.
    pub kl_stop_minibatch: Option<usize>,
    /// `train/nonfinite_skip`: this update was abandoned and rolled back.
    pub nonfinite_skipped: bool,
    /// `train/nonfinite_skips`: abandoned updates over the run.
    pub nonfinite_skips: u64,
    /// `rollout/nonfinite_obs`: NaN or infinite observation values the
    /// envs produced in this rollout (reported when there were any).
    pub nonfinite_obs: Option<u64>,
    /// `train/return_mean`, `train/return_std`: return statistics of the critic scale.
    pub return_stats: Option<(f64, f64)>,
    /// `train/value_target_std`: standard deviation of the critic's targets in
    /// its own units (what the value loss is measured against).
    pub value_target_std: Option<f64>,
    /// `train/value_target_mean`: their mean.
    pub value_target_mean: Option<f64>,
    /// `train/lstm_saturation`: mean fraction of LSTM outputs with `|h| > 0.99`
    /// over the update's minibatches (recurrent policies).
    pub lstm_saturation: Option<f64>,
    /// `train/lstm_gate_saturation`: mean fraction of sigmoid gates outside
    /// `[0.01, 0.99]` (recurrent policies).
    pub lstm_gate_saturation: Option<f64>,
    /// `rollout/ep_rew_mean` over the last 100 episodes.
    pub ep_rew_mean: Option<f64>,
    /// `rollout/ep_len_mean`.
    pub ep_len_mean: Option<f64>,
    /// `rollout/success_rate` from `info.is_success`, all envs.
    pub success_rate: Option<f64>,
    /// `time/episodes`.
    pub episodes: u64,
    /// `time/iterations`.
    pub iterations: u64,
    /// `time/total_timesteps`.
    pub total_timesteps: u64,
}

impl PpoMetrics {
    /// The metrics as `(name, value)` pairs; absent optional values are
    /// omitted, and so are the loss statistics of an abandoned update (it
    /// computed none: zeros would read as a frozen policy).
    pub fn scalars(&self) -> Vec<(&'static str, f64)> {
        let mut out = Vec::new();
        if !self.nonfinite_skipped {
            out.extend([
                ("train/value_loss", self.value_loss),
                ("train/policy_gradient_loss", self.policy_gradient_loss),
                ("train/entropy_loss", self.entropy_loss),
                ("train/loss", self.loss),
                ("train/approx_kl", self.approx_kl),
                ("train/clip_fraction", self.clip_fraction),
                ("train/grad_norm", self.grad_norm),
                ("train/epochs", self.epochs as f64),
            ]);
        }
        out.extend([
            ("train/clip_range", self.clip_range),
            ("train/learning_rate", self.learning_rate),
            ("train/critic_learning_rate", self.critic_learning_rate),
            ("train/ent_coef", self.ent_coef),
            ("train/n_updates", self.n_updates as f64),
            ("train/gradient_steps", self.gradient_steps as f64),
            ("train/kl_stop", f64::from(u8::from(self.kl_stopped))),
            (
                "train/nonfinite_skip",
                f64::from(u8::from(self.nonfinite_skipped)),
            ),
            ("train/nonfinite_skips", self.nonfinite_skips as f64),
            ("time/episodes", self.episodes as f64),
            ("time/iterations", self.iterations as f64),
            ("time/total_timesteps", self.total_timesteps as f64),
        ]);
        let optional = [
            ("train/clip_range_vf", self.clip_range_vf),
            ("train/value_clip_fraction", self.value_clip_fraction),
            ("train/explained_variance", self.explained_variance),
            ("train/std", self.std),
            (
                "train/kl_stop_minibatch",
                self.kl_stop_minibatch.map(|m| m as f64),
            ),
            ("train/return_mean", self.return_stats.map(|s| s.0)),
            ("train/return_std", self.return_stats.map(|s| s.1)),
            ("train/value_target_std", self.value_target_std),
            ("train/value_target_mean", self.value_target_mean),
            ("train/lstm_saturation", self.lstm_saturation),
            ("train/lstm_gate_saturation", self.lstm_gate_saturation),
            ("rollout/ep_rew_mean", self.ep_rew_mean),
            ("rollout/ep_len_mean", self.ep_len_mean),
            ("rollout/success_rate", self.success_rate),
            (
                "rollout/nonfinite_obs",
                self.nonfinite_obs.map(|n| n as f64),
            ),
        ];
        out.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        out
    }
}

/// Reusable buffers of the update.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch {
    /// Sample indices (feed-forward) or sequence ids (recurrent), shuffled.
    indices: Vec<usize>,
    /// Rollout-buffer rows of the current minibatch.
    rows: Vec<usize>,
    targets: Vec<f32>,
    old_values: Vec<f32>,
    mb: Minibatch,
    ws: LossWorkspace,
    snapshot: Vec<Tensor>,
}

/// The entries of `x` whose row held an agent.
fn active_rows(x: &[f32], active: &[bool]) -> Vec<f32> {
    x.iter()
        .zip(active)
        .filter(|&(_, &a)| a)
        .map(|(&v, _)| v)
        .collect()
}

/// `1 - Var(y - y_pred) / Var(y)`, `None` when `Var(y) = 0`.
pub fn explained_variance(y_pred: &[f32], y: &[f32]) -> Option<f64> {
    let n = y.len() as f64;
    if y.is_empty() || y_pred.len() != y.len() {
        return None;
    }
    let var = |it: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = it.collect();
        let m = v.iter().sum::<f64>() / n;
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n
    };
    let var_y = var(&mut y.iter().map(|&v| v as f64));
    if var_y == 0.0 || !var_y.is_finite() {
        return None;
    }
    let var_res = var(&mut y.iter().zip(y_pred).map(|(&a, &b)| a as f64 - b as f64));
    Some(1.0 - var_res / var_y)
}

/// Mean (`None` when empty) and population standard deviation (`None` for
/// fewer than two values), in one pass for the mean and one for the spread.
fn mean_and_std(x: &[f32]) -> (Option<f64>, Option<f64>) {
    if x.is_empty() {
        return (None, None);
    }
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let std = (x.len() >= 2)
        .then(|| (x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt());
    (Some(mean), std)
}

fn normalize_advantages(adv: &mut [f32], mode: AdvantageNorm, threshold: f64) {
    let n = adv.len();
    if n < 2 {
        return;
    }
    let mean = adv.iter().map(|&a| a as f64).sum::<f64>() / n as f64;
    // Sample standard deviation (torch's default, as SB3 uses).
    let var = adv.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let std = var.sqrt();
    let scale = match mode {
        AdvantageNorm::Standard => 1.0 / (std + 1e-8),
        AdvantageNorm::Robust if std > threshold => 1.0 / (std + 1e-8),
        AdvantageNorm::Robust => 1.0,
    };
    for a in adv {
        *a = ((*a as f64 - mean) * scale) as f32;
    }
}

impl<B: BatchEnv> Ppo<B> {
    /// The loss settings at the current progress.
    pub fn loss_settings(&self) -> LossSettings {
        let p = self.progress_remaining();
        let c = &self.config;
        let ent = c.ent_coef.value(p);
        let ent_coefs = (0..self.net.num_components())
            .map(|i| ent * c.entropy_head_weights.get(i).copied().unwrap_or(1.0))
            .collect();
        LossSettings {
            clip_range: c.clip_range.value(p),
            ent_coefs,
            vf_coef: c.vf_coef,
            value_clip: c.value_clip,
            clip_range_vf: c.clip_range_vf.unwrap_or(0.0),
            value_clip_loss: c.value_clip_loss,
            value_loss: c.value_loss,
            huber_delta: c.huber_delta,
        }
    }

    fn snapshot_params(&mut self) {
        let params = self.net.named_params();
        self.scratch
            .snapshot
            .resize(params.len(), Tensor::default());
        for (dst, (_, p)) in self.scratch.snapshot.iter_mut().zip(params) {
            dst.copy_from(&p.value);
        }
    }

    fn restore_params(&mut self) {
        let snapshot = std::mem::take(&mut self.scratch.snapshot);
        for (src, (_, p)) in snapshot.iter().zip(self.net.named_params_mut()) {
            p.value.copy_from(src);
        }
        self.scratch.snapshot = snapshot;
    }

    /// Explained variance of the rollout's values over the rows that held an agent.
    fn active_explained_variance(&self) -> Option<f64> {
        let b = &self.buffer;
        explained_variance(
            &active_rows(&b.values, &b.active),
            &active_rows(&b.returns, &b.active),
        )
    }

    /// Runs `n_epochs` passes of shuffled minibatches over the collected
    /// rollout (see the module documentation and [`super::PpoConfig`]).
    ///
    /// A non-finite rollout, loss, gradient norm or updated weight abandons
    /// the whole update: weights and optimiser state return to their values
    /// before it, return statistics are left unchanged, and the skip is
    /// counted (`train/nonfinite_skips`).
    pub fn update(&mut self) -> Result<PpoMetrics, PpoError> {
        let p = self.progress_remaining();
        let c = self.config.clone();
        let lr = c.learning_rate.value(p) * self.lr_scale;
        let critic_lr = c
            .critic_learning_rate
            .as_ref()
            .map_or(lr, |s| s.value(p) * self.lr_scale);
        self.opt.set_group_lr(ACTOR_GROUP, lr)?;
        self.opt.set_group_lr(CRITIC_GROUP, critic_lr)?;
        let settings = self.loss_settings();
        let mut m = PpoMetrics {
            clip_range: settings.clip_range,
            clip_range_vf: c.clip_range_vf,
            learning_rate: lr,
            critic_learning_rate: critic_lr,
            ent_coef: c.ent_coef.value(p),
            explained_variance: self.active_explained_variance(),
            ..PpoMetrics::default()
        };
        m.nonfinite_obs = (self.nonfinite_obs > 0).then_some(self.nonfinite_obs);
        let rollout_finite = self.nonfinite_obs == 0
            && self
                .buffer
                .returns
                .iter()
                .chain(&self.buffer.advantages)
                .all(|v| v.is_finite());
        if !rollout_finite {
            return Ok(self.finish_skipped(m, None));
        }
        // Value targets and old values on the critic's scale.
        let total = self.buffer.len();
        let sc = &mut self.scratch;
        sc.targets.clear();
        sc.old_values.clear();
        match &mut self.return_norm {
            Some(rn) => {
                rn.update(&active_rows(&self.buffer.returns, &self.buffer.active))?;
                sc.targets
                    .extend(self.buffer.returns.iter().map(|&r| rn.normalize(r)));
                sc.old_values
                    .extend(self.buffer.values.iter().map(|&v| rn.normalize(v)));
                m.return_stats = Some((rn.mean(), rn.std()));
            }
            None => {
                sc.targets.extend_from_slice(&self.buffer.returns);
                sc.old_values.extend_from_slice(&self.buffer.values);
            }
        }
        (m.value_target_mean, m.value_target_std) =
            mean_and_std(&active_rows(&sc.targets, &self.buffer.active));
        // A recurrent policy shuffles whole sequences, a feed-forward one samples.
        let (units, per_batch) = match &self.sequences {
            Some(store) => (store.num_sequences(), c.batch_size / store.bptt()),
            None => (total, c.batch_size),
        };
        // Rows that held no agent are no experience (recurrent rollouts never
        // have such rows: collection refuses them).
        sc.indices.clear();
        sc.indices
            .extend((0..units).filter(|&k| self.sequences.is_some() || self.buffer.active[k]));
        let units = sc.indices.len();
        self.snapshot_params();
        let opt_before = self.opt.clone();
        let return_norm_before = self.return_norm.clone();
        let kl_limit = c.target_kl.map(|t| t * c.kl_factor);
        let (mut n_batches, mut sum_pg, mut sum_v, mut sum_ent, mut sum_kl, mut sum_clip) =
            (0usize, 0.0, 0.0, 0.0, 0.0, 0.0);
        let (mut sum_vclip, mut sum_gnorm, mut n_steps) = (0.0, 0.0, 0usize);
        let (mut sum_sat_hidden, mut sum_sat_gates) = (0.0, 0.0);
        let mut epochs_done = 0;
        'epochs: for epoch in 0..c.n_epochs {
            self.shuffle_rng.shuffle(&mut self.scratch.indices);
            let (mut epoch_kl, mut epoch_batches) = (0.0, 0usize);
            let n_mb = units.div_ceil(per_batch);
            for mb_index in 0..n_mb {
                let start = mb_index * per_batch;
                self.gather_minibatch(start, per_batch.min(units - start));
                let sc = &mut self.scratch;
                let st = ppo_loss(&mut self.net, &sc.mb, &settings, &mut sc.ws)?;
                if !st.loss.is_finite() {
                    return Ok(self.abort(m, opt_before, return_norm_before));
                }
                if let Some(r) = self.net.recurrent() {
                    let sat = r.saturation();
                    sum_sat_hidden += sat.hidden as f64;
                    sum_sat_gates += sat.gates as f64;
                }
                n_batches += 1;
                epoch_batches += 1;
                sum_pg += st.pg_loss;
                sum_v += st.value_loss;
                sum_ent += st.entropy;
                sum_kl += st.approx_kl;
                epoch_kl += st.approx_kl;
                sum_clip += st.clip_fraction;
                sum_vclip += st.value_clip_fraction;
                m.loss = st.loss;
                if c.kl_check == KlCheck::Minibatch
                    && kl_limit.is_some_and(|limit| st.approx_kl > limit)
                {
                    m.kl_stopped = true;
                    m.kl_stop_minibatch = Some(mb_index);
                    break 'epochs;
                }
                self.net.zero_grad();
                ppo_backward(&mut self.net, &sc.mb, &sc.ws)?;
                let norm = clip_grad_norm(
                    self.net.named_params_mut().into_iter().map(|(_, p)| p),
                    c.max_grad_norm as f32,
                )?;
                if !norm.is_finite() {
                    return Ok(self.abort(m, opt_before, return_norm_before));
                }
                sum_gnorm += norm as f64;
                let mut params = self.net.named_params_mut();
                self.opt.step(&mut params)?;
                let finite = params.iter().all(|(_, p)| all_finite(p.value.data()));
                drop(params);
                if !finite {
                    return Ok(self.abort(m, opt_before, return_norm_before));
                }
                n_steps += 1;
            }
            epochs_done = epoch + 1;
            if c.kl_check == KlCheck::Epoch
                && kl_limit.is_some_and(|limit| epoch_kl / epoch_batches.max(1) as f64 > limit)
            {
                m.kl_stopped = true;
                break;
            }
        }
        let nb = n_batches.max(1) as f64;
        m.policy_gradient_loss = sum_pg / nb;
        m.value_loss = sum_v / nb;
        m.entropy_loss = -sum_ent / nb;
        m.approx_kl = sum_kl / nb;
        m.clip_fraction = sum_clip / nb;
        m.value_clip_fraction = (c.value_clip != ValueClip::None).then_some(sum_vclip / nb);
        m.grad_norm = sum_gnorm / n_steps.max(1) as f64;
        if self.net.recurrent().is_some() {
            m.lstm_saturation = Some(sum_sat_hidden / nb);
            m.lstm_gate_saturation = Some(sum_sat_gates / nb);
        }
        m.epochs = epochs_done;
        self.counters.n_updates += epochs_done as u64;
        self.counters.gradient_steps += n_steps as u64;
        m.n_updates = self.counters.n_updates;
        m.gradient_steps = self.counters.gradient_steps;
        m.nonfinite_skips = self.counters.nonfinite_skips;
        m.std = self.net.mean_std();
        Ok(m)
    }

    /// Gathers minibatch `indices[start..start + len]`: that many samples,
    /// or for a recurrent policy that many whole sequences (time-major).
    fn gather_minibatch(&mut self, start: usize, len: usize) {
        let (od, bd, ad) = (
            self.buffer.obs_dim(),
            self.buffer.obs_bytes_dim(),
            self.buffer.act_dim(),
        );
        let sc = &mut self.scratch;
        let units = &sc.indices[start..start + len];
        match &self.sequences {
            Some(store) => {
                let seq = sc.mb.sequences.get_or_insert_with(SequenceBatch::default);
                store.gather(units, seq, &mut sc.rows);
            }
            None => {
                sc.mb.sequences = None;
                sc.rows.clear();
                sc.rows.extend_from_slice(units);
            }
        }
        let idx = &sc.rows;
        let len = idx.len();
        let mb = &mut sc.mb;
        mb.obs.resize(&[len, od]);
        mb.actions.resize(&[len, ad]);
        mb.obs_bytes.clear();
        for &k in idx {
            mb.obs_bytes
                .extend_from_slice(&self.buffer.obs_bytes[k * bd..(k + 1) * bd]);
        }
        for (r, &k) in idx.iter().enumerate() {
            mb.obs.data_mut()[r * od..(r + 1) * od]
                .copy_from_slice(&self.buffer.obs[k * od..(k + 1) * od]);
            mb.actions.data_mut()[r * ad..(r + 1) * ad]
                .copy_from_slice(&self.buffer.actions[k * ad..(k + 1) * ad]);
        }
        let pick = |dst: &mut Vec<f32>, src: &[f32]| {
            dst.clear();
            dst.extend(idx.iter().map(|&k| src[k]));
        };
        pick(&mut mb.old_log_prob, &self.buffer.log_probs);
        pick(&mut mb.advantages, &self.buffer.advantages);
        pick(&mut mb.returns, &sc.targets);
        pick(&mut mb.old_values, &sc.old_values);
        if self.config.normalize_advantage {
            normalize_advantages(
                &mut mb.advantages,
                self.config.advantage_norm,
                self.config.advantage_std_threshold,
            );
        }
    }

    fn abort(
        &mut self,
        m: PpoMetrics,
        opt_before: hlynr_nn::Adam,
        return_norm_before: Option<crate::normalize_returns::ReturnNormalizer>,
    ) -> PpoMetrics {
        self.restore_params();
        self.opt = opt_before;
        self.return_norm = return_norm_before;
        self.finish_skipped(m, None)
    }

    fn finish_skipped(&mut self, mut m: PpoMetrics, _reason: Option<&str>) -> PpoMetrics {
        self.net.zero_grad();
        self.counters.nonfinite_skips += 1;
        m.nonfinite_skipped = true;
        m.nonfinite_skips = self.counters.nonfinite_skips;
        m.n_updates = self.counters.n_updates;
        m.gradient_steps = self.counters.gradient_steps;
        m.std = self.net.mean_std();
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(value_clip: ValueClip, loss: ValueClipLoss, kind: ValueLoss) -> LossSettings {
        LossSettings {
            clip_range: 0.2,
            ent_coefs: vec![0.0],
            vf_coef: 0.5,
            value_clip,
            clip_range_vf: 0.5,
            value_clip_loss: loss,
            value_loss: kind,
            huber_delta: 1.0,
        }
    }

    #[test]
    fn value_sample_variants_match_their_definitions() {
        let s = settings(ValueClip::None, ValueClipLoss::Clipped, ValueLoss::Mse);
        assert_eq!(value_sample(&s, 2.0, 0.0, 0.5), (2.25, 3.0, false));
        // Absolute clip, SB3: V_clip = 0 + 0.5 -> loss (0.5 - 0.5)^2 = 0, no gradient.
        let s = settings(ValueClip::Absolute, ValueClipLoss::Clipped, ValueLoss::Mse);
        assert_eq!(value_sample(&s, 2.0, 0.0, 0.5), (0.0, 0.0, true));
        // Max: unclipped loss 2.25 > clipped 0 -> unclipped with its gradient.
        let s = settings(ValueClip::Absolute, ValueClipLoss::Max, ValueLoss::Mse);
        assert_eq!(value_sample(&s, 2.0, 0.0, 0.5), (2.25, 3.0, false));
        // Max with target beyond: V=2, old 0, R=3: lu = 1, lc = (0.5-3)^2 = 6.25.
        assert_eq!(value_sample(&s, 2.0, 0.0, 3.0), (6.25, 0.0, true));
        // Relative: half-width 0.5 * |4| = 2, V moved by 1 -> inside.
        let s = settings(ValueClip::Relative, ValueClipLoss::Clipped, ValueLoss::Mse);
        assert_eq!(value_sample(&s, 5.0, 4.0, 6.0), (1.0, -2.0, false));
        assert_eq!(value_sample(&s, 7.0, 4.0, 6.0), (0.0, 0.0, true));
        // Cap.
        let s = settings(
            ValueClip::SquaredErrorCap,
            ValueClipLoss::Clipped,
            ValueLoss::Mse,
        );
        assert_eq!(value_sample(&s, 2.0, 0.0, 0.0), (0.5, 0.0, true));
        assert_eq!(value_sample(&s, 0.5, 0.0, 0.0), (0.25, 1.0, false));
        // Huber and the mixture.
        assert_eq!(base_value_loss(ValueLoss::Huber, 1.0, 3.0), (2.5, 1.0));
        assert_eq!(base_value_loss(ValueLoss::Huber, 1.0, -0.5), (0.125, -0.5));
        assert_eq!(base_value_loss(ValueLoss::MseHuber, 1.0, 3.0), (5.75, 3.5));
    }

    #[test]
    fn advantage_normalisation_modes() {
        let mut a = [1.0f32, 3.0];
        normalize_advantages(&mut a, AdvantageNorm::Standard, 0.0);
        let s = 2.0f64.sqrt();
        assert!((a[0] as f64 + 1.0 / s).abs() < 1e-6 && (a[1] as f64 - 1.0 / s).abs() < 1e-6);
        let mut a = [1.0f32, 1.001];
        normalize_advantages(&mut a, AdvantageNorm::Robust, 0.01);
        assert!(
            (a[0] + 0.0005).abs() < 1e-6 && (a[1] - 0.0005).abs() < 1e-6,
            "{a:?}"
        );
        let mut a = [1.0f32, 3.0];
        normalize_advantages(&mut a, AdvantageNorm::Robust, 0.01);
        assert!((a[1] as f64 - 1.0 / s).abs() < 1e-6);
    }

    #[test]
    fn explained_variance_definition() {
        assert_eq!(
            explained_variance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]),
            Some(1.0)
        );
        assert_eq!(explained_variance(&[0.0, 0.0], &[1.0, 3.0]), Some(0.0));
        assert_eq!(explained_variance(&[0.0, 0.0], &[1.0, 1.0]), None);
    }
}
