//! Deep Q-learning with the Rainbow switches: double Q, dueling heads, n-step
//! returns and prioritised replay, each on its own config key.
//!
//! One [`Dqn::iterate`] collects `train_freq` vector steps (uniformly random
//! actions before `learning_starts` env steps, epsilon-greedy after, with
//! epsilon falling linearly over `exploration_fraction` of the run), stores
//! their transitions through the n-step windows, updates the target network
//! every `target_update_interval` env steps, and then takes `gradient_steps`
//! gradient steps on minibatches from the replay buffer:
//!
//! ```text
//! a*   = argmax_a Q_target(s', a)          (double Q: argmax_a Q_online(s', a))
//! y    = R + discount * Q_target(s', a*)   (discount = gamma^m, 0 after termination)
//! loss = mean_i w_i Huber(Q_online(s_i, a_i) - y_i)     (w = 1 without prioritisation)
//! ```
//!
//! Everything it decides depends on its env-step counter, its generators and
//! its saved state, so a resumed run continues bit for bit; the replay buffer,
//! the waiting n-step windows and the target network travel as resume-only
//! checkpoint files.
//!
//! With `decoupled_acting` an actor thread (`actor.rs`) steps the envs with
//! its own copy of the network instead, and each iteration takes the vector
//! steps it sent; acting is the same code either way (`acting.rs`).

mod acting;
mod actor;
pub mod config;
pub mod frames;
pub mod nstep;
pub mod replay;

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;

use hlynr_env::{BatchEnv, ObsRef, Space};
use hlynr_nn::io::TensorEntry;
use hlynr_nn::{
    Adam, AdamConfig, AdamKind, ParamGroup, Tensor, clip_grad_norm, quantile_huber_loss,
};
use hlynr_rng::{Rng, derive_seed};
use serde::{Deserialize, Serialize};

use crate::algorithm::{Algorithm, AlgorithmState, Iteration, PolicyRecord, PolicySnapshot};
use crate::checkpoint::ResumeFiles;
use crate::common::episodes::EpisodeWindow;
use crate::common::nonfinite::all_finite;
use crate::error::{Result, TrainError};
use crate::metrics::Metrics;
use crate::policy::{ImplicitQuantiles, QNetConfig, QNetwork, QOutputs, argmax_rows};

use acting::{ActRngs, ActScratch, StepRecord, act_step, acting_epsilon};
use actor::{Actor, ActorMessage, QUEUE_VECTOR_STEPS};
pub use config::{
    DecayUnit, DecoupledActing, Distribution, DqnConfig, ExplorationDecay, Optimizer,
    PrioritizedReplay,
};
use nstep::NStep;
use replay::{Batch, ReplayBuffer, Sample, bytes_per_transition};

const STREAM_INIT: u64 = 0x1D;
const STREAM_EXPLORE: u64 = 0x2D;
const STREAM_SAMPLE: u64 = 0x3D;
const STREAM_NOISE: u64 = 0x4D;
const STREAM_ENV: u64 = 3;
/// The optimiser's one parameter group.
const GROUP: &str = "q_net";
/// Resume file of the replay buffer.
const REPLAY_FILE: &str = "replay.bin";
/// Resume file of the target network (safetensors, as `model.safetensors`).
const TARGET_FILE: &str = "target.safetensors";
/// Resume file of the waiting n-step windows.
const NSTEP_FILE: &str = "nstep.json";

fn nn(e: hlynr_nn::NnError) -> TrainError {
    TrainError::Algorithm(Box::new(e))
}

/// Step and update counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DqnCounters {
    /// Env steps taken, summed over envs.
    pub num_timesteps: u64,
    /// Iterations completed.
    pub iterations: u64,
    /// Gradient steps taken (`train/n_updates`).
    pub n_updates: u64,
    /// Target-network updates made.
    pub target_updates: u64,
    /// Gradient steps abandoned because a loss, gradient or weight was not finite.
    pub nonfinite_skips: u64,
    /// Episodes finished.
    pub episodes: u64,
}

/// Everything of a [`Dqn`]'s state but its tensors and resume files.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DqnMeta {
    config: DqnConfig,
    seed: u64,
    total_timesteps: u64,
    counters: DqnCounters,
    explore_rng: Rng,
    sample_rng: Rng,
    noise_rng: Rng,
    episodes: EpisodeWindow,
    lr_scale: f64,
    env: serde_json::Value,
}

/// How a checkpoint describes a DQN policy.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkRecord {
    policy: QNetConfig,
    /// Outputs per action (quantiles of a distributional network).
    atoms: usize,
    /// The layers of an implicit quantile network past its trunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    implicit: Option<ImplicitQuantiles>,
}

impl NetworkRecord {
    fn outputs(&self) -> QOutputs {
        match (&self.implicit, self.atoms) {
            (Some(i), _) => QOutputs::Implicit(i.clone()),
            (None, 1) => QOutputs::Expected,
            (None, n) => QOutputs::Quantiles(n),
        }
    }
}

