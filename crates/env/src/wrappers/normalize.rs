//! Observation and reward normalisation with running statistics.
//!
//! Network inputs and value targets train best near zero mean and unit scale,
//! but the true scales are unknown before training, so they are estimated online:
//! - [`RunningMeanStd`] merges the mean and variance of each new batch into the
//!   running ones (the parallel algorithm of Chan, Golub and LeVeque), in `f64`.
//! - [`ObsNormalizer`] maps each observation slot to `(x - mean) / sqrt(var + eps)`
//!   clipped to `±clip_obs`.
//! - [`RewardScaler`] divides rewards by the running standard deviation of the
//!   discounted return (not of the reward), which keeps the scale of value
//!   targets steady; rewards are not shifted, so their sign is kept.
//! - [`VecNormalize`] applies both to a [`BatchEnv`], keeping the raw buffers
//!   beside the normalised ones so true returns can still be logged.
//!
//! Statistics are part of checkpoints (serde, restored exactly) and are frozen
//! for evaluation: frozen statistics are used but never updated.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::env::{Info, from_state, to_state};
use crate::error::{EnvError, Result};
use crate::space::Space;
use crate::vec_env::{BatchEnv, copy_f32_bits, f32_bits};

/// Running per-dimension mean and (population) variance of a stream of vectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    mean: Vec<f64>,
    var: Vec<f64>,
    count: f64,
}

impl RunningMeanStd {
    /// Pseudo-count of the prior (mean 0, variance 1) the statistics start from;
    /// it keeps the first normalisation finite and matches Stable-Baselines3.
    pub const DEFAULT_INITIAL_COUNT: f64 = 1e-4;

    /// Statistics of `dim`-dimensional vectors, starting from mean 0, variance 1
    /// with weight [`Self::DEFAULT_INITIAL_COUNT`].
    pub fn new(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: Self::DEFAULT_INITIAL_COUNT,
        }
    }

    /// Like [`Self::new`] with a chosen prior weight (0 makes the statistics
    /// exactly those of the data seen).
    pub fn with_initial_count(dim: usize, initial_count: f64) -> Result<Self> {
        if !(initial_count.is_finite() && initial_count >= 0.0) {
            return Err(EnvError::invalid(
                "RunningMeanStd",
                format!("initial count must be finite and >= 0, got {initial_count}"),
            ));
        }
        Ok(Self {
            count: initial_count,
            ..Self::new(dim)
        })
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Running mean per dimension.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Running population variance per dimension.
    pub fn var(&self) -> &[f64] {
        &self.var
    }

    /// Number of vectors seen, plus the initial pseudo-count.
    pub fn count(&self) -> f64 {
        self.count
    }

    /// Merges a batch of vectors laid out `[rows, dim]` row-major. The batch must
    /// be finite; on error nothing changes. An empty batch is a no-op.
    pub fn update<T: Copy + Into<f64>>(&mut self, batch: &[T]) -> Result<()> {
        let dim = self.dim();
        if dim == 0 || batch.is_empty() {
            return Ok(());
        }
        if !batch.len().is_multiple_of(dim) {
            return Err(EnvError::invalid(
                "RunningMeanStd::update",
                format!(
                    "batch of {} values is not a whole number of {dim}-dimensional rows",
                    batch.len()
                ),
            ));
        }
        if let Some(pos) = batch.iter().position(|&x| !x.into().is_finite()) {
            return Err(EnvError::invalid(
                "RunningMeanStd::update",
                format!(
                    "row {} dimension {} is {}",
                    pos / dim,
                    pos % dim,
                    batch[pos].into()
                ),
            ));
        }
        let rows = batch.len() / dim;
        let batch_count = rows as f64;
        let total = self.count + batch_count;
        for j in 0..dim {
            let column = batch.iter().skip(j).step_by(dim).map(|&x| x.into());
            let batch_mean = column.clone().sum::<f64>() / batch_count;
            let batch_var = column.map(|x| (x - batch_mean).powi(2)).sum::<f64>() / batch_count;
            self.merge_dim(j, batch_mean, batch_var, batch_count, total);
        }
        self.count = total;
        Ok(())
    }

    /// Merges precomputed batch moments (`batch_var` is the population variance).
    pub fn update_from_moments(
        &mut self,
        batch_mean: &[f64],
        batch_var: &[f64],
        batch_count: f64,
    ) -> Result<()> {
        let dim = self.dim();
        if batch_mean.len() != dim || batch_var.len() != dim {
            return Err(EnvError::invalid(
                "RunningMeanStd::update_from_moments",
                format!(
                    "moments have {} and {} entries, statistics have {dim}",
                    batch_mean.len(),
                    batch_var.len()
                ),
            ));
        }
        let finite = batch_mean.iter().chain(batch_var).all(|x| x.is_finite());
        let valid = finite
            && batch_count.is_finite()
            && batch_count > 0.0
            && batch_var.iter().all(|&v| v >= 0.0);
        if !valid {
            return Err(EnvError::invalid(
                "RunningMeanStd::update_from_moments",
                format!(
                    "need finite moments, variances >= 0 and a count > 0 (count {batch_count})"
                ),
            ));
        }
        let total = self.count + batch_count;
        for j in 0..dim {
            self.merge_dim(j, batch_mean[j], batch_var[j], batch_count, total);
        }
        self.count = total;
        Ok(())
    }

    /// Chan et al.: combine the sums of squared deviations of the two parts plus
    /// the correction for the distance between their means.
    #[inline]
    fn merge_dim(
        &mut self,
        j: usize,
        batch_mean: f64,
        batch_var: f64,
        batch_count: f64,
        total: f64,
    ) {
        let delta = batch_mean - self.mean[j];
        let m2 = self.var[j] * self.count
            + batch_var * batch_count
            + delta * delta * self.count * batch_count / total;
        self.mean[j] += delta * batch_count / total;
        self.var[j] = m2 / total;
    }
}

