//! Acting: epsilon-greedy action choice and one vector step recorded for the
//! learner. The same code acts whether the learner steps the envs itself or
//! an actor thread does (`dqn.decoupled_acting`).

use hlynr_env::BatchEnv;
use hlynr_rng::Rng;

use super::config::{DecayUnit, DqnConfig, ExplorationDecay};
use crate::common::nonfinite::zero_nonfinite;
use crate::error::{Result, TrainError};
use crate::policy::QNetwork;

/// Epsilon after `steps` env steps and `episodes` finished episodes of a
/// run of `total` env steps (see [`ExplorationDecay`]): the final value from
/// `exploration_fraction` of the run on, before that linear in env steps or
/// exponential in env steps or episodes.
pub fn exploration_rate(config: &DqnConfig, total: u64, steps: u64, episodes: u64) -> f64 {
    let progress_remaining = 1.0 - steps as f64 / total as f64;
    let elapsed = 1.0 - progress_remaining;
    let (initial, fin) = (config.exploration_initial_eps, config.exploration_final_eps);
    if config.exploration_fraction <= 0.0 || elapsed >= config.exploration_fraction {
        return fin;
    }
    match &config.exploration_decay {
        ExplorationDecay::Linear => {
            initial + elapsed * (fin - initial) / config.exploration_fraction
        }
        ExplorationDecay::Exponential { rate, unit } => {
            let n = match unit {
                DecayUnit::Steps => steps,
                DecayUnit::Episodes => episodes,
            };
            (initial * rate.powf(n as f64)).max(fin)
        }
    }
}

/// The probability of a random action at the next step: 1 before
/// `learning_starts` env steps, epsilon after.
pub fn acting_epsilon(config: &DqnConfig, total: u64, steps: u64, episodes: u64) -> f64 {
    if steps < config.learning_starts {
        1.0
    } else {
        exploration_rate(config, total, steps, episodes)
    }
}

/// How one env's episode ended, as its final info said.
#[derive(Clone, Copy, Debug)]
pub struct EpisodeEnd {
    /// Return and length, where the env keeps episode statistics.
    pub stats: Option<(f64, u64)>,
    /// Success, where the env defines it.
    pub success: Option<bool>,
}

/// One vector step as the learner stores it: the observations the actions
/// were chosen on (as the env gave them), the actions, what the step
/// returned, and for every env the observation that follows (the final one
/// where an episode ended).
#[derive(Debug, Default)]
pub struct StepRecord {
    pub obs: Vec<f32>,
    pub bytes: Vec<u8>,
    pub actions: Vec<f32>,
    pub rewards: Vec<f32>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
    pub next_obs: Vec<f32>,
    pub next_bytes: Vec<u8>,
    /// The episodes that ended at this step, in env order.
    pub ends: Vec<EpisodeEnd>,
    /// NaN or infinite observation values acted on as 0.
    pub nonfinite_obs: u64,
}

/// Acting's scratch buffers.
#[derive(Debug, Default)]
pub struct ActScratch {
    greedy: Vec<usize>,
    /// The observations with NaN and infinities replaced by 0.
    act_obs: Vec<f32>,
}

/// Where acting draws its randomness.
pub struct ActRngs<'a> {
    /// Whether to explore, and the random actions.
    pub explore: &'a mut Rng,
    /// Fresh noise of noisy layers at every step.
    pub noise: &'a mut Rng,
}

/// One vector step of `env`: each env's action is uniformly random with
/// probability `eps` and greedy on `q` otherwise; the step is written to
/// `rec`.
pub fn act_step<B: BatchEnv + ?Sized>(
    env: &mut B,
    q: &mut QNetwork,
    eps: f64,
    rngs: ActRngs<'_>,
    scratch: &mut ActScratch,
    rec: &mut StepRecord,
) -> Result<()> {
    if env.active().is_some() {
        return Err(TrainError::invalid(
            "env",
            "this environment's rows are agent slots that fill and empty, which the DQN \
             family does not support yet; train it with PPO",
        ));
    }
    let n = env.num_envs();
    let n_actions = q.n_actions();
    rec.obs.clear();
    rec.obs.extend_from_slice(env.obs());
    rec.bytes.clear();
    rec.bytes.extend_from_slice(env.obs_bytes());
    scratch.act_obs.clear();
    scratch.act_obs.extend_from_slice(&rec.obs);
    rec.nonfinite_obs = zero_nonfinite(&mut scratch.act_obs);
    scratch.greedy.resize(n, 0);
    if eps < 1.0 {
        // Noisy networks explore through fresh noise at every step.
        if q.is_noisy() {
            q.resample_noise(rngs.noise);
        }
        q.greedy(&scratch.act_obs, &rec.bytes, n, &mut scratch.greedy)?;
    }
    rec.actions.clear();
    for &g in &scratch.greedy {
        let explore = eps >= 1.0 || rngs.explore.uniform() < eps;
        rec.actions.push(if explore {
            rngs.explore.below(n_actions as u64) as f32
        } else {
            g as f32
        });
    }
    env.step(&rec.actions)?;
    rec.record_outcome(env)
}

impl StepRecord {
    /// Copies what `env`'s last step returned.
    fn record_outcome<B: BatchEnv + ?Sized>(&mut self, env: &B) -> Result<()> {
        let (vd, bd) = (env.obs_dim(), env.byte_dim());
        let (term, trunc) = (env.terminated(), env.truncated());
        self.rewards.clear();
        self.rewards.extend_from_slice(env.rewards());
        self.terminated.clear();
        self.terminated.extend_from_slice(term);
        self.truncated.clear();
        self.truncated.extend_from_slice(trunc);
        self.next_obs.clear();
        self.next_bytes.clear();
        self.ends.clear();
        let missing = |i: usize, what: &str| {
            TrainError::invalid(
                "DQN",
                format!("env {i} ended without a final observation{what}"),
            )
        };
        for (i, info) in env.infos().iter().enumerate() {
            if term[i] || trunc[i] {
                let values = env.final_observation(i).ok_or_else(|| missing(i, ""))?;
                self.next_obs.extend_from_slice(values);
                if bd > 0 {
                    let bytes = env
                        .final_observation_bytes(i)
                        .ok_or_else(|| missing(i, "'s bytes"))?;
                    self.next_bytes.extend_from_slice(bytes);
                }
                self.ends.push(EpisodeEnd {
                    stats: info.episode.map(|e| (e.episode_return, e.episode_length)),
                    success: info.is_success,
                });
            } else {
                self.next_obs
                    .extend_from_slice(&env.obs()[i * vd..(i + 1) * vd]);
                self.next_bytes
                    .extend_from_slice(&env.obs_bytes()[i * bd..(i + 1) * bd]);
            }
        }
        Ok(())
    }
}
