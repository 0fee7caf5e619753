//! The `Policy` interface shared by learned networks and hand-written controllers.
//!
//! It lives here, beside `Env`, so that neither the algorithms crate nor the
//! environment crates depend on each other: a guidance law in an environment
//! crate and a trained network in the RL crate are evaluated by the same code.
//!
//! A policy sees the observation batch and, optionally, the environments'
//! *controller view* (see [`crate::Env::write_controller_view`]): the same
//! estimated quantities the observation is built from, in SI units and full
//! precision, so a classical controller need not decode normalised features.
//! Learned networks read only the observation.

use crate::obs::ObsRef;

/// What a policy is given for one batch of `n` environments.
#[derive(Clone, Copy, Debug)]
pub struct PolicyInput<'a> {
    /// Number of rows.
    pub n: usize,
    /// Observations' value lane, `[n, obs_dim]` row-major.
    pub obs: &'a [f32],
    /// Observations' byte lane, `[n, byte_dim]` row-major (empty when the
    /// observation space has no byte box).
    pub obs_bytes: &'a [u8],
    /// Controller views, `[n, view_dim]` row-major (empty when the
    /// environment publishes none).
    pub controller_view: &'a [f64],
}

impl<'a> PolicyInput<'a> {
    /// Both lanes of the observations.
    pub fn observations(&self) -> ObsRef<'a> {
        ObsRef::new(self.obs, self.obs_bytes)
    }

    /// Observation row `i` (both lanes).
    pub fn obs_row(&self, i: usize) -> ObsRef<'a> {
        self.observations().row(i, self.n)
    }

    /// Controller-view row `i` (empty when there is none).
    pub fn view_row(&self, i: usize) -> &[f64] {
        let d = self.controller_view.len() / self.n.max(1);
        &self.controller_view[i * d..(i + 1) * d]
    }
}

/// Maps a batch of observations to a batch of actions.
pub trait Policy: Send {
    /// Short name for reports (`"zem-pn"`, `"ppo"`).
    fn name(&self) -> &str;

    /// Computes actions for `input.n` environments, writing `[n, act_dim]`
    /// flat actions into `actions`. `deterministic` selects the mode of a
    /// stochastic policy.
    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        deterministic: bool,
        actions: &mut [f32],
    ) -> Result<(), String>;

    /// Called with the indices of environments that start a new episode, so
    /// stateful (recurrent) policies can reset their memory for those rows.
    fn reset_rows(&mut self, _rows: &[usize]) {}
}
