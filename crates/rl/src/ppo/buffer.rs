//! Rollout storage `[n_steps, n_envs]` and generalised advantage estimation.
//!
//! # Episode ends
//!
//! The environments auto-reset within the step (see `hlynr_env::VecEnv`), so
//! `done[t, i]` means *transition `t` of env `i` ended an episode* and the
//! observation stored at `t + 1` already belongs to the next episode. GAE
//! therefore cuts both the bootstrap and the trace at `done[t, i]`:
//!
//! ```text
//! delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)
//! A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}
//! R_t     = A_t + V(s_t)
//! ```
//!
//! with `V(s_T)` the value of the observation after the last step.
//!
//! A *truncated* episode (time limit) could have continued, so its value is
//! not zero: before the transition is stored, the trainer adds
//! `gamma * V(final_observation)` to its reward ([`bootstrap_truncation`]),
//! as Stable-Baselines3 does. A *terminated* episode gets nothing added.

use super::PpoError;

/// Adds the truncation bootstrap `gamma * value_of_final_obs` to a reward.
#[inline]
pub fn bootstrap_truncation(reward: f32, gamma: f64, value_of_final_obs: f32) -> f32 {
    (reward as f64 + gamma * value_of_final_obs as f64) as f32
}

/// Rollout data of `n_steps` vector steps of `n_envs` environments, row
/// `t * n_envs + i` for step `t` of env `i`.
#[derive(Clone, Debug)]
pub struct RolloutBuffer {
    n_steps: usize,
    n_envs: usize,
    obs_dim: usize,
    obs_bytes_dim: usize,
    act_dim: usize,
    pos: usize,
    /// Observations the actions were chosen on, `[T * N, obs_dim]`.
    pub obs: Vec<f32>,
    /// Their byte lanes (frames stay bytes), `[T * N, obs_bytes_dim]`.
    pub obs_bytes: Vec<u8>,
    /// Raw actions (pre-squash samples, category indices), `[T * N, act_dim]`.
    pub actions: Vec<f32>,
    /// Rewards including truncation bootstraps, `[T * N]`.
    pub rewards: Vec<f32>,
    /// Episode ended on this transition (terminated or truncated), `[T * N]`.
    pub dones: Vec<bool>,
    /// `V(s_t)` at collection time (in return units), `[T * N]`.
    pub values: Vec<f32>,
    /// Log-probabilities of the actions at collection time, `[T * N]`.
    pub log_probs: Vec<f32>,
    /// GAE advantages, `[T * N]`.
    pub advantages: Vec<f32>,
    /// `advantages + values`, the value targets, `[T * N]`.
    pub returns: Vec<f32>,
    /// The row held an agent when it acted (see `hlynr_env::BatchEnv::active`);
    /// only these rows are experience. `[T * N]`, all true for batches
    /// without a mask.
    pub active: Vec<bool>,
}

impl RolloutBuffer {
    /// Allocates every buffer once, for observations of `obs_dim` values and
    /// `obs_bytes_dim` bytes.
    pub fn new(
        n_steps: usize,
        n_envs: usize,
        obs_dim: usize,
        obs_bytes_dim: usize,
        act_dim: usize,
    ) -> Self {
        let rows = n_steps * n_envs;
        Self {
            n_steps,
            n_envs,
            obs_dim,
            obs_bytes_dim,
            act_dim,
            pos: 0,
            obs: vec![0.0; rows * obs_dim],
            obs_bytes: vec![0; rows * obs_bytes_dim],
            actions: vec![0.0; rows * act_dim],
            rewards: vec![0.0; rows],
            dones: vec![false; rows],
            values: vec![0.0; rows],
            log_probs: vec![0.0; rows],
            advantages: vec![0.0; rows],
            returns: vec![0.0; rows],
            active: vec![true; rows],
        }
    }

    /// Steps per env.
    pub fn n_steps(&self) -> usize {
        self.n_steps
    }

    /// Number of envs.
    pub fn n_envs(&self) -> usize {
        self.n_envs
    }

    /// Total rows `n_steps * n_envs`.
    pub fn len(&self) -> usize {
        self.n_steps * self.n_envs
    }

    /// True when the buffer has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Observation bytes per row.
    pub fn obs_bytes_dim(&self) -> usize {
        self.obs_bytes_dim
    }

