//! Truncates episodes after a fixed number of steps.

use crate::obs::ObsMut;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::env::{Env, Info, Step, from_state, to_state};
use crate::error::{EnvError, Result};
use crate::space::Space;

/// Ends every episode after at most `max_episode_steps` steps by setting
/// `truncated`.
///
/// The cut is a truncation, not a termination: the state after the last step
/// still has value, so learners bootstrap from the final observation. When the
/// inner env terminates on the very step the limit is reached, the episode is
/// reported as terminated only, since the true end takes precedence.
#[derive(Debug, Clone)]
pub struct TimeLimit<E> {
    inner: E,
    max_episode_steps: u64,
    elapsed_steps: u64,
}

#[derive(Serialize, Deserialize)]
struct TimeLimitState {
    elapsed_steps: u64,
    inner: Value,
}

impl<E: Env> TimeLimit<E> {
    /// Wraps `inner`; `max_episode_steps` must be at least 1.
    pub fn new(inner: E, max_episode_steps: u64) -> Result<Self> {
        if max_episode_steps == 0 {
            return Err(EnvError::invalid(
                "TimeLimit",
                "max_episode_steps must be at least 1, got 0",
            ));
        }
        Ok(Self {
            inner,
            max_episode_steps,
            elapsed_steps: 0,
        })
    }

    /// The step limit.
    pub fn max_episode_steps(&self) -> u64 {
        self.max_episode_steps
    }

    /// Steps taken in the current episode.
    pub fn elapsed_steps(&self) -> u64 {
        self.elapsed_steps
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

impl<E: Env> Env for TimeLimit<E> {
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }

    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }

    fn reset(&mut self, seed: Option<u64>, obs: ObsMut<'_>, info: &mut Info) -> Result<()> {
        self.elapsed_steps = 0;
        self.inner.reset(seed, obs, info)?;
        Ok(())
    }

    #[inline]
    fn step(&mut self, action: &[f32], obs: ObsMut<'_>, info: &mut Info) -> Result<Step> {
        let mut step = self.inner.step(action, obs, info)?;
        self.elapsed_steps += 1;
        if self.elapsed_steps >= self.max_episode_steps && !step.terminated {
            step.truncated = true;
        }
        Ok(step)
    }

    fn state(&self) -> Value {
        to_state(&TimeLimitState {
            elapsed_steps: self.elapsed_steps,
            inner: self.inner.state(),
        })
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        let saved: TimeLimitState = from_state("TimeLimit", state)?;
        self.inner.set_state(&saved.inner)?;
        self.elapsed_steps = saved.elapsed_steps;
        Ok(())
    }

    fn controller_view_dim(&self) -> usize {
        self.inner.controller_view_dim()
    }

    fn write_controller_view(&self, out: &mut [f64]) {
        self.inner.write_controller_view(out)
    }
}
