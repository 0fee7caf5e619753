//! The actor thread of `dqn.decoupled_acting`: it steps the envs with its own
//! copy of the Q-network and sends every vector step to the learner, so a
//! real-time env (one that needs the next action within its time step) never
//! waits for a gradient step.
//!
//! The learner publishes fresh weights into a one-slot mailbox (the newest
//! replaces any not yet taken), which the actor reads before each step. Step
//! records travel in order on a bounded queue; a marker in that queue says
//! where a replaced env batch begins, so the learner's n-step windows never
//! span two batches. The queue is bounded so that a learner far behind a fast
//! env cannot grow memory without limit: past [`QUEUE_VECTOR_STEPS`] waiting
//! steps the actor waits (for a 20 Hz env that is minutes of backlog).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use hlynr_env::{BatchEnv, Space};
use hlynr_nn::Tensor;
use hlynr_rng::Rng;

use super::acting::{ActRngs, ActScratch, StepRecord, act_step, acting_epsilon};
use super::config::DqnConfig;
use crate::error::{Result, TrainError};
use crate::policy::QNetwork;

/// Vector steps that may wait for the learner before the actor waits.
pub const QUEUE_VECTOR_STEPS: usize = 4096;

/// What the actor sends the learner, in order.
pub enum ActorMessage {
    /// One vector step.
    Step(Box<StepRecord>),
    /// The steps that follow come from a new env batch.
    EnvReplaced,
}

enum Sent {
    Message(ActorMessage),
    Failed(TrainError),
}

/// The newest weights not yet taken by the actor.
type Mailbox = Arc<Mutex<Option<BTreeMap<String, Tensor>>>>;

/// What the actor thread owns.
struct Worker<B> {
    env: B,
    /// The seed of a reset due before the next step. A real-time env's clock
    /// runs from its reset, so the thread resets the env right before its
    /// first step rather than whenever the learner was built.
    reset_seed: Option<u64>,
    q: QNetwork,
    explore_rng: Rng,
    noise_rng: Rng,
    /// Env steps taken and episodes finished, as the learner will count them.
    steps: u64,
    episodes: u64,
    config: DqnConfig,
    total_timesteps: u64,
    scratch: ActScratch,
}

struct Running<B> {
    thread: Option<JoinHandle<()>>,
    steps: Option<Receiver<Sent>>,
    new_envs: SyncSender<(B, u64)>,
    mailbox: Mailbox,
    stop: Arc<AtomicBool>,
}

enum State<B> {
    /// Not started: the learner may still change what the thread will own.
    Idle(Box<Worker<B>>),
    Running(Running<B>),
}

/// The learner's side of the actor thread.
pub struct Actor<B: BatchEnv + 'static> {
    observation_space: Space,
    action_space: Space,
    num_envs: usize,
    state: State<B>,
}

impl<B: BatchEnv + 'static> std::fmt::Debug for Actor<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("running", &matches!(self.state, State::Running(_)))
            .finish_non_exhaustive()
    }
}

/// The actor's generators, derived from the run's seed and the env step it
/// starts at (a resumed run acts on fresh streams).
fn actor_rngs(seed: u64, steps: u64) -> (Rng, Rng) {
    let base = hlynr_rng::derive_seed(seed, steps);
    (
        Rng::from_stream(base, STREAM_ACT_EXPLORE),
        Rng::from_stream(base, STREAM_ACT_NOISE),
    )
}

const STREAM_ACT_EXPLORE: u64 = 0x5D;
const STREAM_ACT_NOISE: u64 = 0x6D;