fn check_clip_eps(context: &str, clip: f32, epsilon: f64) -> Result<()> {
    // NaN fails this comparison too.
    if clip.is_nan() || clip <= 0.0 {
        return Err(EnvError::invalid(
            context,
            format!("clip must be > 0, got {clip}"),
        ));
    }
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(EnvError::invalid(
            context,
            format!("epsilon must be finite and > 0, got {epsilon}"),
        ));
    }
    Ok(())
}

/// Per-slot observation standardisation with running statistics and clipping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObsNormalizer {
    stats: RunningMeanStd,
    clip_obs: f32,
    epsilon: f64,
    frozen: bool,
}

impl ObsNormalizer {
    /// Default clip of normalised observations.
    pub const DEFAULT_CLIP: f32 = 10.0;
    /// Default variance floor inside the square root.
    pub const DEFAULT_EPSILON: f64 = 1e-8;

    /// A normaliser for `dim`-slot observations with the default clip and epsilon.
    pub fn new(dim: usize) -> Self {
        Self {
            stats: RunningMeanStd::new(dim),
            clip_obs: Self::DEFAULT_CLIP,
            epsilon: Self::DEFAULT_EPSILON,
            frozen: false,
        }
    }

    /// A normaliser with a chosen clip (> 0, may be infinite) and epsilon (> 0).
    pub fn with_config(dim: usize, clip_obs: f32, epsilon: f64) -> Result<Self> {
        check_clip_eps("ObsNormalizer", clip_obs, epsilon)?;
        Ok(Self {
            clip_obs,
            epsilon,
            ..Self::new(dim)
        })
    }

    /// Observation slots.
    pub fn dim(&self) -> usize {
        self.stats.dim()
    }

    /// The running statistics.
    pub fn stats(&self) -> &RunningMeanStd {
        &self.stats
    }

    /// Clip of normalised values.
    pub fn clip_obs(&self) -> f32 {
        self.clip_obs
    }

    /// Variance floor inside the square root.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Stops updating the statistics (evaluation); they are still applied.
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    /// Resumes updating the statistics.
    pub fn unfreeze(&mut self) {
        self.frozen = false;
    }

    /// True while the statistics are frozen.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Merges a `[rows, dim]` batch of raw observations unless frozen.
    pub fn update(&mut self, batch: &[f32]) -> Result<()> {
        if self.frozen {
            return Ok(());
        }
        self.stats.update(batch)
    }

    /// [`ObsNormalizer::update`] with the rows that hold a NaN or an infinity
    /// left out, so one broken observation cannot poison the statistics for
    /// the rest of the run (the learner sees such rows and refuses them),
    /// and, given a mask (see [`crate::BatchEnv::active`]), the rows that hold
    /// no agent.
    pub fn update_finite_rows(&mut self, batch: &[f32], active: Option<&[bool]>) -> Result<()> {
        let dim = self.dim();
        if dim == 0 || (active.is_none() && batch.iter().all(|v| v.is_finite())) {
            return self.update(batch);
        }
        let kept: Vec<f32> = batch
            .chunks(dim)
            .enumerate()
            .filter(|&(i, row)| active.is_none_or(|a| a[i]) && row.iter().all(|v| v.is_finite()))
            .flat_map(|(_, row)| row)
            .copied()
            .collect();
        self.update(&kept)
    }

    /// Writes the normalised `[rows, dim]` batch `raw` into `out`.
    pub fn normalize(&self, raw: &[f32], out: &mut [f32]) -> Result<()> {
        let dim = self.dim();
        if raw.len() != out.len()
            || (dim > 0 && !raw.len().is_multiple_of(dim))
            || (dim == 0 && !raw.is_empty())
        {
            return Err(EnvError::invalid(
                "ObsNormalizer::normalize",
                format!(
                    "input of {} values and output of {} values for {dim}-slot observations",
                    raw.len(),
                    out.len()
                ),
            ));
        }
        if dim == 0 {
            return Ok(());
        }
        let clip = f64::from(self.clip_obs);
        for (raw_row, out_row) in raw.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            for (((o, &x), &mean), &var) in out_row
                .iter_mut()
                .zip(raw_row)
                .zip(&self.stats.mean)
                .zip(&self.stats.var)
            {
                let z = (f64::from(x) - mean) / (var + self.epsilon).sqrt();
                // A NaN or infinite input stays so (clipping would disguise
                // an infinity as an ordinary extreme value).
                *o = if x.is_finite() {
                    z.clamp(-clip, clip) as f32
                } else {
                    x
                };
            }
        }
        Ok(())
    }
}