/// Who steps the env batch.
enum Acting<B: BatchEnv + 'static> {
    /// The learner, between learning phases.
    Inline(B),
    /// An actor thread (`decoupled_acting`).
    Decoupled(Box<Actor<B>>),
}

impl<B: BatchEnv + 'static> Acting<B> {
    fn observation_space(&self) -> &Space {
        match self {
            Acting::Inline(env) => env.observation_space(),
            Acting::Decoupled(a) => a.observation_space(),
        }
    }

    fn action_space(&self) -> &Space {
        match self {
            Acting::Inline(env) => env.action_space(),
            Acting::Decoupled(a) => a.action_space(),
        }
    }

    fn num_envs(&self) -> usize {
        match self {
            Acting::Inline(env) => env.num_envs(),
            Acting::Decoupled(a) => a.num_envs(),
        }
    }
}

/// The DQN learner over an environment batch `B`.
pub struct Dqn<B: BatchEnv + 'static> {
    config: DqnConfig,
    seed: u64,
    total_timesteps: u64,
    acting: Acting<B>,
    q: QNetwork,
    target: QNetwork,
    opt: Adam,
    replay: ReplayBuffer,
    nstep: NStep,
    explore_rng: Rng,
    sample_rng: Rng,
    /// Draws the noisy layers' noise (noisy networks only).
    noise_rng: Rng,
    counters: DqnCounters,
    /// NaN or infinite observation values seen, and transitions not stored
    /// because of them, in the current iteration.
    nonfinite_obs: u64,
    dropped_transitions: u64,
    episodes: EpisodeWindow,
    lr_scale: f64,
    /// The target is a copy of the online network (no gradient step since
    /// the last hard update). Derived state: false after a restore.
    target_synced: bool,
    scratch: Scratch,
}

