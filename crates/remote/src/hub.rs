//! The state shared by the learner and the client connections: every agent
//! a client plays, where it is in its episode, and the requests waiting for
//! actions. Connections change it under one lock; the learner reads and
//! answers it under the same lock (see `batch.rs` for the learner's side).
//!
//! # An agent's phases
//!
//! - `Waiting`: its newest observation awaits an action. When the learner
//!   does not answer within `act_timeout_ms`, the connection answers with
//!   the held action and the phase records it (`held`): the learner's action
//!   for that observation will come too late, so its row is cut.
//! - `Acting`: the learner's action went out; its outcome has not come.
//! - `Detached`: the learner stopped waiting for the outcome (a stall or a
//!   refused message): the next observation starts a new segment.
//!
//! An episode that ends after the learner's action moves to `finished`,
//! where the learner finds it; the agent's name is free for its next
//! episode at once (a prey that dies and is born again in one message).
//!
//! A *segment* is the stretch of an episode the learner sees on one row.
//! Segments are numbered across all agents, so the learner can tell that
//! the observation it acted on was overtaken.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use hlynr_env::Space;
use tokio::sync::oneshot;

use crate::protocol::{AgentAction, AgentStep, Code, Spec, Status, StepType};

/// A connection.
pub type ConnId = u64;
/// An agent: its connection and the client's name for it.
pub type AgentKey = (ConnId, u32);

/// Most agents one client plays at once (and so in one request): what a
/// client can make the learner hold in memory is bounded.
pub const MAX_AGENTS_PER_CLIENT: usize = 4096;
/// Most metrics on one agent's last step.
const MAX_METRICS: usize = 16;

/// Where an agent is in its episode (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Its newest observation awaits an action; `held` once the client was
    /// answered without the learner.
    Waiting { held: bool },
    /// The learner's action went out.
    Acting,
    /// The learner gave up on this segment.
    Detached,
}

/// What followed the learner's action.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The action's reward.
    pub reward: f64,
    /// `mid`, `terminated` or `truncated`.
    pub step_type: StepType,
}

/// An episode's tally, reported when it ends.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Sum of every reward the client reported.
    pub episode_return: f64,
    /// Steps the client reported (held ones too).
    pub episode_length: u64,
    /// Segments cut for learning.
    pub cuts: u64,
    /// Actions the client got without the learner.
    pub held_actions: u64,
    /// The client's success flag and metrics on its last step.
    pub is_success: Option<bool>,
    /// See [`Tally::is_success`].
    pub metrics: Vec<(&'static str, f64)>,
}

/// An episode that ended after the learner's action, for the learner to
/// report.
#[derive(Debug)]
pub struct Finished {
    /// The segment the learner followed.
    pub segment: u64,
    /// Its last step.
    pub outcome: Outcome,
    /// The last observation, value lane.
    pub obs: Vec<f32>,
    /// The last observation, byte lane.
    pub bytes: Vec<u8>,
    /// The whole episode.
    pub tally: Tally,
}

/// One agent a client plays.
#[derive(Debug)]
pub struct Agent {
    /// See [`Phase`].
    pub phase: Phase,
    /// Segments begun so far (see the module documentation).
    pub segment: u64,
    /// The newest observation, value lane.
    pub obs: Vec<f32>,
    /// The newest observation, byte lane.
    pub bytes: Vec<u8>,
    /// The outcome of the learner's action, once it came.
    pub outcome: Option<Outcome>,
    /// The action the client was last given (repeated when held).
    pub last_action: Vec<f32>,
    /// The episode so far.
    pub tally: Tally,
}

/// A request waiting for its actions.
#[derive(Debug)]
pub struct Pending {
    /// The agents that get an action, in the request's order.
    pub agents: Vec<u32>,
    /// Their actions as they are decided.
    pub answers: Vec<Option<AgentAction>>,
    /// Where the complete answer goes.
    pub reply: Option<oneshot::Sender<Vec<AgentAction>>>,
}

impl Pending {
    fn is_complete(&self) -> bool {
        self.answers.iter().all(Option::is_some)
    }

    /// Sends the answer if every agent has its action; true once sent.
    fn send_if_complete(&mut self) -> bool {
        if !self.is_complete() {
            return false;
        }
        let actions = self.answers.iter_mut().filter_map(Option::take).collect();
        if let Some(reply) = self.reply.take() {
            // A connection that dropped meanwhile no longer listens.
            let _ = reply.send(actions);
        }
        true
    }
}