impl<B: BatchEnv + 'static> Actor<B> {
    /// An actor for `env` acting on `q`, not yet started; the thread resets
    /// `env` with `env_seed` before its first step.
    pub fn new(
        env: B,
        env_seed: u64,
        q: QNetwork,
        config: DqnConfig,
        seed: u64,
        total_timesteps: u64,
    ) -> Self {
        let (explore_rng, noise_rng) = actor_rngs(seed, 0);
        Self {
            observation_space: env.observation_space().clone(),
            action_space: env.action_space().clone(),
            num_envs: env.num_envs(),
            state: State::Idle(Box::new(Worker {
                env,
                reset_seed: Some(env_seed),
                q,
                explore_rng,
                noise_rng,
                steps: 0,
                episodes: 0,
                config,
                total_timesteps,
                scratch: ActScratch::default(),
            })),
        }
    }

    pub fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    pub fn action_space(&self) -> &Space {
        &self.action_space
    }

    pub fn num_envs(&self) -> usize {
        self.num_envs
    }

    fn not_running(&mut self, what: &str) -> Result<&mut Worker<B>> {
        match &mut self.state {
            State::Idle(w) => Ok(w),
            State::Running(_) => Err(TrainError::invalid(
                "DQN actor",
                format!("cannot {what} while the actor thread runs"),
            )),
        }
    }

    /// Continues a run from `steps` env steps and `episodes` episodes: fresh
    /// episodes (the env reset with a seed derived from the run's and the
    /// step) and fresh exploration streams. Only before the thread starts.
    pub fn continue_from(&mut self, seed: u64, steps: u64, episodes: u64) -> Result<()> {
        let w = self.not_running("continue a run")?;
        w.reset_seed = Some(hlynr_rng::derive_seed(seed, steps));
        (w.explore_rng, w.noise_rng) = actor_rngs(seed, steps);
        w.steps = steps;
        w.episodes = episodes;
        Ok(())
    }

    /// Hands the actor new weights: taken before its next step.
    pub fn publish(&mut self, weights: BTreeMap<String, Tensor>) -> Result<()> {
        match &mut self.state {
            State::Idle(w) => w.q.load_state_dict(&weights)?,
            State::Running(r) => {
                *r.mailbox.lock().unwrap_or_else(PoisonError::into_inner) = Some(weights);
            }
        }
        Ok(())
    }

    /// Replaces the env batch, reset with `seed` right before its first
    /// step. Returns true when the replacement is immediate (the thread has
    /// not started); otherwise an [`ActorMessage::EnvReplaced`] marks where
    /// the new batch's steps begin.
    pub fn replace_env(&mut self, env: B, seed: u64) -> Result<bool> {
        match &mut self.state {
            State::Idle(w) => {
                w.env = env;
                w.reset_seed = Some(seed);
                Ok(true)
            }
            State::Running(r) => {
                r.new_envs.send((env, seed)).map_err(|_| {
                    TrainError::invalid("DQN actor", "the actor thread has stopped")
                })?;
                Ok(false)
            }
        }
    }

    /// Starts the thread if it has not started.
    pub fn start(&mut self) -> Result<()> {
        if matches!(self.state, State::Running(_)) {
            return Ok(());
        }
        let (steps_tx, steps_rx) = sync_channel(QUEUE_VECTOR_STEPS);
        let (envs_tx, envs_rx) = sync_channel(1);
        let mailbox: Mailbox = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let link = Link {
            steps: steps_tx,
            new_envs: envs_rx,
            mailbox: mailbox.clone(),
            stop: stop.clone(),
        };
        let running = Running {
            thread: None,
            steps: Some(steps_rx),
            new_envs: envs_tx,
            mailbox,
            stop,
        };
        let State::Idle(worker) = std::mem::replace(&mut self.state, State::Running(running))
        else {
            unreachable!("checked above")
        };
        let thread = std::thread::Builder::new()
            .name("hlynr-actor".into())
            .spawn(move || (*worker).run(&link))
            .map_err(|e| TrainError::invalid("DQN actor", format!("cannot start: {e}")))?;
        if let State::Running(r) = &mut self.state {
            r.thread = Some(thread);
        }
        Ok(())
    }

    /// The next message: waits for one when `wait`, otherwise `None` when
    /// none is waiting. `None` also once the actor has taken its last step
    /// (`total_timesteps`) and every message has been taken. A failure of
    /// the env (or of the thread) is returned as the error.
    pub fn receive(&mut self, wait: bool) -> Result<Option<ActorMessage>> {
        let State::Running(r) = &mut self.state else {
            return Ok(None);
        };
        let Some(rx) = &r.steps else {
            return Ok(None);
        };
        // A thread that ends, by finishing, failing or panicking, drops its
        // end of the queue: the learner learns of it once the queue is empty.
        let sent = if wait {
            rx.recv().ok()
        } else {
            match rx.try_recv() {
                Ok(s) => Some(s),
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => None,
            }
        };
        match sent {
            Some(Sent::Message(m)) => Ok(Some(m)),
            Some(Sent::Failed(e)) => {
                r.finish()?;
                Err(e)
            }
            None => {
                r.finish()?;
                Ok(None)
            }
        }
    }
}

impl<B> Running<B> {
    /// Stops the thread and waits for it; an error if it panicked.
    fn finish(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the queue frees an actor waiting on a full one.
        self.steps = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(panic)) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Err(TrainError::invalid(
                    "DQN actor",
                    format!("the actor thread failed: {message}"),
                ))
            }
            _ => Ok(()),
        }
    }
}

impl<B: BatchEnv + 'static> Drop for Actor<B> {
    fn drop(&mut self) {
        if let State::Running(r) = &mut self.state {
            let _ = r.finish();
        }
    }
}

/// The actor thread's side of the channels.
struct Link<B> {
    steps: SyncSender<Sent>,
    new_envs: Receiver<(B, u64)>,
    mailbox: Mailbox,
    stop: Arc<AtomicBool>,
}

impl<B: BatchEnv> Worker<B> {
    /// Acts until the run's last env step, a stop, or a failure (sent to
    /// the learner).
    fn run(mut self, link: &Link<B>) {
        while !link.stop.load(Ordering::Relaxed) && self.steps < self.total_timesteps {
            let sent = match self.step(link) {
                Ok(messages) => messages,
                Err(e) => {
                    let _ = link.steps.send(Sent::Failed(e));
                    return;
                }
            };
            for m in sent {
                if link.steps.send(Sent::Message(m)).is_err() {
                    return;
                }
            }
        }
    }

    /// Takes a new env batch or new weights if there are, then one step.
    fn step(&mut self, link: &Link<B>) -> Result<Vec<ActorMessage>> {
        let mut sent = Vec::with_capacity(2);
        if let Ok((env, seed)) = link.new_envs.try_recv() {
            self.env = env;
            self.reset_seed = Some(seed);
            sent.push(ActorMessage::EnvReplaced);
        }
        if let Some(seed) = self.reset_seed.take() {
            self.env.reset(seed)?;
        }
        let weights = link
            .mailbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = weights {
            self.q.load_state_dict(&w)?;
        }
        let eps = acting_epsilon(
            &self.config,
            self.total_timesteps,
            self.steps,
            self.episodes,
        );
        let mut rec = Box::<StepRecord>::default();
        let rngs = ActRngs {
            explore: &mut self.explore_rng,
            noise: &mut self.noise_rng,
        };
        act_step(
            &mut self.env,
            &mut self.q,
            eps,
            rngs,
            &mut self.scratch,
            &mut rec,
        )?;
        self.steps += self.env.num_envs() as u64;
        self.episodes += rec.ends.len() as u64;
        sent.push(ActorMessage::Step(rec));
        Ok(sent)
    }
}