impl<B: BatchEnv + 'static> std::fmt::Debug for Dqn<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dqn")
            .field("counters", &self.counters)
            .field("replay_len", &self.replay.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Scratch {
    act: ActScratch,
    record: StepRecord,
    /// Vector steps received from the actor thread in this iteration.
    received: u64,
    sample: Sample,
    batch: Batch,
    obs_t: Tensor,
    next_t: Tensor,
    next_actions: Vec<usize>,
    /// `[B, atoms]` target values and the chosen actions' outputs.
    target: Tensor,
    pred: Tensor,
    grad_pred: Tensor,
    /// Quantile fractions of the prediction (`[atoms]`, or `[B, N]` sampled).
    taus: Tensor,
    /// Fractions of the target (implicit networks), `[B * N']`.
    target_taus: Vec<f32>,
    grad_q: Tensor,
    /// Each sample's priority signal: `|TD|`, or its quantile loss.
    td_abs: Vec<f32>,
}

/// Statistics of one learning phase.
#[derive(Debug, Default)]
struct LearnStats {
    steps: u64,
    loss: f64,
    q_mean: f64,
    q_max: f64,
    target_mean: f64,
    td_abs: f64,
    grad_norm: f64,
}

impl<B: BatchEnv + 'static> Dqn<B> {
    /// A learner for `env` (a `Discrete` action space), resetting it with a
    /// seed derived from `seed` (under `decoupled_acting`, the actor thread
    /// does, right before its first step). A replay buffer that would not fit in the
    /// memory available is refused before anything is allocated.
    pub fn new(config: DqnConfig, mut env: B, seed: u64, total_timesteps: u64) -> Result<Self> {
        use hlynr_env::config::Validate;
        config.validate("dqn")?;
        if total_timesteps == 0 {
            return Err(TrainError::invalid(
                "Dqn::new",
                "total_timesteps must be at least 1 (the schedules' horizon)",
            ));
        }
        let space = env.observation_space().clone();
        let (obs_dim, obs_bytes) = (space.flat_dim(), space.byte_dim());
        let per = config.prioritized_replay.as_ref();
        let plane = frames::plane_len(&space.byte_shapes(), obs_bytes);
        check_memory(config.buffer_size, obs_dim, obs_bytes, plane, per.is_some())?;
        let mut init = Rng::from_stream(seed, STREAM_INIT);
        let outputs = config
            .distribution
            .as_ref()
            .map_or(QOutputs::Expected, Distribution::outputs);
        let mut q = QNetwork::new(
            &space,
            env.action_space(),
            &config.policy,
            &outputs,
            &mut init,
        )?;
        let mut target = QNetwork::new(
            &space,
            env.action_space(),
            &config.policy,
            &outputs,
            &mut init,
        )?;
        target.load_state_dict(&q.state_dict())?;
        let mut noise_rng = Rng::from_stream(seed, STREAM_NOISE);
        if q.is_noisy() {
            q.resample_noise(&mut noise_rng);
            target.resample_noise(&mut noise_rng);
        }
        let names = q
            .named_params()
            .into_iter()
            .filter(|(_, p)| p.is_trainable())
            .map(|(n, _)| n);
        let kind = match config.optimizer {
            Optimizer::Adam => AdamKind::Adam,
            Optimizer::Adamw => AdamKind::AdamW,
        };
        let adam = AdamConfig {
            eps: config.adam_eps,
            ..AdamConfig::new(kind)
        };
        let group = ParamGroup::new(GROUP, names, config.learning_rate.initial())
            .with_weight_decay(config.weight_decay);
        let opt = Adam::new(adam, vec![group]).map_err(nn)?;
        let env_seed = derive_seed(seed, STREAM_ENV);
        let n = env.num_envs();
        let acting = match &config.decoupled_acting {
            None => {
                env.reset(env_seed)?;
                Acting::Inline(env)
            }
            Some(_) => {
                // The actor thread's own copy of the network.
                let mut copy = QNetwork::new(
                    &space,
                    env.action_space(),
                    &config.policy,
                    &outputs,
                    &mut Rng::seed_from_u64(0),
                )?;
                copy.load_state_dict(&q.state_dict())?;
                Acting::Decoupled(Box::new(Actor::new(
                    env,
                    env_seed,
                    copy,
                    config.clone(),
                    seed,
                    total_timesteps,
                )))
            }
        };
        Ok(Self {
            replay: ReplayBuffer::new(
                config.buffer_size,
                obs_dim,
                obs_bytes,
                plane,
                per.map(|p| p.alpha),
            ),
            nstep: NStep::new(config.n_step, config.gamma, n, obs_dim, obs_bytes),
            explore_rng: Rng::from_stream(seed, STREAM_EXPLORE),
            sample_rng: Rng::from_stream(seed, STREAM_SAMPLE),
            noise_rng,
            nonfinite_obs: 0,
            dropped_transitions: 0,
            counters: DqnCounters::default(),
            episodes: EpisodeWindow::default(),
            lr_scale: 1.0,
            target_synced: true,
            scratch: Scratch::default(),
            config,
            seed,
            total_timesteps,
            acting,
            q,
            target,
            opt,
        })
    }

    /// Counters.
    pub fn counters(&self) -> DqnCounters {
        self.counters
    }

    fn progress_remaining(&self) -> f64 {
        1.0 - self.counters.num_timesteps as f64 / self.total_timesteps as f64
    }

    /// Epsilon now (see [`ExplorationDecay`]): the final value from
    /// `exploration_fraction` of the run on, before that linear in env
    /// steps or exponential in env steps or episodes.
    pub fn exploration_rate(&self) -> f64 {
        let c = &self.counters;
        acting::exploration_rate(
            &self.config,
            self.total_timesteps,
            c.num_timesteps,
            c.episodes,
        )
    }

    /// The importance-sampling exponent at the current step (prioritised
    /// replay): linear from `beta0` to 1 over the run.
    fn beta(&self) -> f64 {
        self.config.prioritized_replay.as_ref().map_or(1.0, |p| {
            p.beta0 + (1.0 - p.beta0) * (1.0 - self.progress_remaining()).clamp(0.0, 1.0)
        })
    }

    /// One vector step: choose actions, step, store transitions.
    fn collect_step(&mut self) -> Result<()> {
        let Acting::Inline(env) = &mut self.acting else {
            unreachable!("an actor thread steps a decoupled batch")
        };
        let c = &self.counters;
        let eps = acting_epsilon(
            &self.config,
            self.total_timesteps,
            c.num_timesteps,
            c.episodes,
        );
        let mut rec = std::mem::take(&mut self.scratch.record);
        let rngs = ActRngs {
            explore: &mut self.explore_rng,
            noise: &mut self.noise_rng,
        };
        act_step(env, &mut self.q, eps, rngs, &mut self.scratch.act, &mut rec)?;
        self.store(&rec);
        self.scratch.record = rec;
        Ok(())
    }

    /// Waits for `train_freq` vector steps from the actor thread, then takes
    /// whatever else has arrived (at most a queue's worth, so that the
    /// learner gets to learn however fast the actor is).
    fn receive_steps(&mut self) -> Result<()> {
        let mut received = 0u64;
        while received < QUEUE_VECTOR_STEPS as u64 {
            let Acting::Decoupled(actor) = &mut self.acting else {
                unreachable!("only a decoupled batch has an actor thread")
            };
            actor.start()?;
            let Some(message) = actor.receive(received < self.config.train_freq)? else {
                break;
            };
            match message {
                ActorMessage::Step(rec) => {
                    self.store(&rec);
                    received += 1;
                }
                // Windows never span two batches.
                ActorMessage::EnvReplaced => self.nstep.clear(),
            }
        }
        self.scratch.received = received;
        Ok(())
    }

    /// Stores a vector step's transitions through the n-step windows, counts
    /// its env steps and finished episodes, and updates the target network
    /// when an interval's worth of env steps has passed.
    fn store(&mut self, rec: &StepRecord) {
        let n = self.acting.num_envs();
        self.counters.num_timesteps += n as u64;
        self.nonfinite_obs += rec.nonfinite_obs;
        let space = self.acting.observation_space();
        let (vd, bd) = (space.flat_dim(), space.byte_dim());
        for i in 0..n {
            let next = ObsRef::new(
                &rec.next_obs[i * vd..(i + 1) * vd],
                &rec.next_bytes[i * bd..(i + 1) * bd],
            );
            let obs = ObsRef::new(
                &rec.obs[i * vd..(i + 1) * vd],
                &rec.bytes[i * bd..(i + 1) * bd],
            );
            let (replay, dropped) = (&mut self.replay, &mut self.dropped_transitions);
            let next_finite = all_finite(next.values);
            self.nstep.push(
                i,
                obs,
                rec.actions[i] as usize,
                rec.rewards[i],
                rec.terminated[i],
                rec.truncated[i],
                |e| {
                    // A transition with a NaN or infinity in it would poison
                    // every target it is sampled for: it is not stored.
                    if next_finite && e.ret.is_finite() && all_finite(e.obs.values) {
                        replay.push(e.obs, e.action, e.ret, next, e.discount);
                    } else {
                        *dropped += 1;
                    }
                },
            );
        }
        for end in &rec.ends {
            self.counters.episodes += 1;
            if let Some((episode_return, length)) = end.stats {
                self.episodes.push_episode(episode_return, length);
            }
            if let Some(s) = end.success {
                self.episodes.push_success(s);
            }
        }
        let interval = self.config.target_update_interval;
        if self.counters.num_timesteps / interval > self.counters.target_updates {
            self.counters.target_updates = self.counters.num_timesteps / interval;
            self.update_target();
        }
    }

    /// Moves the target network to the online one by `tau` (copies it when
    /// `tau` is 1; a copy of an online network that has not changed since
    /// the last one is skipped, having no effect).
    fn update_target(&mut self) {
        let tau = self.config.tau as f32;
        if tau >= 1.0 && self.target_synced {
            return;
        }
        self.target_synced = tau >= 1.0;
        let online = self.q.named_params();
        for ((_, t), (_, o)) in self.target.named_params_mut().into_iter().zip(online) {
            if tau >= 1.0 {
                t.value.copy_from(&o.value);
            } else {
                for (t, &o) in t.value.data_mut().iter_mut().zip(o.value.data()) {
                    *t += tau * (o - *t);
                }
            }
        }
    }

    /// One gradient step on a replay minibatch; `false` when a loss,
    /// gradient or updated weight was not finite (the caller restores the
    /// parameters of before the learning phase).
    fn learn_step(&mut self, stats: &mut LearnStats) -> Result<bool> {
        let c = &self.config;
        let (b, n_actions) = (c.batch_size, self.q.n_actions());
        let vd = self.q.obs_dim();
        let beta = self.beta();
        let lr = c.learning_rate.value(self.progress_remaining()) * self.lr_scale;
        if self.q.is_noisy() {
            self.q.resample_noise(&mut self.noise_rng);
            self.target.resample_noise(&mut self.noise_rng);
        }
        let sc = &mut self.scratch;
        self.replay
            .sample(b, beta, &mut self.sample_rng, &mut sc.sample);
        self.replay.gather(&sc.sample.rows, &mut sc.batch);
        let batch = &sc.batch;
        sc.next_t.resize(&[b, vd]);
        sc.next_t.data_mut().copy_from_slice(&batch.next_obs);
        sc.obs_t.resize(&[b, vd]);
        sc.obs_t.data_mut().copy_from_slice(&batch.obs);
        // Targets (no gradient): the next action is the target net's
        // greedy one, or the online net's under double Q.
        sc.next_actions.resize(b, 0);
        if c.double_q {
            let q_next = self.q.q_values(&sc.next_t, &batch.next_bytes)?;
            argmax_rows(q_next, &mut sc.next_actions);
        } else {
            let q_next = self.target.q_values(&sc.next_t, &batch.next_bytes)?;
            argmax_rows(q_next, &mut sc.next_actions);
        }
        // Outputs per action of the prediction and of the target (an
        // implicit network's at fractions drawn for every sample).
        let (n_pred, n_target) = match &c.distribution {
            Some(Distribution::Iqn {
                n_quantiles,
                n_target_quantiles,
                ..
            }) => (*n_quantiles, *n_target_quantiles),
            _ => (self.q.atoms(), self.q.atoms()),
        };
        let implicit = self.q.is_implicit();
        let next_out = if implicit {
            sc.target_taus.clear();
            sc.target_taus
                .extend((0..b * n_target).map(|_| self.sample_rng.uniform_f32()));
            self.target
                .forward_at(&sc.next_t, &batch.next_bytes, &sc.target_taus, n_target)?
        } else {
            if c.double_q {
                self.target.forward(&sc.next_t, &batch.next_bytes)?;
            }
            self.target.outputs()
        };
        sc.target.resize(&[b, n_target]);
        for (k, row) in sc.target.data_mut().chunks_exact_mut(n_target).enumerate() {
            let out = &next_out.data()[k * n_target * n_actions..(k + 1) * n_target * n_actions];
            for (i, t) in row.iter_mut().enumerate() {
                let next = out[i * n_actions + sc.next_actions[k]];
                *t = batch.returns[k] + batch.discounts[k] * next;
            }
        }
        let out = if implicit {
            sc.taus.resize(&[b, n_pred]);
            for t in sc.taus.data_mut() {
                *t = self.sample_rng.uniform_f32();
            }
            self.q
                .forward_at(&sc.obs_t, &batch.bytes, sc.taus.data(), n_pred)?
        } else {
            self.q.forward(&sc.obs_t, &batch.bytes)?
        };
        sc.pred.resize(&[b, n_pred]);
        for (k, row) in sc.pred.data_mut().chunks_exact_mut(n_pred).enumerate() {
            let out = &out.data()[k * n_pred * n_actions..(k + 1) * n_pred * n_actions];
            for (i, p) in row.iter_mut().enumerate() {
                *p = out[i * n_actions + batch.actions[k]];
            }
        }
        sc.td_abs.resize(b, 0.0);
        let loss = match &c.distribution {
            None => huber_td(
                sc.pred.data(),
                sc.target.data(),
                c.huber_delta as f32,
                &sc.sample.weights,
                &mut sc.td_abs,
                &mut sc.grad_pred,
            ),
            Some(dist) => {
                if !implicit {
                    sc.taus.resize(&[n_pred]);
                    for (i, t) in sc.taus.data_mut().iter_mut().enumerate() {
                        *t = (2 * i + 1) as f32 / (2 * n_pred) as f32;
                    }
                }
                // Prioritised by each sample's own quantile loss.
                f64::from(
                    quantile_huber_loss(
                        &sc.pred,
                        &sc.taus,
                        &sc.target,
                        dist.kappa() as f32,
                        Some(&sc.sample.weights),
                        Some(&mut sc.td_abs),
                        &mut sc.grad_pred,
                    )
                    .map_err(nn)?,
                )
            }
        };
        sc.grad_q.resize_zeroed(&[b, n_pred * n_actions]);
        for (k, g) in sc.grad_pred.data().chunks_exact(n_pred).enumerate() {
            let row =
                &mut sc.grad_q.data_mut()[k * n_pred * n_actions..(k + 1) * n_pred * n_actions];
            for (i, &g) in g.iter().enumerate() {
                row[i * n_actions + batch.actions[k]] = g;
            }
        }
        let mean = |x: &[f32]| x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
        let (q_sum, y_sum, td_sum) = (
            mean(sc.pred.data()) * b as f64,
            mean(sc.target.data()) * b as f64,
            sc.pred
                .data()
                .chunks_exact(n_pred)
                .zip(sc.target.data().chunks_exact(n_target))
                .map(|(p, t)| (mean(t) - mean(p)).abs())
                .sum::<f64>(),
        );
        let q_max = out.data().iter().copied().fold(f32::MIN, f32::max) as f64;
        if !loss.is_finite() {
            return Ok(false);
        }
        self.q.zero_grad();
        self.q.backward(&sc.obs_t, &sc.grad_q)?;
        let norm = clip_grad_norm(
            self.q.named_params_mut().into_iter().map(|(_, p)| p),
            c.max_grad_norm as f32,
        )
        .map_err(nn)?;
        if !norm.is_finite() {
            return Ok(false);
        }
        self.opt.set_group_lr(GROUP, lr).map_err(nn)?;
        let mut params = self.q.named_params_mut();
        self.opt.step(&mut params).map_err(nn)?;
        let finite = params.iter().all(|(_, p)| all_finite(p.value.data()));
        drop(params);
        if !finite {
            return Ok(false);
        }
        if let Some(per) = &self.config.prioritized_replay {
            self.replay
                .update_priorities(&sc.sample.rows, &sc.td_abs, per.eps);
        }
        stats.steps += 1;
        stats.loss += loss;
        stats.q_mean += q_sum / b as f64;
        stats.q_max = stats.q_max.max(q_max);
        stats.target_mean += y_sum / b as f64;
        stats.td_abs += td_sum / b as f64;
        stats.grad_norm += f64::from(norm);
        Ok(true)
    }

    /// One iteration: `train_freq` vector steps, then `gradient_steps`
    /// gradient steps once past `learning_starts`.
    pub fn iterate(&mut self) -> Result<Iteration> {
        self.nonfinite_obs = 0;
        self.dropped_transitions = 0;
        if matches!(self.acting, Acting::Inline(_)) {
            for _ in 0..self.config.train_freq {
                self.collect_step()?;
            }
        } else {
            self.receive_steps()?;
        }
        let mut stats = LearnStats {
            q_max: f64::MIN,
            ..LearnStats::default()
        };
        let mut skipped = false;
        let learning = self.counters.num_timesteps > self.config.learning_starts
            && self.replay.len() >= self.config.batch_size;
        if learning {
            // A non-finite step abandons the whole phase, as PPO abandons an
            // update: the parameters return to where the phase began.
            let (before, opt_before) = (self.q.state_dict(), self.opt.clone());
            let start_updates = self.counters.n_updates;
            for _ in 0..self.config.gradient_steps {
                self.target_synced = false;
                if self.learn_step(&mut stats)? {
                    self.counters.n_updates += 1;
                } else {
                    self.q.load_state_dict(&before)?;
                    self.opt = opt_before;
                    self.counters.n_updates = start_updates;
                    self.counters.nonfinite_skips += 1;
                    skipped = true;
                    stats = LearnStats::default();
                    break;
                }
            }
            self.publish_weights(start_updates)?;
        }
        self.counters.iterations += 1;
        Ok(Iteration {
            scalars: self.scalars(&stats, skipped),
            nonfinite_skip: skipped.then_some(self.counters.nonfinite_skips),
        })
    }

    /// Hands the actor thread fresh weights when `weight_sync_interval`
    /// gradient steps have passed since `n_updates` was `since`.
    fn publish_weights(&mut self, since: u64) -> Result<()> {
        if let (Acting::Decoupled(actor), Some(d)) =
            (&mut self.acting, &self.config.decoupled_acting)
        {
            let every = d.weight_sync_interval;
            if self.counters.n_updates / every > since / every {
                actor.publish(self.q.state_dict())?;
            }
        }
        Ok(())
    }

    fn scalars(&self, s: &LearnStats, skipped: bool) -> Metrics {
        let per_step = |v: f64| (s.steps > 0).then(|| v / s.steps as f64);
        let lr = self.config.learning_rate.value(self.progress_remaining()) * self.lr_scale;
        let c = &self.counters;
        let rows: Vec<(&str, Option<f64>)> = vec![
            ("rollout/exploration_rate", Some(self.exploration_rate())),
            ("rollout/ep_rew_mean", self.episodes.mean_return()),
            ("rollout/ep_len_mean", self.episodes.mean_length()),
            ("rollout/success_rate", self.episodes.success_rate()),
            (
                "rollout/buffer_fill",
                Some(self.replay.len() as f64 / self.replay.capacity() as f64),
            ),
            ("train/loss", per_step(s.loss)),
            ("train/q_mean", per_step(s.q_mean)),
            ("train/q_max", (s.steps > 0).then_some(s.q_max)),
            ("train/target_q_mean", per_step(s.target_mean)),
            ("train/td_error_abs", per_step(s.td_abs)),
            ("train/grad_norm", per_step(s.grad_norm)),
            ("train/learning_rate", Some(lr)),
            ("train/n_updates", Some(c.n_updates as f64)),
            (
                "train/per_beta",
                self.config.prioritized_replay.as_ref().map(|_| self.beta()),
            ),
            ("train/nonfinite_skip", skipped.then_some(1.0)),
            (
                "rollout/nonfinite_obs",
                (self.nonfinite_obs > 0).then_some(self.nonfinite_obs as f64),
            ),
            (
                "rollout/dropped_transitions",
                (self.dropped_transitions > 0).then_some(self.dropped_transitions as f64),
            ),
            ("train/nonfinite_skips", Some(c.nonfinite_skips as f64)),
            ("time/episodes", Some(c.episodes as f64)),
            ("time/iterations", Some(c.iterations as f64)),
            ("time/total_timesteps", Some(c.num_timesteps as f64)),
            (
                "time/actor_vector_steps",
                matches!(self.acting, Acting::Decoupled(_)).then_some(self.scratch.received as f64),
            ),
        ];
        rows.into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect()
    }

    fn meta(&self) -> Result<DqnMeta> {
        Ok(DqnMeta {
            config: self.config.clone(),
            seed: self.seed,
            total_timesteps: self.total_timesteps,
            counters: self.counters,
            explore_rng: self.explore_rng.clone(),
            sample_rng: self.sample_rng.clone(),
            noise_rng: self.noise_rng.clone(),
            episodes: self.episodes.clone(),
            lr_scale: self.lr_scale,
            // The actor thread's envs are not paused for a checkpoint: a
            // decoupled run resumes on fresh episodes.
            env: match &self.acting {
                Acting::Inline(env) => env.state(),
                Acting::Decoupled(_) => serde_json::Value::Null,
            },
        })
    }

    fn parse_meta(&self, state: &AlgorithmState) -> Result<DqnMeta> {
        let meta: DqnMeta = serde_json::from_value(state.meta.clone())
            .map_err(|e| TrainError::invalid("DQN state", e.to_string()))?;
        if meta.config != self.config {
            return Err(TrainError::invalid(
                "DQN state",
                "the checkpoint was written with a different `dqn` config",
            ));
        }
        Ok(meta)
    }

    /// The description of the current policy a checkpoint stores.
    pub fn policy_record(&self) -> Result<PolicyRecord> {
        let network = serde_json::to_value(NetworkRecord {
            policy: self.config.policy.clone(),
            atoms: self.q.atoms(),
            implicit: match self.config.distribution.as_ref().map(Distribution::outputs) {
                Some(QOutputs::Implicit(i)) => Some(i),
                _ => None,
            },
        })
        .map_err(|e| TrainError::invalid("DQN policy record", e.to_string()))?;
        Ok(PolicyRecord {
            observation_space: self.acting.observation_space().clone(),
            action_space: self.acting.action_space().clone(),
            frame_stack: None,
            obs_normalizer: None,
            network,
        })
    }
}

