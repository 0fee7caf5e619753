//! n-step returns, per environment: the last `n` steps wait in a ring until
//! their return `R = r_0 + gamma r_1 + ... + gamma^(m-1) r_(m-1)` is known.
//!
//! - `n` steps in, without an episode end: the oldest is emitted with
//!   `m = n`, bootstrapped from the newest observation (`discount = gamma^n`).
//! - When the episode ends, every waiting step is emitted with what is left
//!   of its window: *terminated*, nothing follows (`discount = 0`);
//!   *truncated* (a time limit), the episode could have gone on, so it is
//!   bootstrapped from the final observation (`discount = gamma^m`).

use hlynr_env::ObsRef;
use serde::{Deserialize, Serialize};

/// A finished transition, ready for the replay buffer.
#[derive(Debug)]
pub struct Emitted<'a> {
    /// The observation the action was taken in.
    pub obs: ObsRef<'a>,
    /// The action index.
    pub action: usize,
    /// The discounted sum of the window's rewards.
    pub ret: f32,
    /// Factor on the bootstrap value of `next`.
    pub discount: f32,
}

/// The waiting steps of one env.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Ring {
    /// Oldest waiting slot.
    head: usize,
    count: usize,
    values: Vec<f32>,
    #[serde(with = "hlynr_env::hex")]
    bytes: Vec<u8>,
    actions: Vec<usize>,
    rewards: Vec<f32>,
}

/// The n-step windows of every env of a batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NStep {
    n: usize,
    gamma: f64,
    obs_dim: usize,
    obs_bytes: usize,
    rings: Vec<Ring>,
}

impl NStep {
    /// Windows of `n` steps for `n_envs` envs.
    pub fn new(n: usize, gamma: f64, n_envs: usize, obs_dim: usize, obs_bytes: usize) -> Self {
        let ring = Ring {
            head: 0,
            count: 0,
            values: vec![0.0; n * obs_dim],
            bytes: vec![0; n * obs_bytes],
            actions: vec![0; n],
            rewards: vec![0.0; n],
        };
        Self {
            n,
            gamma,
            obs_dim,
            obs_bytes,
            rings: vec![ring; n_envs],
        }
    }

    /// Forgets every waiting step (a new env batch starts new episodes).
    pub fn clear(&mut self) {
        for r in &mut self.rings {
            r.count = 0;
            r.head = 0;
        }
    }

    /// Records env `env`'s step (`obs`, `action`, `reward`) and hands every
    /// transition it completes to `emit`, with the observation it
    /// bootstraps from: `next` (the observation after the step, or the
    /// episode's final observation when it ended).
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        env: usize,
        obs: ObsRef<'_>,
        action: usize,
        reward: f32,
        terminated: bool,
        truncated: bool,
        mut emit: impl FnMut(Emitted<'_>),
    ) {
        let (n, vd, bd, gamma) = (self.n, self.obs_dim, self.obs_bytes, self.gamma);
        let r = &mut self.rings[env];
        let slot = (r.head + r.count) % n;
        r.values[slot * vd..(slot + 1) * vd].copy_from_slice(obs.values);
        r.bytes[slot * bd..(slot + 1) * bd].copy_from_slice(obs.bytes);
        r.actions[slot] = action;
        r.rewards[slot] = reward;
        r.count += 1;
        let ended = terminated || truncated;
        if !ended && r.count < n {
            return;
        }
        // Emit the oldest (window full) or all of them (episode over).
        let emit_count = if ended { r.count } else { 1 };
        for _ in 0..emit_count {
            let m = r.count;
            let mut ret = 0.0f64;
            let mut g = 1.0f64;
            for k in 0..m {
                ret += g * f64::from(r.rewards[(r.head + k) % n]);
                g *= gamma;
            }
            let discount = if terminated { 0.0 } else { g };
            let h = r.head;
            emit(Emitted {
                obs: ObsRef::new(
                    &r.values[h * vd..(h + 1) * vd],
                    &r.bytes[h * bd..(h + 1) * bd],
                ),
                action: r.actions[h],
                ret: ret as f32,
                discount: discount as f32,
            });
            r.head = (r.head + 1) % n;
            r.count -= 1;
        }
        if ended {
            r.head = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes rewards 1, 2, 4, ... for env 0 with observation `[t]`; returns
    /// what was emitted as `(obs, ret, discount)`.
    fn run(n: usize, steps: usize, end: Option<(bool, bool)>) -> Vec<(f32, f32, f32)> {
        let mut ns = NStep::new(n, 0.5, 1, 1, 0);
        let mut out = Vec::new();
        for t in 0..steps {
            let last = t + 1 == steps;
            let (term, trunc) = if last {
                end.unwrap_or((false, false))
            } else {
                (false, false)
            };
            let obs = [t as f32];
            ns.push(
                0,
                ObsRef::values(&obs),
                t,
                (1 << t) as f32,
                term,
                trunc,
                |e| {
                    assert_eq!(e.action, e.obs.values[0] as usize);
                    out.push((e.obs.values[0], e.ret, e.discount));
                },
            );
        }
        out
    }

    #[test]
    fn full_windows_bootstrap_with_gamma_to_the_n() {
        // gamma 0.5, n 3: R_0 = 1 + 0.5*2 + 0.25*4 = 3, R_1 = 2 + 2 + 2 = 6.
        assert_eq!(run(3, 4, None), vec![(0.0, 3.0, 0.125), (1.0, 6.0, 0.125)]);
    }

    #[test]
    fn termination_flushes_with_no_bootstrap_and_truncation_bootstraps() {
        // Steps 0..3 end the episode at step 3 (rewards 1, 2, 4, 8).
        let term = run(3, 4, Some((true, false)));
        assert_eq!(
            term,
            vec![
                (0.0, 3.0, 0.125),
                (1.0, 6.0, 0.0),
                (2.0, 8.0, 0.0),
                (3.0, 8.0, 0.0)
            ]
        );
        let trunc = run(3, 4, Some((false, true)));
        assert_eq!(
            trunc,
            vec![
                (0.0, 3.0, 0.125),
                (1.0, 6.0, 0.125),
                (2.0, 8.0, 0.25),
                (3.0, 8.0, 0.5)
            ]
        );
        // n = 1 is one-step TD.
        assert_eq!(
            run(1, 2, Some((true, false))),
            vec![(0.0, 1.0, 0.5), (1.0, 2.0, 0.0)]
        );
    }
}