/// Counts of what happened on the wire, for the log and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted.
    pub connections: u64,
    /// Connections that ended (closed or dropped).
    pub disconnects: u64,
    /// Requests refused with a status.
    pub refused: u64,
    /// Agents whose outcome the learner gave up waiting for.
    pub stalls: u64,
    /// Actions answered without the learner.
    pub held_actions: u64,
}

/// Everything shared (see the module documentation).
#[derive(Debug)]
pub struct Hub {
    /// The run's spaces.
    pub spec: Spec,
    /// The action a held agent gets before it had any.
    pub neutral_action: Vec<f32>,
    /// Rows the learner trains on: agents followed at once.
    pub max_agents: usize,
    /// Every agent, by connection and name.
    pub agents: BTreeMap<AgentKey, Agent>,
    /// The request each connection waits on.
    pub pending: HashMap<ConnId, Pending>,
    /// Episodes that ended after the learner's action (see [`Finished`]).
    pub finished: HashMap<AgentKey, Finished>,
    /// See [`Counters`].
    pub counters: Counters,
    /// The learner has stopped.
    pub closed: bool,
    next_conn: ConnId,
    next_segment: u64,
}

/// Names of client metrics, interned once: info metrics are `&'static str`
/// and clients must not grow memory without bound, so at most 64 names.
fn intern(name: &str) -> Option<&'static str> {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(&known) = names.iter().find(|n| **n == name) {
        return Some(known);
    }
    if names.len() >= 64 {
        return None;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.push(leaked);
    Some(leaked)
}

/// An action inside `space` that means "nothing in particular": 0 clamped
/// into each box, the first choice of each discrete part.
fn neutral_action(space: &Space) -> Vec<f32> {
    match space {
        Space::Box { low, high, .. } => low
            .iter()
            .zip(high)
            .map(|(&lo, &hi)| 0f32.clamp(lo, hi))
            .collect(),
        Space::Discrete { .. } => vec![0.0],
        Space::MultiDiscrete { nvec } => vec![0.0; nvec.len()],
        Space::Tuple { spaces } => spaces.iter().flat_map(neutral_action).collect(),
    }
}

/// The refusal of a request that would have a client play more agents than
/// [`MAX_AGENTS_PER_CLIENT`].
fn too_many(in_request: usize, playing: usize) -> Status {
    Status::invalid(format!(
        "{in_request} agents in one request, {playing} with those already playing; a client \
         plays at most {MAX_AGENTS_PER_CLIENT}"
    ))
}

impl Hub {
    /// An empty hub for agents of `spec`, `max_agents` of them followed at
    /// once.
    pub fn new(spec: Spec, max_agents: usize) -> Self {
        Self {
            neutral_action: neutral_action(&spec.action_space),
            max_agents,
            spec,
            agents: BTreeMap::new(),
            pending: HashMap::new(),
            finished: HashMap::new(),
            counters: Counters::default(),
            closed: false,
            next_conn: 0,
            next_segment: 0,
        }
    }

    /// A new connection's id.
    pub fn connect(&mut self) -> ConnId {
        self.next_conn += 1;
        self.counters.connections += 1;
        self.next_conn
    }

