//! Environment metrics of finished episodes (`info.metrics` on the final
//! step: miss distance, time of flight, ...) collected during training and
//! logged as `episode/<name>` means.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use hlynr_env::{BatchEnv, Space};
use serde_json::Value;

use crate::metrics::Metrics;

/// A batch that passes everything through and keeps the `info.metrics` of
/// every episode that finished, so the driver can log their means.
pub struct EpisodeMetricsRecorder<B> {
    inner: B,
    finished: EpisodeMetrics,
}

/// The metrics an [`EpisodeMetricsRecorder`] collected: a handle the trainer
/// keeps while the algorithm owns the batch.
#[derive(Clone, Debug, Default)]
pub struct EpisodeMetrics {
    /// Sum and count per metric since the last [`Self::take`].
    sums: Arc<Mutex<BTreeMap<&'static str, (f64, u64)>>>,
}

impl EpisodeMetrics {
    /// Means of the recorded metrics as `episode/<name>`, and clears them.
    pub fn take(&self) -> Metrics {
        let mut map = self.sums.lock().unwrap_or_else(PoisonError::into_inner);
        let out = map
            .iter()
            .map(|(k, &(sum, n))| (format!("episode/{k}"), sum / n as f64))
            .collect();
        map.clear();
        out
    }
}

impl<B> std::fmt::Debug for EpisodeMetricsRecorder<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The inner batch (often a trait object) has no `Debug` of its own.
        f.debug_struct("EpisodeMetricsRecorder")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// Final-step metrics that are codes, not quantities, and are not averaged.
const NOT_AVERAGED: [&str; 1] = ["termination_reason"];

impl<B: BatchEnv> EpisodeMetricsRecorder<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            finished: EpisodeMetrics::default(),
        }
    }

    /// The handle to what this recorder collects.
    pub fn metrics(&self) -> EpisodeMetrics {
        self.finished.clone()
    }
}

impl<B: BatchEnv> BatchEnv for EpisodeMetricsRecorder<B> {
    fn num_envs(&self) -> usize {
        self.inner.num_envs()
    }
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset(&mut self, seed: u64) -> hlynr_env::Result<()> {
        self.inner.reset(seed)
    }
    fn step(&mut self, actions: &[f32]) -> hlynr_env::Result<()> {
        self.step_async(actions)?;
        self.step_wait()
    }
    fn step_async(&mut self, actions: &[f32]) -> hlynr_env::Result<()> {
        self.inner.step_async(actions)
    }
    fn step_wait(&mut self) -> hlynr_env::Result<()> {
        self.inner.step_wait()?;
        let (term, trunc) = (self.inner.terminated(), self.inner.truncated());
        let mut map = self
            .finished
            .sums
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (i, info) in self.inner.infos().iter().enumerate() {
            if !(term[i] || trunc[i]) {
                continue;
            }
            for &(k, v) in &info.metrics {
                if !NOT_AVERAGED.contains(&k) {
                    let slot = map.entry(k).or_insert((0.0, 0));
                    slot.0 += v;
                    slot.1 += 1;
                }
            }
        }
        Ok(())
    }
    fn obs(&self) -> &[f32] {
        self.inner.obs()
    }
    fn obs_bytes(&self) -> &[u8] {
        self.inner.obs_bytes()
    }
    fn rewards(&self) -> &[f32] {
        self.inner.rewards()
    }
    fn terminated(&self) -> &[bool] {
        self.inner.terminated()
    }
    fn truncated(&self) -> &[bool] {
        self.inner.truncated()
    }
    fn infos(&self) -> &[hlynr_env::Info] {
        self.inner.infos()
    }
    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        self.inner.final_observation(i)
    }
    fn final_observation_bytes(&self, i: usize) -> Option<&[u8]> {
        self.inner.final_observation_bytes(i)
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
    fn state(&self) -> Value {
        self.inner.state()
    }
    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        self.inner.set_state(state)
    }
}
