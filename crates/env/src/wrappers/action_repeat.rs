//! Repeats each action for several inner steps.

use crate::obs::ObsMut;
use serde_json::Value;

use crate::env::{Env, Info, Step};
use crate::error::{EnvError, Result};
use crate::space::Space;

/// Applies each action `repeat` times, summing the rewards.
///
/// Repetition stops early when the episode ends, so no step is taken past a
/// terminal state; the returned flags and the info are those of the last inner
/// step taken (which is where `is_success` and final metrics are set). The
/// wrapper keeps no state of its own, so its state is the inner env's.
#[derive(Debug, Clone)]
pub struct ActionRepeat<E> {
    inner: E,
    repeat: usize,
}

impl<E: Env> ActionRepeat<E> {
    /// Wraps `inner`; `repeat` must be at least 1.
    pub fn new(inner: E, repeat: usize) -> Result<Self> {
        if repeat == 0 {
            return Err(EnvError::invalid(
                "ActionRepeat",
                "repeat must be at least 1, got 0",
            ));
        }
        Ok(Self { inner, repeat })
    }

    /// Inner steps per action.
    pub fn repeat(&self) -> usize {
        self.repeat
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

impl<E: Env> Env for ActionRepeat<E> {
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }

    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }

    fn reset(&mut self, seed: Option<u64>, obs: ObsMut<'_>, info: &mut Info) -> Result<()> {
        self.inner.reset(seed, obs, info)?;
        Ok(())
    }

    #[inline]
    fn step(&mut self, action: &[f32], mut obs: ObsMut<'_>, info: &mut Info) -> Result<Step> {
        let mut total = Step::default();
        for k in 0..self.repeat {
            if k > 0 {
                // Only the last inner step's info is reported.
                info.clear();
            }
            let step = self.inner.step(action, obs.reborrow(), info)?;
            total.reward += step.reward;
            total.terminated = step.terminated;
            total.truncated = step.truncated;
            if step.done() {
                break;
            }
        }
        Ok(total)
    }

    fn state(&self) -> Value {
        self.inner.state()
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        self.inner.set_state(state)
    }

    fn controller_view_dim(&self) -> usize {
        self.inner.controller_view_dim()
    }

    fn write_controller_view(&self, out: &mut [f64]) {
        self.inner.write_controller_view(out)
    }
}
