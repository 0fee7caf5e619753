//! The `Policy` interface shared by learned networks and hand-written controllers.
//!
//! It lives here, beside `Env`, so that neither the algorithms crate nor the
//! environment crates depend on each other: a guidance law in an environment
//! crate and a trained network in the RL crate are evaluated by the same code.

/// Maps a batch of observations to a batch of actions.
pub trait Policy: Send {
    /// Short name for reports (`"zem-pn"`, `"ppo"`).
    fn name(&self) -> &str;

    /// Computes actions for `n` observations laid out as `[n, obs_dim]` in `obs`,
    /// writing `[n, act_dim]` flat actions into `actions`. `deterministic`
    /// selects the mode of a stochastic policy.
    fn act(
        &mut self,
        obs: &[f32],
        n: usize,
        deterministic: bool,
        actions: &mut [f32],
    ) -> Result<(), String>;

    /// Called with the indices of environments that start a new episode, so
    /// stateful (recurrent) policies can reset their memory for those rows.
    fn reset_rows(&mut self, _rows: &[usize]) {}
}