/// Scales rewards by the running standard deviation of each environment's
/// discounted return.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardScaler {
    stats: RunningMeanStd,
    /// Running discounted return per environment, reset to 0 where an episode ends.
    returns: Vec<f64>,
    gamma: f64,
    clip_reward: f32,
    epsilon: f64,
    frozen: bool,
}

impl RewardScaler {
    /// Default clip of scaled rewards.
    pub const DEFAULT_CLIP: f32 = 10.0;
    /// Default variance floor inside the square root.
    pub const DEFAULT_EPSILON: f64 = 1e-8;

    /// A scaler for `num_envs` environments with discount `gamma` in `[0, 1]` and
    /// the default clip and epsilon.
    pub fn new(num_envs: usize, gamma: f64) -> Result<Self> {
        Self::with_config(num_envs, gamma, Self::DEFAULT_CLIP, Self::DEFAULT_EPSILON)
    }

    /// A scaler with a chosen clip (> 0, may be infinite) and epsilon (> 0).
    pub fn with_config(
        num_envs: usize,
        gamma: f64,
        clip_reward: f32,
        epsilon: f64,
    ) -> Result<Self> {
        if !(0.0..=1.0).contains(&gamma) {
            return Err(EnvError::invalid(
                "RewardScaler",
                format!("gamma must be in [0, 1], got {gamma}"),
            ));
        }
        check_clip_eps("RewardScaler", clip_reward, epsilon)?;
        Ok(Self {
            stats: RunningMeanStd::new(1),
            returns: vec![0.0; num_envs],
            gamma,
            clip_reward,
            epsilon,
            frozen: false,
        })
    }

    /// Number of environments.
    pub fn num_envs(&self) -> usize {
        self.returns.len()
    }

    /// Statistics of the discounted return.
    pub fn stats(&self) -> &RunningMeanStd {
        &self.stats
    }

    /// Running discounted return per environment.
    pub fn returns(&self) -> &[f64] {
        &self.returns
    }

    /// Stops updating the statistics (evaluation); they are still applied.
    /// Returns keep being tracked so that unfreezing continues correctly.
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    /// Resumes updating the statistics.
    pub fn unfreeze(&mut self) {
        self.frozen = false;
    }

    /// True while the statistics are frozen.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Forgets the running returns (all episodes restarted).
    pub fn reset_returns(&mut self) {
        self.returns.fill(0.0);
    }

    /// Scales one step of rewards: accumulates the discounted returns, merges
    /// them into the statistics (unless frozen), writes
    /// `clip(reward / sqrt(var + eps))` into `out` and restarts the returns of
    /// finished episodes. Given a mask (see [`crate::BatchEnv::active`]),
    /// only the returns of rows that held an agent enter the statistics. On
    /// error nothing changes.
    pub fn scale(
        &mut self,
        rewards: &[f32],
        terminated: &[bool],
        truncated: &[bool],
        active: Option<&[bool]>,
        out: &mut [f32],
    ) -> Result<()> {
        let n = self.returns.len();
        if rewards.len() != n || terminated.len() != n || truncated.len() != n || out.len() != n {
            return Err(EnvError::invalid(
                "RewardScaler::scale",
                format!(
                    "expected {n} rewards, flags and outputs, got {}, {}, {} and {}",
                    rewards.len(),
                    terminated.len(),
                    truncated.len(),
                    out.len()
                ),
            ));
        }
        // A non-finite reward passes through unscaled for the learner to see
        // (and refuse); its env's running return restarts so the statistics
        // stay finite.
        for (ret, &r) in self.returns.iter_mut().zip(rewards) {
            *ret = if r.is_finite() {
                *ret * self.gamma + f64::from(r)
            } else {
                0.0
            };
        }
        if !self.frozen {
            match active {
                None => self.stats.update(&self.returns)?,
                Some(mask) => {
                    let kept: Vec<f64> = self
                        .returns
                        .iter()
                        .zip(mask)
                        .filter(|&(_, &a)| a)
                        .map(|(&r, _)| r)
                        .collect();
                    if !kept.is_empty() {
                        self.stats.update(&kept)?;
                    }
                }
            }
        }
        let std = (self.stats.var[0] + self.epsilon).sqrt();
        let clip = f64::from(self.clip_reward);
        for (o, &r) in out.iter_mut().zip(rewards) {
            *o = if r.is_finite() {
                (f64::from(r) / std).clamp(-clip, clip) as f32
            } else {
                r
            };
        }
        for ((ret, &term), &trunc) in self.returns.iter_mut().zip(terminated).zip(truncated) {
            if term || trunc {
                *ret = 0.0;
            }
        }
        Ok(())
    }
}