/// The mean Huber TD loss `(1/B) sum_k w_k L_delta(pred_k - target_k)`;
/// writes `|TD|` per sample and the gradient with respect to `pred`.
fn huber_td(
    pred: &[f32],
    target: &[f32],
    delta: f32,
    weights: &[f32],
    td_abs: &mut [f32],
    grad: &mut Tensor,
) -> f64 {
    let b = pred.len();
    grad.resize(&[b, 1]);
    let mut loss = 0.0f64;
    for k in 0..b {
        let td = pred[k] - target[k];
        let (l, g) = if td.abs() <= delta {
            (0.5 * td * td, td)
        } else {
            (delta * (td.abs() - 0.5 * delta), delta * td.signum())
        };
        loss += f64::from(weights[k] * l);
        grad.data_mut()[k] = weights[k] * g / b as f32;
        td_abs[k] = td.abs();
    }
    loss / b as f64
}

/// Refuses a buffer larger than the memory the machine has available (read
/// from `/proc/meminfo` where there is one).
fn check_memory(
    capacity: usize,
    obs_dim: usize,
    obs_bytes: usize,
    plane: usize,
    prioritized: bool,
) -> Result<()> {
    let need =
        capacity as f64 * bytes_per_transition(obs_dim, obs_bytes, plane, prioritized) as f64;
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map(|kib| kib * 1024.0)
    });
    let gib = |b: f64| b / (1u64 << 30) as f64;
    match available {
        Some(avail) if need > avail => Err(TrainError::invalid(
            "dqn.buffer_size",
            format!(
                "a replay buffer of {capacity} transitions of {obs_dim} values and {obs_bytes} bytes needs {:.2} GiB; this machine has {:.2} GiB available",
                gib(need),
                gib(avail)
            ),
        )),
        _ => Ok(()),
    }
}