    /// Raw action width.
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }

    /// Vector steps stored so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// True when all `n_steps` are stored.
    pub fn is_full(&self) -> bool {
        self.pos == self.n_steps
    }

    /// Starts a new rollout.
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// Mutable row slices of the next step, to be filled in place by the
    /// collector (observation, raw action, value, log-probability); call
    /// [`RolloutBuffer::finish_step`] with the step's rewards and done flags.
    pub fn next_step_slots(&mut self) -> Result<StepSlots<'_>, PpoError> {
        if self.is_full() {
            return Err(PpoError::invalid(
                "RolloutBuffer",
                format!("already holds all {} steps; call reset", self.n_steps),
            ));
        }
        let (n, t) = (self.n_envs, self.pos);
        Ok(StepSlots {
            obs: &mut self.obs[t * n * self.obs_dim..(t + 1) * n * self.obs_dim],
            obs_bytes: &mut self.obs_bytes
                [t * n * self.obs_bytes_dim..(t + 1) * n * self.obs_bytes_dim],
            actions: &mut self.actions[t * n * self.act_dim..(t + 1) * n * self.act_dim],
            values: &mut self.values[t * n..(t + 1) * n],
            log_probs: &mut self.log_probs[t * n..(t + 1) * n],
            rewards: &mut self.rewards[t * n..(t + 1) * n],
            dones: &mut self.dones[t * n..(t + 1) * n],
            active: &mut self.active[t * n..(t + 1) * n],
        })
    }

    /// Marks the current step complete (its slots filled).
    pub fn finish_step(&mut self) {
        self.pos += 1;
    }

    /// Stores a whole step of value-only observations from slices (tests and
    /// simple collectors).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        obs: &[f32],
        actions: &[f32],
        rewards: &[f32],
        dones: &[bool],
        values: &[f32],
        log_probs: &[f32],
    ) -> Result<(), PpoError> {
        let (n, od, ad) = (self.n_envs, self.obs_dim, self.act_dim);
        if self.obs_bytes_dim > 0 {
            return Err(PpoError::invalid(
                "RolloutBuffer::add",
                "observations with bytes are stored through next_step_slots",
            ));
        }
        if obs.len() != n * od
            || actions.len() != n * ad
            || rewards.len() != n
            || dones.len() != n
            || values.len() != n
            || log_probs.len() != n
        {
            return Err(PpoError::invalid(
                "RolloutBuffer::add",
                format!(
                    "step of {n} envs needs obs {} / actions {} / {n} rewards, dones, values, log_probs; got {} / {} / {}, {}, {}, {}",
                    n * od,
                    n * ad,
                    obs.len(),
                    actions.len(),
                    rewards.len(),
                    dones.len(),
                    values.len(),
                    log_probs.len()
                ),
            ));
        }
        let s = self.next_step_slots()?;
        s.obs.copy_from_slice(obs);
        s.actions.copy_from_slice(actions);
        s.rewards.copy_from_slice(rewards);
        s.dones.copy_from_slice(dones);
        s.values.copy_from_slice(values);
        s.log_probs.copy_from_slice(log_probs);
        s.active.fill(true);
        self.finish_step();
        Ok(())
    }

    /// Computes advantages and returns (see the module documentation) given
    /// `last_values[i] = V(s_T)` of each env.
    pub fn compute_gae(
        &mut self,
        last_values: &[f32],
        gamma: f64,
        gae_lambda: f64,
    ) -> Result<(), PpoError> {
        if !self.is_full() {
            return Err(PpoError::invalid(
                "RolloutBuffer::compute_gae",
                format!("rollout has {} of {} steps", self.pos, self.n_steps),
            ));
        }
        let n = self.n_envs;
        if last_values.len() != n {
            return Err(PpoError::invalid(
                "RolloutBuffer::compute_gae",
                format!("{} last values for {n} envs", last_values.len()),
            ));
        }
        for (i, &last) in last_values.iter().enumerate() {
            let mut next_value = last as f64;
            let mut next_adv = 0.0f64;
            for t in (0..self.n_steps).rev() {
                let k = t * n + i;
                let not_done = if self.dones[k] { 0.0 } else { 1.0 };
                let v = self.values[k] as f64;
                let delta = self.rewards[k] as f64 + gamma * next_value * not_done - v;
                next_adv = delta + gamma * gae_lambda * not_done * next_adv;
                self.advantages[k] = next_adv as f32;
                self.returns[k] = (next_adv + v) as f32;
                next_value = v;
            }
        }
        Ok(())
    }
}

