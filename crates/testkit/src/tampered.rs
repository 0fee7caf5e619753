//! An environment a test can tamper with step by step: corrupt an
//! observation or a reward, or fail as a dropped connection would.

use hlynr_env::{Env, Info, ObsMut, Space, Step};
use serde_json::{Value, json};

/// Called after every step of the inner env with the step count (from 1),
/// the observation and the step; it may change them or return an error.
pub type StepHook = Box<dyn FnMut(u64, &mut [f32], &mut Step) -> hlynr_env::Result<()> + Send>;

/// `inner` with a [`StepHook`]. Its state is the inner env's and the step
/// count, so a resumed run tampers at the same steps.
pub struct Tampered<E> {
    inner: E,
    steps: u64,
    hook: StepHook,
}

impl<E> std::fmt::Debug for Tampered<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tampered")
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl<E: Env> Tampered<E> {
    /// `inner`, tampered with by `hook`.
    pub fn new(inner: E, hook: StepHook) -> Self {
        Tampered {
            inner,
            steps: 0,
            hook,
        }
    }
}

impl<E: Env> Env for Tampered<E> {
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset(
        &mut self,
        seed: Option<u64>,
        obs: ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<()> {
        self.inner.reset(seed, obs, info)
    }
    fn step(
        &mut self,
        action: &[f32],
        mut obs: ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<Step> {
        self.steps += 1;
        let mut step = self.inner.step(action, obs.reborrow(), info)?;
        (self.hook)(self.steps, obs.values, &mut step)?;
        Ok(step)
    }
    fn state(&self) -> Value {
        json!({"inner": self.inner.state(), "steps": self.steps})
    }
    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        self.inner.set_state(&state["inner"])?;
        self.steps = state["steps"].as_u64().unwrap_or_default();
        Ok(())
    }
}