    /// A connection ended: its agents are gone (the learner cuts their
    /// rows) and its request is dropped.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.counters.disconnects += 1;
        self.pending.remove(&conn);
        self.agents.retain(|(c, _), _| *c != conn);
    }

    /// `leave_world`: the connection's agents leave.
    pub fn leave(&mut self, conn: ConnId) {
        self.agents.retain(|(c, _), _| *c != conn);
    }

    /// A refused request: the connection's agents the learner waits on are
    /// detached, so a client that sends garbage does not stall learning.
    pub fn refuse(&mut self, conn: ConnId) {
        self.counters.refused += 1;
        for (_, agent) in self.agents.range_mut((conn, 0)..=(conn, u32::MAX)) {
            if agent.phase == Phase::Acting {
                agent.phase = Phase::Detached;
            }
        }
    }

    /// Applies a `reset` (`is_reset`) or `step` of connection `conn` and
    /// registers the agents that now wait for actions, answered on the
    /// returned channel. Everything is checked before anything changes.
    pub fn submit(
        &mut self,
        conn: ConnId,
        entries: Vec<AgentStep>,
        is_reset: bool,
    ) -> Result<oneshot::Receiver<Vec<AgentAction>>, Status> {
        if self.closed {
            return Err(Status {
                code: Code::Unavailable,
                message: "the learner has stopped".into(),
            });
        }
        let steps = self.check(conn, &entries, is_reset)?;
        if is_reset {
            self.leave(conn);
        }
        let mut waiting = Vec::new();
        for (entry, step_type) in entries.into_iter().zip(steps) {
            let key = (conn, entry.agent);
            if step_type == StepType::First {
                self.begin(key, entry);
                waiting.push(key.1);
                continue;
            }
            let next_segment = self.new_segment();
            let agent = self
                .agents
                .get_mut(&key)
                .expect("checked: the agent exists");
            let reward = entry.reward.unwrap_or(0.0);
            agent.tally.episode_return += reward;
            agent.tally.episode_length += 1;
            agent.obs = entry.observation;
            agent.bytes = entry.observation_bytes;
            let ends = step_type.is_last();
            if ends {
                agent.tally.is_success = entry.is_success;
                agent.tally.metrics = entry
                    .metrics
                    .iter()
                    .filter_map(|(k, &v)| Some((intern(k)?, v)))
                    .collect();
            } else {
                waiting.push(key.1);
            }
            match (agent.phase, ends) {
                (Phase::Acting, false) => {
                    agent.outcome = Some(Outcome { reward, step_type });
                    agent.phase = Phase::Waiting { held: false };
                }
                (Phase::Acting, true) => {
                    let agent = self.agents.remove(&key).expect("present");
                    self.finished.insert(
                        key,
                        Finished {
                            segment: agent.segment,
                            outcome: Outcome { reward, step_type },
                            obs: agent.obs,
                            bytes: agent.bytes,
                            tally: agent.tally,
                        },
                    );
                }
                // The outcome of an action the learner did not choose in
                // time (held) or no longer follows (detached): the episode
                // goes on in a new segment for learning, or ends unreported
                // (the learner did not follow it to its end).
                (Phase::Waiting { .. } | Phase::Detached, false) => {
                    agent.segment = next_segment;
                    agent.phase = Phase::Waiting { held: false };
                }
                (Phase::Waiting { .. } | Phase::Detached, true) => {
                    self.agents.remove(&key);
                }
            }
        }
        let (reply, rx) = oneshot::channel();
        let mut pending = Pending {
            answers: vec![None; waiting.len()],
            agents: waiting,
            reply: Some(reply),
        };
        if !pending.send_if_complete() {
            self.pending.insert(conn, pending);
        }
        Ok(rx)
    }

    /// The step type of every entry, or why the request is refused.
    fn check(
        &self,
        conn: ConnId,
        entries: &[AgentStep],
        is_reset: bool,
    ) -> Result<Vec<StepType>, Status> {
        if entries.len() > MAX_AGENTS_PER_CLIENT {
            return Err(too_many(entries.len(), entries.len()));
        }
        // An agent's last type in this request so far.
        let mut seen: HashMap<u32, StepType> = HashMap::new();
        let mut types = Vec::with_capacity(entries.len());
        for e in entries {
            let name = e.agent;
            let step_type = e.step_type.unwrap_or(if is_reset {
                StepType::First
            } else {
                StepType::Mid
            });
            match seen.insert(name, step_type) {
                None => {}
                Some(before) if before.is_last() && step_type == StepType::First => {}
                Some(_) => {
                    return Err(Status::invalid(format!(
                        "agent {name} appears twice (only a last step may be followed by the \
                         agent's next first)"
                    )));
                }
            }
            types.push(step_type);
            if is_reset && step_type != StepType::First {
                return Err(Status::invalid(format!(
                    "agent {name}: a reset starts episodes (step_type first)"
                )));
            }
            self.spec
                .observation_space
                .check(&e.observation)
                .map_err(|m| Status::invalid(format!("agent {name}: observation: {m}")))?;
            self.spec
                .observation_space
                .check_bytes(&e.observation_bytes)
                .map_err(|m| Status::invalid(format!("agent {name}: observation_bytes: {m}")))?;
            if step_type == StepType::First {
                if e.reward.is_some() {
                    return Err(Status::invalid(format!(
                        "agent {name}: a first step has no reward"
                    )));
                }
            } else {
                match e.reward {
                    Some(r) if r.is_finite() => {}
                    Some(r) => {
                        return Err(Status::invalid(format!("agent {name}: reward is {r}")));
                    }
                    None => {
                        return Err(Status::invalid(format!(
                            "agent {name}: a {step_type:?} step needs its reward"
                        )));
                    }
                }
                if !self.agents.contains_key(&(conn, name)) {
                    return Err(Status::precondition(format!(
                        "agent {name} has no episode going on: start one with step_type first"
                    )));
                }
            }
            if e.metrics.len() > MAX_METRICS {
                return Err(Status::invalid(format!(
                    "agent {name}: {} metrics; at most {MAX_METRICS}",
                    e.metrics.len()
                )));
            }
            for (k, v) in &e.metrics {
                let plain = !k.is_empty()
                    && k.len() <= 48
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !plain || !v.is_finite() {
                    return Err(Status::invalid(format!(
                        "agent {name}: metric `{}` = {v}: names are up to 48 letters, digits \
                         or _, values finite",
                        crate::protocol::clip(k, 60)
                    )));
                }
            }
        }
        let live = if is_reset {
            0
        } else {
            self.agents.range((conn, 0)..=(conn, u32::MAX)).count()
        };
        let joining = entries
            .iter()
            .zip(&types)
            .filter(|(_, t)| **t == StepType::First)
            .filter(|(e, _)| is_reset || !self.agents.contains_key(&(conn, e.agent)))
            .count();
        if live + joining > MAX_AGENTS_PER_CLIENT {
            return Err(too_many(entries.len(), live + joining));
        }
        Ok(types)
    }

    /// A segment number never used before.
    fn new_segment(&mut self) -> u64 {
        self.next_segment += 1;
        self.next_segment
    }

    /// Starts an episode for `key` (an episode it was in is abandoned).
    fn begin(&mut self, key: AgentKey, entry: AgentStep) {
        let segment = self.new_segment();
        self.agents.insert(
            key,
            Agent {
                phase: Phase::Waiting { held: false },
                segment,
                obs: entry.observation,
                bytes: entry.observation_bytes,
                outcome: None,
                last_action: self.neutral_action.clone(),
                tally: Tally::default(),
            },
        );
    }

    /// The learner gives `action` to agent `key` for its segment `segment`;
    /// false when it is too late (the agent was answered without it, moved
    /// on, or is gone).
    pub fn deliver(&mut self, key: AgentKey, segment: u64, action: &[f32]) -> bool {
        let Some(agent) = self.agents.get_mut(&key) else {
            return false;
        };
        if agent.segment != segment || agent.phase != (Phase::Waiting { held: false }) {
            return false;
        }
        let Some(pending) = self.pending.get_mut(&key.0) else {
            return false;
        };
        let Some(at) = pending.agents.iter().position(|&a| a == key.1) else {
            return false;
        };
        agent.phase = Phase::Acting;
        agent.last_action.clear();
        agent.last_action.extend_from_slice(action);
        pending.answers[at] = Some(AgentAction {
            agent: key.1,
            action: action.to_vec(),
            held: false,
        });
        if pending.send_if_complete() {
            self.pending.remove(&key.0);
        }
        true
    }

    /// The learner's act timeout passed for connection `conn`: its agents
    /// still without an action get their held one (nothing to do when the
    /// learner answered everything in the meantime).
    pub fn answer_held(&mut self, conn: ConnId) {
        self.hold(conn, None);
    }

    /// Agent `key` gets its held action now: no row is free for it.
    pub fn hold_agent(&mut self, key: AgentKey) {
        self.hold(key.0, Some(key.1));
    }

    /// Answers the unanswered agents of `conn`'s request (only `only`, when
    /// given) with their held actions.
    fn hold(&mut self, conn: ConnId, only: Option<u32>) {
        let Some(pending) = self.pending.get_mut(&conn) else {
            return;
        };
        for (name, answer) in pending.agents.iter().zip(&mut pending.answers) {
            if answer.is_some() || only.is_some_and(|o| o != *name) {
                continue;
            }
            let action = match self.agents.get_mut(&(conn, *name)) {
                Some(agent) => {
                    agent.phase = Phase::Waiting { held: true };
                    agent.tally.held_actions += 1;
                    agent.last_action.clone()
                }
                None => self.neutral_action.clone(),
            };
            self.counters.held_actions += 1;
            *answer = Some(AgentAction {
                agent: *name,
                action,
                held: true,
            });
        }
        if pending.send_if_complete() {
            self.pending.remove(&conn);
        }
    }

    /// Agents whose newest observation awaits the learner and that no row
    /// follows (`followed`), in a fixed order.
    pub fn unfollowed<'a>(
        &'a self,
        followed: &'a std::collections::HashSet<(AgentKey, u64)>,
    ) -> impl Iterator<Item = (AgentKey, u64)> + 'a {
        self.agents.iter().filter_map(move |(&key, a)| {
            let open = a.phase == (Phase::Waiting { held: false })
                && self
                    .pending
                    .get(&key.0)
                    .is_some_and(|p| p.agents.contains(&key.1));
            (open && !followed.contains(&(key, a.segment))).then_some((key, a.segment))
        })
    }
}