/// The rows of one vector step, filled in place by the collector.
#[derive(Debug)]
pub struct StepSlots<'a> {
    /// `[N, obs_dim]`.
    pub obs: &'a mut [f32],
    /// `[N, obs_bytes_dim]`.
    pub obs_bytes: &'a mut [u8],
    /// `[N, act_dim]` raw actions.
    pub actions: &'a mut [f32],
    /// `[N]` values.
    pub values: &'a mut [f32],
    /// `[N]` log-probabilities.
    pub log_probs: &'a mut [f32],
    /// `[N]` rewards (with truncation bootstrap).
    pub rewards: &'a mut [f32],
    /// `[N]` episode-end flags.
    pub dones: &'a mut [bool],
    /// `[N]` rows that held an agent.
    pub active: &'a mut [bool],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f64) -> bool {
        (a as f64 - b).abs() < 1e-6
    }

    /// Three steps of one env with values [0.5, 0.4, 0.3] and V(s_3) = 0.2,
    /// gamma 0.9, lambda 0.8.
    fn three_steps(rewards: [f32; 3], dones: [bool; 3]) -> RolloutBuffer {
        let mut b = RolloutBuffer::new(3, 1, 1, 0, 1);
        for t in 0..3 {
            b.add(
                &[t as f32],
                &[0.0],
                &[rewards[t]],
                &[dones[t]],
                &[[0.5, 0.4, 0.3][t]],
                &[0.0],
            )
            .unwrap();
        }
        b.compute_gae(&[0.2], 0.9, 0.8).unwrap();
        b
    }

    #[test]
    fn gae_matches_hand_computation_without_episode_end() {
        let b = three_steps([1.0, 1.0, 1.0], [false; 3]);
        // delta = [1 + .36 - .5, 1 + .27 - .4, 1 + .18 - .3] = [.86, .87, .88]
        let a2 = 0.88;
        let a1 = 0.87 + 0.72 * a2;
        let a0 = 0.86 + 0.72 * a1;
        assert!(
            close(b.advantages[2], a2) && close(b.advantages[1], a1) && close(b.advantages[0], a0)
        );
        assert!(close(b.returns[0], a0 + 0.5) && close(b.returns[2], a2 + 0.3));
    }

    #[test]
    fn termination_cuts_bootstrap_and_trace() {
        let b = three_steps([1.0, 1.0, 1.0], [false, true, false]);
        assert!(close(b.advantages[2], 0.88));
        assert!(close(b.advantages[1], 0.6), "{}", b.advantages[1]);
        assert!(close(b.advantages[0], 0.86 + 0.72 * 0.6));
    }

    #[test]
    fn truncation_bootstraps_from_the_final_observation_value() {
        // Env truncated on step 1 with V(final_obs) = 2.0.
        let r1 = bootstrap_truncation(1.0, 0.9, 2.0);
        assert!(close(r1, 2.8));
        let b = three_steps([1.0, r1, 1.0], [false, true, false]);
        assert!(close(b.advantages[1], 2.4));
        assert!(close(b.advantages[0], 0.86 + 0.72 * 2.4));
        assert!(close(b.returns[1], 2.8));
    }

    #[test]
    fn envs_are_independent_and_shapes_are_checked() {
        let mut b = RolloutBuffer::new(1, 2, 1, 0, 1);
        assert!(
            b.add(&[0.0], &[0.0], &[1.0], &[false], &[0.0], &[0.0])
                .is_err()
        );
        assert!(b.compute_gae(&[0.0, 0.0], 0.9, 0.9).is_err());
        b.add(
            &[0.0, 0.0],
            &[0.0, 0.0],
            &[1.0, 2.0],
            &[true, false],
            &[0.0, 1.0],
            &[0.0, 0.0],
        )
        .unwrap();
        assert!(
            b.add(
                &[0.0, 0.0],
                &[0.0, 0.0],
                &[1.0, 2.0],
                &[true, false],
                &[0.0, 1.0],
                &[0.0, 0.0]
            )
            .is_err()
        );
        b.compute_gae(&[10.0, 10.0], 0.5, 1.0).unwrap();
        assert!(close(b.advantages[0], 1.0));
        assert!(close(b.advantages[1], 2.0 + 5.0 - 1.0));
    }
}