/// Settings of [`VecNormalize`]; the defaults are those of Stable-Baselines3.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VecNormalizeConfig {
    /// Normalise observations.
    pub norm_obs: bool,
    /// Scale rewards by the return's standard deviation.
    pub norm_reward: bool,
    /// Clip of normalised observations.
    pub clip_obs: f32,
    /// Clip of scaled rewards.
    pub clip_reward: f32,
    /// Discount of the return whose scale normalises rewards (use the learner's).
    pub gamma: f64,
    /// Variance floor inside the square roots.
    pub epsilon: f64,
}

impl Default for VecNormalizeConfig {
    fn default() -> Self {
        Self {
            norm_obs: true,
            norm_reward: true,
            clip_obs: ObsNormalizer::DEFAULT_CLIP,
            clip_reward: RewardScaler::DEFAULT_CLIP,
            gamma: 0.99,
            epsilon: ObsNormalizer::DEFAULT_EPSILON,
        }
    }
}

/// A [`BatchEnv`] whose observations (current and final) and rewards are
/// normalised with running statistics.
///
/// Statistics are updated with each step's observations (after auto-reset, so
/// the first observations of new episodes are included and final observations
/// are not) and with the batch of discounted returns, then applied. The raw
/// observations and rewards stay available through [`VecNormalize::raw_obs`] and
/// [`VecNormalize::raw_rewards`]; infos are passed through unchanged, so episode
/// statistics report true returns.
///
/// A non-finite raw observation or reward is reported as an error from `step`
/// rather than poisoning the statistics; it means the environment is broken,
/// and the inner batch has already stepped when it is detected.
#[derive(Debug)]
pub struct VecNormalize<V: BatchEnv> {
    inner: V,
    obs_normalizer: Option<ObsNormalizer>,
    reward_scaler: Option<RewardScaler>,
    obs: Vec<f32>,
    final_obs: Vec<f32>,
    rewards: Vec<f32>,
    /// The inner batch's agent mask when the step began (its rewards are
    /// those rows' rewards); `None` for batches without a mask.
    active_before: Option<Vec<bool>>,
}

#[derive(Serialize, Deserialize)]
struct VecNormalizeState {
    obs_normalizer: Option<ObsNormalizer>,
    reward_scaler: Option<RewardScaler>,
    obs: Vec<u32>,
    final_obs: Vec<u32>,
    rewards: Vec<u32>,
    inner: Value,
}

impl<V: BatchEnv> VecNormalize<V> {
    /// Wraps `inner` with fresh statistics.
    pub fn new(inner: V, config: VecNormalizeConfig) -> Result<Self> {
        let n = inner.num_envs();
        let obs_dim = inner.obs_dim();
        let obs_normalizer = if config.norm_obs {
            Some(ObsNormalizer::with_config(
                obs_dim,
                config.clip_obs,
                config.epsilon,
            )?)
        } else {
            None
        };
        let reward_scaler = if config.norm_reward {
            Some(RewardScaler::with_config(
                n,
                config.gamma,
                config.clip_reward,
                config.epsilon,
            )?)
        } else {
            None
        };
        Ok(Self {
            inner,
            obs_normalizer,
            reward_scaler,
            obs: vec![0.0; n * obs_dim],
            final_obs: vec![0.0; n * obs_dim],
            rewards: vec![0.0; n],
            active_before: None,
        })
    }

    /// The wrapped batch.
    pub fn inner(&self) -> &V {
        &self.inner
    }

    /// Unwraps the batch.
    pub fn into_inner(self) -> V {
        self.inner
    }

    /// Observations before normalisation.
    pub fn raw_obs(&self) -> &[f32] {
        self.inner.obs()
    }

    /// Rewards before scaling (for logging true returns).
    pub fn raw_rewards(&self) -> &[f32] {
        self.inner.rewards()
    }

    /// Final observation of env `i` before normalisation.
    pub fn raw_final_observation(&self, i: usize) -> Option<&[f32]> {
        self.inner.final_observation(i)
    }

    /// The observation normaliser, if observations are normalised.
    pub fn obs_normalizer(&self) -> Option<&ObsNormalizer> {
        self.obs_normalizer.as_ref()
    }

    /// The reward scaler, if rewards are scaled.
    pub fn reward_scaler(&self) -> Option<&RewardScaler> {
        self.reward_scaler.as_ref()
    }

    /// Replaces the observation statistics (e.g. loaded from a training
    /// checkpoint for evaluation). The dimension must match; the current
    /// observations are renormalised with them.
    pub fn set_obs_normalizer(&mut self, normalizer: ObsNormalizer) -> Result<()> {
        if normalizer.dim() != self.inner.obs_dim() {
            return Err(EnvError::invalid(
                "VecNormalize::set_obs_normalizer",
                format!(
                    "normaliser has {} slots, observations have {}",
                    normalizer.dim(),
                    self.inner.obs_dim()
                ),
            ));
        }
        normalizer.normalize(self.inner.obs(), &mut self.obs)?;
        self.obs_normalizer = Some(normalizer);
        Ok(())
    }