/// The network of a DQN checkpoint's `record` with `weights`, without any
/// environment.
pub fn policy_from_record(
    record: &PolicyRecord,
    weights: &BTreeMap<String, Tensor>,
) -> Result<PolicySnapshot> {
    let (q, _) = network_from_record(record, weights)?;
    Ok(PolicySnapshot {
        net: Box::new(q),
        obs_dim: record.observation_space.flat_dim(),
        obs_bytes: record.observation_space.byte_dim(),
        normalizer: None,
    })
}

/// The Q-network of `record` with `weights`, in evaluation mode (noisy
/// layers act on their means), and what it outputs per action.
pub fn network_from_record(
    record: &PolicyRecord,
    weights: &BTreeMap<String, Tensor>,
) -> Result<(QNetwork, QOutputs)> {
    let network: NetworkRecord = record.network_as("DQN")?;
    let outputs = network.outputs();
    let mut q = QNetwork::new(
        &record.observation_space,
        &record.action_space,
        &network.policy,
        &outputs,
        &mut Rng::seed_from_u64(0),
    )?;
    q.set_training(false);
    q.load_state_dict(weights)
        .map_err(|e| record.misfit("DQN", e))?;
    Ok((q, outputs))
}

impl<B: BatchEnv + 'static> ResumeFiles for Dqn<B> {
    fn names(&self) -> Vec<String> {
        vec![REPLAY_FILE.into(), TARGET_FILE.into(), NSTEP_FILE.into()]
    }

    fn write(&self, name: &str, out: &mut dyn Write) -> std::io::Result<()> {
        let mut out = BufWriter::new(out);
        match name {
            REPLAY_FILE => self.replay.write(&mut out)?,
            TARGET_FILE => {
                let params = self.target.named_params();
                let entries: Vec<(String, TensorEntry<'_>)> = params
                    .iter()
                    .map(|(name, p)| (name.clone(), TensorEntry::F32(&p.value)))
                    .collect();
                let bytes = hlynr_nn::io::serialize(&entries, &BTreeMap::new())
                    .map_err(std::io::Error::other)?;
                out.write_all(&bytes)?;
            }
            _ => serde_json::to_writer(&mut out, &self.nstep)?,
        }
        out.flush()
    }
}

