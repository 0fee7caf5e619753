//! The `Env` trait (Gymnasium semantics), step results and episode info.

use serde_json::Value;

use crate::error::Result;
use crate::obs::ObsMut;
use crate::space::Space;

/// Outcome of one step.
///
/// `terminated` is a true end of the episode (the value of the next state is
/// zero: do not bootstrap); `truncated` is an external cut such as a time limit
/// (the episode could have continued: bootstrap from the final observation).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Step {
    /// Reward for the transition.
    pub reward: f64,
    /// The episode reached a terminal state.
    pub terminated: bool,
    /// The episode was cut short (time limit or similar).
    pub truncated: bool,
}

impl Step {
    /// True when the episode ended either way.
    #[inline]
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// Statistics of a finished episode, filled by the episode-statistics wrapper.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpisodeStats {
    /// Undiscounted sum of rewards (before any reward normalisation).
    pub episode_return: f64,
    /// Number of agent steps.
    pub episode_length: u64,
}

/// Per-step information. Allocated once per environment and cleared (keeping its
/// capacity) before every step, so filling it costs no allocation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Info {
    /// The environment's one definition of success, set on the final step of an
    /// episode by environments that define success (`None` otherwise).
    pub is_success: Option<bool>,
    /// Set on the final step by the episode-statistics wrapper.
    pub episode: Option<EpisodeStats>,
    /// Environment-specific metrics in SI units (e.g. `miss_distance_m`).
    pub metrics: Vec<(&'static str, f64)>,
}

impl Info {
    /// Clears every field, keeping the allocation.
    #[inline]
    pub fn clear(&mut self) {
        self.is_success = None;
        self.episode = None;
        self.metrics.clear();
    }

    /// Sets (or replaces) a metric.
    #[inline]
    pub fn set(&mut self, key: &'static str, value: f64) {
        if let Some(slot) = self.metrics.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.metrics.push((key, value));
        }
    }

    /// The value of a metric, if set.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, v)| v)
    }
}

/// A single environment with Gymnasium semantics and flat buffers.
///
/// Observations are written into caller-provided lanes of
/// `observation_space().flat_dim()` values and `byte_dim()` bytes (see
/// [`ObsMut`]); actions are read from a slice in the flat `f32` encoding of the
/// action space (see [`crate::space`]). Every environment owns a
/// seeded, serialisable generator; `reset(Some(seed))` reseeds it, `reset(None)`
/// continues its stream, as in Gymnasium.
///
/// `step` may assume the action is valid for the action space: vectorised
/// environments and [`checked_step`] validate actions before calling it.
pub trait Env: Send {
    /// Space of the flat observation.
    fn observation_space(&self) -> &Space;

    /// Space of the flat action.
    fn action_space(&self) -> &Space;

    /// Starts a new episode and writes its first observation. An error means
    /// the environment itself failed (a simulator fault, a dropped
    /// connection): the caller ends what it was doing and reports it.
    fn reset(&mut self, seed: Option<u64>, obs: ObsMut<'_>, info: &mut Info) -> Result<()>;

    /// Advances one step with a valid action and writes the next
    /// observation. Errors as for [`Env::reset`].
    fn step(&mut self, action: &[f32], obs: ObsMut<'_>, info: &mut Info) -> Result<Step>;

    /// The complete dynamic state (physics, generator, counters) for checkpoints:
    /// restoring it with [`Env::set_state`] continues the episode exactly.
    /// Optional: an env that keeps no snapshots (a remote or real-time env)
    /// leaves the default, `null`, and runs over it cannot resume exactly.
    fn state(&self) -> Value {
        Value::Null
    }

    /// Restores a state produced by [`Env::state`] on an identically
    /// configured env. The default refuses: the env keeps no snapshots.
    fn set_state(&mut self, _state: &Value) -> Result<()> {
        Err(crate::error::EnvError::state(
            "environment",
            "it keeps no state snapshots, so a run over it cannot resume exactly",
        ))
    }

    /// Length of the controller view (0 when the environment publishes none).
    ///
    /// The controller view carries, in SI units and `f64`, the information the
    /// observation is built from (for the interception simulator: the
    /// tracker's estimate and the interceptor's own state), for classical
    /// controllers that implement [`crate::Policy`]. It never carries anything
    /// the observation could not be computed from, unless the environment was
    /// explicitly configured as an oracle.
    fn controller_view_dim(&self) -> usize {
        0
    }

    /// Writes the controller view for the current state into `out`
    /// (`controller_view_dim()` values).
    fn write_controller_view(&self, _out: &mut [f64]) {}
}

impl<E: Env + ?Sized> Env for Box<E> {
    fn observation_space(&self) -> &Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> &Space {
        (**self).action_space()
    }
    fn reset(&mut self, seed: Option<u64>, obs: ObsMut<'_>, info: &mut Info) -> Result<()> {
        (**self).reset(seed, obs, info)
    }
    fn step(&mut self, action: &[f32], obs: ObsMut<'_>, info: &mut Info) -> Result<Step> {
        (**self).step(action, obs, info)
    }
    fn state(&self) -> Value {
        (**self).state()
    }
    fn set_state(&mut self, state: &Value) -> Result<()> {
        (**self).set_state(state)
    }
    fn controller_view_dim(&self) -> usize {
        (**self).controller_view_dim()
    }
    fn write_controller_view(&self, out: &mut [f64]) {
        (**self).write_controller_view(out)
    }
}

/// Validates `action` and `obs` lengths and the action's membership in the
/// action space, then steps. Use this wherever actions come from user code.
pub fn checked_step<E: Env + ?Sized>(
    env: &mut E,
    action: &[f32],
    obs: ObsMut<'_>,
    info: &mut Info,
) -> Result<Step> {
    use crate::error::EnvError;
    let space = env.observation_space();
    for (context, expected, actual) in [
        ("observation values", space.flat_dim(), obs.values.len()),
        ("observation bytes", space.byte_dim(), obs.bytes.len()),
    ] {
        if actual != expected {
            return Err(EnvError::Shape {
                context: context.into(),
                expected,
                actual,
            });
        }
    }
    env.action_space()
        .check(action)
        .map_err(|message| EnvError::InvalidAction {
            env_index: 0,
            message,
        })?;
    info.clear();
    env.step(action, obs, info)
}

/// Serialises any serde state into a JSON value (infallible for plain structs).
pub fn to_state<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("environment state serialises to JSON")
}

/// Deserialises a JSON state, naming the environment on failure.
pub fn from_state<T: serde::de::DeserializeOwned>(context: &str, state: &Value) -> Result<T> {
    serde_json::from_value(state.clone()).map_err(|e| crate::error::EnvError::state(context, e))
}