    /// Replaces the reward scaler; it must track this batch's number of envs.
    pub fn set_reward_scaler(&mut self, scaler: RewardScaler) -> Result<()> {
        if scaler.num_envs() != self.inner.num_envs() {
            return Err(EnvError::invalid(
                "VecNormalize::set_reward_scaler",
                format!(
                    "scaler tracks {} envs, the batch has {}",
                    scaler.num_envs(),
                    self.inner.num_envs()
                ),
            ));
        }
        self.reward_scaler = Some(scaler);
        Ok(())
    }

    /// Freezes both normalisers (evaluation): statistics are applied, never updated.
    pub fn freeze(&mut self) {
        if let Some(o) = &mut self.obs_normalizer {
            o.freeze();
        }
        if let Some(r) = &mut self.reward_scaler {
            r.freeze();
        }
    }

    /// Resumes updating both normalisers.
    pub fn unfreeze(&mut self) {
        if let Some(o) = &mut self.obs_normalizer {
            o.unfreeze();
        }
        if let Some(r) = &mut self.reward_scaler {
            r.unfreeze();
        }
    }

    /// Normalises the final observations of the envs that just finished.
    fn normalize_final_observations(&mut self) -> Result<()> {
        let Some(normalizer) = &self.obs_normalizer else {
            return Ok(());
        };
        let d = self.inner.obs_dim();
        for i in 0..self.inner.num_envs() {
            if let Some(raw) = self.inner.final_observation(i) {
                normalizer.normalize(raw, &mut self.final_obs[i * d..(i + 1) * d])?;
            }
        }
        Ok(())
    }
}