impl Algorithm for Dqn<Box<dyn BatchEnv>> {
    fn name(&self) -> &'static str {
        "dqn"
    }

    fn iterate(&mut self) -> Result<Iteration> {
        Dqn::iterate(self)
    }

    fn num_timesteps(&self) -> u64 {
        self.counters.num_timesteps
    }

    fn nonfinite_skips(&self) -> u64 {
        self.counters.nonfinite_skips
    }

    fn export_state(&self) -> Result<AlgorithmState> {
        Ok(AlgorithmState {
            weights: self.q.state_dict(),
            optimizer: self.opt.state().map_err(nn)?,
            meta: serde_json::to_value(self.meta()?)
                .map_err(|e| TrainError::invalid("DQN state", e.to_string()))?,
        })
    }

    fn import_state(&mut self, state: &AlgorithmState) -> Result<()> {
        let meta = self.parse_meta(state)?;
        let opt = Adam::from_state(&state.optimizer).map_err(nn)?;
        let backup = self.q.state_dict();
        self.q.load_state_dict(&state.weights)?;
        let continued = match &mut self.acting {
            Acting::Inline(env) => env.set_state(&meta.env).map_err(TrainError::from),
            Acting::Decoupled(actor) => actor
                .continue_from(
                    meta.seed,
                    meta.counters.num_timesteps,
                    meta.counters.episodes,
                )
                .and_then(|()| actor.publish(state.weights.clone())),
        };
        if let Err(e) = continued {
            self.q.load_state_dict(&backup)?;
            return Err(e);
        }
        // Until the resume files say otherwise, the target is the online net.
        self.target.load_state_dict(&state.weights)?;
        self.opt = opt;
        self.target_synced = false;
        self.seed = meta.seed;
        self.total_timesteps = meta.total_timesteps;
        self.counters = meta.counters;
        self.explore_rng = meta.explore_rng;
        self.sample_rng = meta.sample_rng;
        self.noise_rng = meta.noise_rng;
        self.episodes = meta.episodes;
        self.lr_scale = meta.lr_scale;
        Ok(())
    }

    fn roll_back_to(&mut self, state: &AlgorithmState, lr_factor: f64) -> Result<()> {
        self.parse_meta(state)?;
        let opt = Adam::from_state(&state.optimizer).map_err(nn)?;
        self.q.load_state_dict(&state.weights)?;
        self.target.load_state_dict(&state.weights)?;
        self.opt = opt;
        self.target_synced = true;
        self.lr_scale *= lr_factor;
        if let Acting::Decoupled(actor) = &mut self.acting {
            actor.publish(state.weights.clone())?;
        }
        Ok(())
    }

    fn lr_scale(&self) -> f64 {
        self.lr_scale
    }

    fn replace_env_batch(&mut self, mut batch: Box<dyn BatchEnv>, seed: u64) -> Result<()> {
        if batch.num_envs() != self.acting.num_envs()
            || batch.observation_space() != self.acting.observation_space()
            || batch.action_space() != self.acting.action_space()
        {
            return Err(TrainError::invalid(
                "DQN",
                "the new env batch differs in size or spaces from the old one",
            ));
        }
        let immediate = match &mut self.acting {
            Acting::Inline(env) => {
                batch.reset(seed)?;
                *env = batch;
                true
            }
            Acting::Decoupled(actor) => actor.replace_env(batch, seed)?,
        };
        if immediate {
            self.nstep.clear();
        }
        Ok(())
    }

    fn policy(&self) -> Result<PolicySnapshot> {
        policy_from_record(&self.policy_record()?, &self.q.state_dict())
    }

    fn policy_record(&self) -> Result<PolicyRecord> {
        Dqn::policy_record(self)
    }

    fn resume_files(&self) -> Option<&dyn ResumeFiles> {
        Some(self)
    }

    fn import_resume_files(&mut self, files: &BTreeMap<String, PathBuf>) -> Result<()> {
        let path = |name: &str| {
            files.get(name).ok_or_else(|| {
                TrainError::invalid(
                    "checkpoint",
                    format!("lacks the DQN resume file `{name}`: the run cannot continue exactly"),
                )
            })
        };
        let open = |p: &PathBuf| -> Result<BufReader<std::fs::File>> {
            std::fs::File::open(p)
                .map(BufReader::new)
                .map_err(|e| TrainError::invalid("checkpoint", format!("{}: {e}", p.display())))
        };
        let mut replay_in = open(path(REPLAY_FILE)?)?;
        let nstep: NStep = serde_json::from_reader(open(path(NSTEP_FILE)?)?)
            .map_err(|e| TrainError::invalid(NSTEP_FILE, e.to_string()))?;
        hlynr_nn::io::load_into(
            &mut self.target.named_params_mut(),
            path(TARGET_FILE)?,
            true,
        )
        .map_err(nn)?;
        // A decoupled run resumes on fresh episodes: nothing continues the
        // windows that were waiting.
        self.nstep = nstep;
        if matches!(self.acting, Acting::Decoupled(_)) {
            self.nstep.clear();
        }
        self.replay
            .read(&mut replay_in)
            .map_err(|e| TrainError::invalid(REPLAY_FILE, e.to_string()))?;
        Ok(())
    }
}
