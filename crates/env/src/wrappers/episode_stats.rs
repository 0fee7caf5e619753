//! Records the undiscounted return and length of each episode.

use crate::obs::ObsMut;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::env::{Env, EpisodeStats, Info, Step, from_state, to_state};
use crate::error::Result;
use crate::space::Space;

/// Accumulates the undiscounted return and the length of the current episode
/// and reports them in `info.episode` on its final step.
///
/// Place it outside [`super::TimeLimit`] so that truncated episodes are
/// reported too, and inside any reward normalisation so that the reported
/// return is the true one.
#[derive(Debug, Clone)]
pub struct EpisodeStatistics<E> {
    inner: E,
    episode_return: f64,
    episode_length: u64,
}

#[derive(Serialize, Deserialize)]
struct EpisodeStatisticsState {
    episode_return: f64,
    episode_length: u64,
    inner: Value,
}

impl<E: Env> EpisodeStatistics<E> {
    /// Wraps `inner`.
    pub fn new(inner: E) -> Self {
        Self {
            inner,
            episode_return: 0.0,
            episode_length: 0,
        }
    }

    /// Return and length of the episode in progress.
    pub fn current(&self) -> EpisodeStats {
        EpisodeStats {
            episode_return: self.episode_return,
            episode_length: self.episode_length,
        }
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The wrapped environment, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// Unwraps the environment.
    pub fn into_inner(self) -> E {
        self.inner
    }
}

impl<E: Env> Env for EpisodeStatistics<E> {
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }

    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }

    fn reset(&mut self, seed: Option<u64>, obs: ObsMut<'_>, info: &mut Info) -> Result<()> {
        self.episode_return = 0.0;
        self.episode_length = 0;
        self.inner.reset(seed, obs, info)?;
        Ok(())
    }

    #[inline]
    fn step(&mut self, action: &[f32], obs: ObsMut<'_>, info: &mut Info) -> Result<Step> {
        let step = self.inner.step(action, obs, info)?;
        self.episode_return += step.reward;
        self.episode_length += 1;
        if step.done() {
            info.episode = Some(self.current());
        }
        Ok(step)
    }

    fn state(&self) -> Value {
        to_state(&EpisodeStatisticsState {
            episode_return: self.episode_return,
            episode_length: self.episode_length,
            inner: self.inner.state(),
        })
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        let saved: EpisodeStatisticsState = from_state("EpisodeStatistics", state)?;
        self.inner.set_state(&saved.inner)?;
        self.episode_return = saved.episode_return;
        self.episode_length = saved.episode_length;
        Ok(())
    }

    fn controller_view_dim(&self) -> usize {
        self.inner.controller_view_dim()
    }

    fn write_controller_view(&self, out: &mut [f64]) {
        self.inner.write_controller_view(out)
    }
}