impl<V: BatchEnv> BatchEnv for VecNormalize<V> {
    fn num_envs(&self) -> usize {
        self.inner.num_envs()
    }

    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }

    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }

    fn reset(&mut self, seed: u64) -> Result<()> {
        self.inner.reset(seed)?;
        if let Some(r) = &mut self.reward_scaler {
            r.reset_returns();
        }
        self.rewards.fill(0.0);
        if let Some(o) = &mut self.obs_normalizer {
            o.update_finite_rows(self.inner.obs(), self.inner.active())?;
            o.normalize(self.inner.obs(), &mut self.obs)?;
        }
        Ok(())
    }

    fn step(&mut self, actions: &[f32]) -> Result<()> {
        self.step_async(actions)?;
        self.step_wait()
    }

    fn step_async(&mut self, actions: &[f32]) -> Result<()> {
        match (self.inner.active(), &mut self.active_before) {
            (Some(now), Some(before)) => before.clone_from_slice(now),
            (now, before) => *before = now.map(<[bool]>::to_vec),
        }
        self.inner.step_async(actions)
    }

    fn step_wait(&mut self) -> Result<()> {
        self.inner.step_wait()?;
        if let Some(o) = &mut self.obs_normalizer {
            o.update_finite_rows(self.inner.obs(), self.inner.active())?;
            o.normalize(self.inner.obs(), &mut self.obs)?;
        }
        self.normalize_final_observations()?;
        if let Some(r) = &mut self.reward_scaler {
            r.scale(
                self.inner.rewards(),
                self.inner.terminated(),
                self.inner.truncated(),
                self.active_before.as_deref(),
                &mut self.rewards,
            )?;
        }
        Ok(())
    }

    fn obs(&self) -> &[f32] {
        if self.obs_normalizer.is_some() {
            &self.obs
        } else {
            self.inner.obs()
        }
    }

    /// Bytes are never normalised (networks scale them on input).
    fn obs_bytes(&self) -> &[u8] {
        self.inner.obs_bytes()
    }

    fn rewards(&self) -> &[f32] {
        if self.reward_scaler.is_some() {
            &self.rewards
        } else {
            self.inner.rewards()
        }
    }

    fn terminated(&self) -> &[bool] {
        self.inner.terminated()
    }

    fn truncated(&self) -> &[bool] {
        self.inner.truncated()
    }

    fn infos(&self) -> &[Info] {
        self.inner.infos()
    }

    fn controller_view(&self) -> &[f64] {
        self.inner.controller_view()
    }

    fn controller_view_dim(&self) -> usize {
        self.inner.controller_view_dim()
    }

    fn active(&self) -> Option<&[bool]> {
        self.inner.active()
    }

    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        let raw = self.inner.final_observation(i)?;
        if self.obs_normalizer.is_some() {
            let d = raw.len();
            Some(&self.final_obs[i * d..(i + 1) * d])
        } else {
            Some(raw)
        }
    }

    fn final_observation_bytes(&self, i: usize) -> Option<&[u8]> {
        self.inner.final_observation_bytes(i)
    }

    fn state(&self) -> Value {
        to_state(&VecNormalizeState {
            obs_normalizer: self.obs_normalizer.clone(),
            reward_scaler: self.reward_scaler.clone(),
            obs: f32_bits(&self.obs),
            final_obs: f32_bits(&self.final_obs),
            rewards: f32_bits(&self.rewards),
            inner: self.inner.state(),
        })
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        let saved: VecNormalizeState = from_state("VecNormalize", state)?;
        let n = self.inner.num_envs();
        let d = self.inner.obs_dim();
        if saved.obs_normalizer.is_some() != self.obs_normalizer.is_some()
            || saved.reward_scaler.is_some() != self.reward_scaler.is_some()
        {
            return Err(EnvError::state(
                "VecNormalize",
                "saved normalisers (observation, reward) differ from this wrapper's configuration",
            ));
        }
        if saved.obs_normalizer.as_ref().is_some_and(|o| o.dim() != d)
            || saved
                .reward_scaler
                .as_ref()
                .is_some_and(|r| r.num_envs() != n)
            || saved.obs.len() != n * d
            || saved.final_obs.len() != n * d
            || saved.rewards.len() != n
        {
            return Err(EnvError::state(
                "VecNormalize",
                format!("saved buffers or statistics do not fit {n} envs x {d} observation slots"),
            ));
        }
        self.inner.set_state(&saved.inner)?;
        self.obs_normalizer = saved.obs_normalizer;
        self.reward_scaler = saved.reward_scaler;
        copy_f32_bits(&saved.obs, &mut self.obs);
        copy_f32_bits(&saved.final_obs, &mut self.final_obs);
        copy_f32_bits(&saved.rewards, &mut self.rewards);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlynr_rng::Rng;

    /// Two-pass population mean and variance of each column, as numpy computes
    /// `x.mean(axis=0)` and `x.var(axis=0)`.
    fn column_moments(data: &[f64], dim: usize) -> (Vec<f64>, Vec<f64>) {
        let rows = (data.len() / dim) as f64;
        let mean: Vec<f64> = (0..dim)
            .map(|j| data.iter().skip(j).step_by(dim).sum::<f64>() / rows)
            .collect();
        let var = (0..dim)
            .map(|j| {
                data.iter()
                    .skip(j)
                    .step_by(dim)
                    .map(|x| (x - mean[j]).powi(2))
                    .sum::<f64>()
                    / rows
            })
            .collect();
        (mean, var)
    }

    fn random_data(rng: &mut Rng, rows: usize, dim: usize) -> Vec<f32> {
        (0..rows * dim)
            .map(|k| {
                let j = (k % dim) as f32;
                (3.0 * j - 2.0) + (0.5 + j) * rng.normal_f32()
            })
            .collect()
    }

    fn assert_close(a: f64, b: f64, rel: f64) {
        assert!(
            (a - b).abs() <= rel * b.abs().max(1.0),
            "{a} vs {b} (rel tol {rel})"
        );
    }

    #[test]
    fn running_stats_over_uneven_batches_equal_whole_batch_moments() {
        let mut rng = Rng::seed_from_u64(0);
        let dim = 4;
        let data = random_data(&mut rng, 1000, dim);
        let data64: Vec<f64> = data.iter().map(|&x| f64::from(x)).collect();
        let (mean, var) = column_moments(&data64, dim);

        let mut exact = RunningMeanStd::with_initial_count(dim, 0.0).unwrap();
        let mut with_prior = RunningMeanStd::new(dim);
        let mut start = 0;
        for size in [1, 7, 250, 3, 0, 439, 300] {
            let batch = &data[start * dim..(start + size) * dim];
            exact.update(batch).unwrap();
            with_prior.update(batch).unwrap();
            start += size;
        }
        assert_eq!(start, 1000);
        assert_eq!(exact.count(), 1000.0);
        for j in 0..dim {
            assert_close(exact.mean()[j], mean[j], 1e-12);
            assert_close(exact.var()[j], var[j], 1e-12);
            // The 1e-4 prior (mean 0, variance 1) shifts the estimates by ~1e-7.
            assert_close(with_prior.mean()[j], mean[j], 1e-6);
            assert_close(with_prior.var()[j], var[j], 1e-6);
            assert_ne!(with_prior.mean()[j], exact.mean()[j]);
        }
        // Merging precomputed moments is the same operation.
        let mut from_moments = RunningMeanStd::new(dim);
        from_moments
            .update_from_moments(&mean, &var, 1000.0)
            .unwrap();
        for j in 0..dim {
            assert_close(from_moments.mean()[j], with_prior.mean()[j], 1e-12);
            assert_close(from_moments.var()[j], with_prior.var()[j], 1e-12);
        }
    }

    #[test]
    fn running_stats_reject_bad_batches_without_changing() {
        let mut s = RunningMeanStd::new(3);
        s.update(&[1.0f32, 2.0, 3.0]).unwrap();
        let before = s.clone();
        let err = s
            .update(&[1.0f32, 2.0, 3.0, 4.0, f32::NAN, 6.0])
            .unwrap_err();
        assert!(
            err.to_string().contains("row 1 dimension 1 is NaN"),
            "{err}"
        );
        let err = s.update(&[1.0f32, 2.0]).unwrap_err();
        assert!(err.to_string().contains("2 values"), "{err}");
        assert!(s.update_from_moments(&[0.0; 2], &[1.0; 2], 5.0).is_err());
        assert!(s.update_from_moments(&[0.0; 3], &[-1.0; 3], 5.0).is_err());
        assert!(RunningMeanStd::with_initial_count(3, -1.0).is_err());
        assert_eq!(s, before);
    }

    #[test]
    fn normalised_long_stream_has_zero_mean_and_unit_variance() {
        let mut rng = Rng::seed_from_u64(1);
        let dim = 3;
        let mut norm = ObsNormalizer::new(dim);
        let mut outputs = Vec::new();
        let mut out = vec![0.0f32; 16 * dim];
        for step in 0..2000 {
            let batch = random_data(&mut rng, 16, dim);
            norm.update(&batch).unwrap();
            norm.normalize(&batch, &mut out).unwrap();
            if step >= 200 {
                outputs.extend(out.iter().map(|&x| f64::from(x)));
            }
        }
        let (mean, var) = column_moments(&outputs, dim);
        for j in 0..dim {
            assert!(mean[j].abs() < 0.02, "dim {j} mean {}", mean[j]);
            assert!((var[j] - 1.0).abs() < 0.03, "dim {j} var {}", var[j]);
        }
    }

    #[test]
    fn observations_are_clipped_and_shapes_checked() {
        let mut norm = ObsNormalizer::with_config(2, 3.0, 1e-8).unwrap();
        norm.update(&[0.0f32, 0.0, 2.0, 2.0]).unwrap();
        let mut out = [0.0f32; 2];
        norm.normalize(&[1000.0, -1000.0], &mut out).unwrap();
        assert_eq!(out, [3.0, -3.0]);
        norm.normalize(&[1.0, 2.0], &mut out).unwrap();
        let (m, v) = (norm.stats().mean()[1], norm.stats().var()[1]);
        assert_eq!(out[1], ((2.0 - m) / (v + 1e-8).sqrt()) as f32);
        assert!(norm.normalize(&[1.0, 2.0, 3.0], &mut [0.0; 3]).is_err());
        assert!(ObsNormalizer::with_config(2, 0.0, 1e-8).is_err());
        assert!(ObsNormalizer::with_config(2, 1.0, 0.0).is_err());
    }

    #[test]
    fn reward_scaler_matches_a_hand_simulation() {
        let gamma = 0.9;
        let mut scaler = RewardScaler::new(2, gamma).unwrap();
        let rewards = [[1.0f32, -2.0], [0.5, 4.0], [2.0, 1.0], [-1.0, 3.0]];
        let terminated = [
            [false, false],
            [true, false],
            [false, false],
            [false, false],
        ];
        let truncated = [
            [false, false],
            [false, false],
            [false, true],
            [false, false],
        ];
        // By hand: returns per env, reset after the step where the env finished.
        let mut ret = [0.0f64; 2];
        let mut seen = Vec::new();
        for t in 0..4 {
            let mut out = [0.0f32; 2];
            scaler
                .scale(&rewards[t], &terminated[t], &truncated[t], None, &mut out)
                .unwrap();
            for i in 0..2 {
                ret[i] = ret[i] * gamma + f64::from(rewards[t][i]);
                seen.push(ret[i]);
            }
            // Statistics of every return seen, combined with the prior
            // (mean 0, variance 1, weight 1e-4).
            let n = seen.len() as f64;
            let eps = 1e-4;
            let data_mean = seen.iter().sum::<f64>() / n;
            let data_m2 = seen.iter().map(|x| (x - data_mean).powi(2)).sum::<f64>();
            let var = (eps + data_m2 + data_mean * data_mean * eps * n / (n + eps)) / (n + eps);
            assert_close(scaler.stats().var()[0], var, 1e-12);
            for i in 0..2 {
                let expected = (f64::from(rewards[t][i]) / (var + 1e-8).sqrt()).clamp(-10.0, 10.0);
                assert!((f64::from(out[i]) - expected).abs() < 1e-6 * expected.abs().max(1.0));
                if terminated[t][i] || truncated[t][i] {
                    ret[i] = 0.0;
                }
            }
            assert_eq!(scaler.returns(), &ret);
        }
    }

    #[test]
    fn reward_scaler_clips_and_validates() {
        let mut scaler = RewardScaler::with_config(1, 0.99, 2.0, 1e-8).unwrap();
        let mut out = [0.0f32];
        scaler
            .scale(&[0.0], &[false], &[false], None, &mut out)
            .unwrap();
        scaler
            .scale(&[1e6], &[false], &[false], None, &mut out)
            .unwrap();
        assert_eq!(out, [2.0]);
        // A non-finite reward reaches the learner as it is; the statistics
        // stay finite and the env's return restarts.
        let var = scaler.stats.var[0];
        scaler
            .scale(&[f32::INFINITY], &[false], &[false], None, &mut out)
            .unwrap();
        assert_eq!(out, [f32::INFINITY]);
        assert_eq!(scaler.returns(), &[0.0]);
        assert!(scaler.stats.var[0].is_finite() && scaler.stats.var[0] != var);
        let before = scaler.clone();
        assert!(
            scaler
                .scale(&[1.0, 2.0], &[false], &[false], None, &mut out)
                .is_err()
        );
        assert_eq!(scaler, before);
        assert!(RewardScaler::new(1, 1.5).is_err());
    }

    #[test]
    fn rows_without_an_agent_stay_out_of_the_statistics() {
        // Row 1 holds no agent: the statistics are those of row 0 alone.
        let mut masked = ObsNormalizer::new(2);
        let mut alone = ObsNormalizer::new(2);
        let mut both = RewardScaler::new(2, 0.9).unwrap();
        let mut one = RewardScaler::new(1, 0.9).unwrap();
        let (mut out2, mut out1) = ([0.0f32; 2], [0.0f32; 1]);
        for t in 0..5 {
            let x = t as f32;
            masked
                .update_finite_rows(&[x, -x, 100.0, 100.0], Some(&[true, false]))
                .unwrap();
            alone.update_finite_rows(&[x, -x], None).unwrap();
            both.scale(
                &[x, 50.0],
                &[false; 2],
                &[false; 2],
                Some(&[true, false]),
                &mut out2,
            )
            .unwrap();
            one.scale(&[x], &[false], &[false], None, &mut out1)
                .unwrap();
            assert_eq!(out2[0], out1[0]);
        }
        assert_eq!(masked.stats().mean, alone.stats().mean);
        assert_eq!(masked.stats().var, alone.stats().var);
        assert_eq!(both.stats().var, one.stats().var);
    }

    #[test]
    fn frozen_normalisers_apply_but_do_not_update() {
        let mut rng = Rng::seed_from_u64(2);
        let mut norm = ObsNormalizer::new(3);
        norm.update(&random_data(&mut rng, 50, 3)).unwrap();
        norm.freeze();
        let frozen = norm.clone();
        let batch = random_data(&mut rng, 50, 3);
        norm.update(&batch).unwrap();
        assert_eq!(norm, frozen);
        norm.unfreeze();
        norm.update(&batch).unwrap();
        assert_ne!(norm.stats(), frozen.stats());

        let mut scaler = RewardScaler::new(2, 0.99).unwrap();
        let mut out = [0.0f32; 2];
        scaler
            .scale(&[1.0, 2.0], &[false; 2], &[false; 2], None, &mut out)
            .unwrap();
        scaler.freeze();
        let stats = scaler.stats().clone();
        scaler
            .scale(&[5.0, -3.0], &[false; 2], &[false; 2], None, &mut out)
            .unwrap();
        assert_eq!(scaler.stats(), &stats);
        let std = (stats.var()[0] + 1e-8).sqrt();
        assert_eq!(out, [(5.0 / std) as f32, (-3.0 / std) as f32]);
    }

    #[test]
    fn serialised_normalisers_restore_to_identical_outputs() {
        let mut rng = Rng::seed_from_u64(3);
        let mut norm = ObsNormalizer::new(3);
        let mut scaler = RewardScaler::new(4, 0.97).unwrap();
        let mut out = [0.0f32; 4];
        for _ in 0..20 {
            norm.update(&random_data(&mut rng, 4, 3)).unwrap();
            let r: Vec<f32> = (0..4).map(|_| rng.normal_f32()).collect();
            scaler
                .scale(&r, &[false; 4], &[false; 4], None, &mut out)
                .unwrap();
        }
        let norm_back: ObsNormalizer =
            serde_json::from_str(&serde_json::to_string(&norm).unwrap()).unwrap();
        let mut scaler_back: RewardScaler =
            serde_json::from_str(&serde_json::to_string(&scaler).unwrap()).unwrap();
        assert_eq!(norm_back, norm);
        assert_eq!(scaler_back, scaler);
        let batch = random_data(&mut rng, 4, 3);
        let (mut a, mut b) = ([0.0f32; 12], [0.0f32; 12]);
        norm.normalize(&batch, &mut a).unwrap();
        norm_back.normalize(&batch, &mut b).unwrap();
        assert_eq!(a, b);
        let (mut ra, mut rb) = ([0.0f32; 4], [0.0f32; 4]);
        let r = [0.3, -1.0, 2.0, 0.0];
        let done = [true, false, false, true];
        scaler.scale(&r, &done, &[false; 4], None, &mut ra).unwrap();
        scaler_back
            .scale(&r, &done, &[false; 4], None, &mut rb)
            .unwrap();
        assert_eq!(ra, rb);
        assert_eq!(scaler, scaler_back);
    }
}
