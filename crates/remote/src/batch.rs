//! The learner's side: remote agents as a training batch whose rows are
//! agent slots (`BatchEnv::active`).
//!
//! A row follows one agent for a *segment* of its episode. `step` gives
//! each followed agent the learner's action, waits for what follows (at
//! most `stall_timeout_ms`), and reports per row:
//! - the outcome, the episode going on: the reward and the next observation;
//! - the end of the episode: the reward, `terminated` or `truncated`, the
//!   last observation as the final one, and the episode's statistics (return
//!   and length as the client reported them, its success and metrics, and
//!   `remote_cuts` / `remote_held_actions`). Only episodes the learner
//!   followed to their end are reported: one that ends after a held action
//!   was not the policy's alone;
//! - a *cut*, when the action could not be used: the client was answered
//!   without it (the learner was learning), left, stalled or sent a message
//!   that was refused. The segment ends as a truncation at the observation
//!   the learner acted on, with reward 0, so the value up to there is
//!   bootstrapped and nothing after it is credited to that action. Only
//!   that one transition is approximate.
//!
//! Rows freed by an end or a cut take agents whose newest observation waits
//! for an action (a new episode, or the rest of a cut one) in the same step,
//! as `VecEnv` auto-resets. While no agent is there at all, `reset` and
//! `step` wait, up to `wait_for_clients_s`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hlynr_env::{BatchEnv, EnvError, EpisodeStats, Info, Space, check_action_batch};
use serde_json::Value;

use crate::config::RemoteConfig;
use crate::hub::{AgentKey, Counters, Hub, Phase, Tally};
use crate::protocol::{Spec, StepType};
use crate::server::{Server, Shared};

/// The agent a row follows and the segment of its episode.
type Follow = (AgentKey, u64);

/// What the server offers besides the protocol.
#[derive(Clone, Debug, Default)]
pub struct Serving {
    /// An HTML page for browsers that `GET /` (a game that is itself the
    /// env client).
    pub page: Option<String>,
    /// Keeps the connection log off standard error.
    pub quiet: bool,
}

/// Remote agents as a batch of `n` agent slots (see the module docs).
#[derive(Debug)]
pub struct RemoteBatch {
    config: RemoteConfig,
    spec: Spec,
    shared: Arc<Shared>,
    server: Server,
    rows: Vec<Option<Follow>>,
    obs: Vec<f32>,
    bytes: Vec<u8>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    final_obs: Vec<f32>,
    final_bytes: Vec<u8>,
    has_final: Vec<bool>,
    active: Vec<bool>,
    infos: Vec<Info>,
}

impl RemoteBatch {
    /// `n` agent slots for clients of `spec`, served at `config.listen`
    /// from now on.
    pub fn new(
        config: RemoteConfig,
        spec: Spec,
        n: usize,
        serving: Serving,
    ) -> hlynr_env::Result<Self> {
        if n == 0 {
            return Err(EnvError::invalid(
                "remote env",
                "needs at least one agent slot",
            ));
        }
        let shared = Shared::new(Hub::new(spec.clone(), n), serving.quiet);
        let server = Server::start(shared.clone(), &config, serving.page)?;
        shared.log(format!(
            "listening on ws://{}/ for env clients ({n} agent slots)",
            server.addr()
        ));
        let (d, b) = (
            spec.observation_space.flat_dim(),
            spec.observation_space.byte_dim(),
        );
        Ok(Self {
            config,
            spec,
            shared,
            server,
            rows: vec![None; n],
            obs: vec![0.0; n * d],
            bytes: vec![0; n * b],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            final_obs: vec![0.0; n * d],
            final_bytes: vec![0; n * b],
            has_final: vec![false; n],
            active: vec![false; n],
            infos: vec![Info::default(); n],
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// What happened on the wire so far.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters
    }

    fn dims(&self) -> (usize, usize) {
        (
            self.spec.observation_space.flat_dim(),
            self.spec.observation_space.byte_dim(),
        )
    }

    fn clear_outputs(&mut self) {
        self.rewards.fill(0.0);
        self.terminated.fill(false);
        self.truncated.fill(false);
        self.has_final.fill(false);
        self.infos.iter_mut().for_each(Info::clear);
    }

    /// Row `i` ends its segment: its current observation becomes the final
    /// one.
    fn keep_final(&mut self, i: usize) {
        let (d, b) = self.dims();
        self.final_obs[i * d..(i + 1) * d].copy_from_slice(&self.obs[i * d..(i + 1) * d]);
        self.final_bytes[i * b..(i + 1) * b].copy_from_slice(&self.bytes[i * b..(i + 1) * b]);
        self.has_final[i] = true;
    }

    /// Row `i` now holds `obs`/`bytes`.
    fn set_obs(&mut self, i: usize, obs: &[f32], bytes: &[u8]) {
        let (d, b) = self.dims();
        self.obs[i * d..(i + 1) * d].copy_from_slice(obs);
        self.bytes[i * b..(i + 1) * b].copy_from_slice(bytes);
    }

    /// Free rows take the agents that wait for an action and no row
    /// follows; agents left over get their held action at once. While no
    /// row follows anyone, waits for an agent (up to `wait_for_clients_s`).
    fn fill_rows(&mut self) -> hlynr_env::Result<()> {
        let deadline = Instant::now() + Duration::from_secs_f64(self.config.wait_for_clients_s);
        let shared = self.shared.clone();
        let mut hub = shared.lock();
        loop {
            let followed: HashSet<Follow> = self.rows.iter().flatten().copied().collect();
            let waiting: Vec<Follow> = hub.unfollowed(&followed).collect();
            let free: Vec<usize> = (0..self.rows.len())
                .filter(|&i| self.rows[i].is_none())
                .collect();
            let mut free = free.into_iter();
            for (key, segment) in waiting {
                match free.next() {
                    Some(i) => {
                        let agent = &hub.agents[&key];
                        let (obs, bytes) = (agent.obs.clone(), agent.bytes.clone());
                        self.set_obs(i, &obs, &bytes);
                        self.rows[i] = Some((key, segment));
                    }
                    None => hub.hold_agent(key),
                }
            }
            for (row, active) in self.rows.iter().zip(&mut self.active) {
                *active = row.is_some();
            }
            if self.active.iter().any(|&a| a) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(EnvError::failed(
                    "remote env",
                    format!(
                        "no env client sent an observation for {} s (clients connect to ws://{}/)",
                        self.config.wait_for_clients_s,
                        self.server.addr()
                    ),
                ));
            }
            hub = shared.wait(hub, deadline - now);
        }
    }

    /// Waits until no delivered row's agent is still acting, at most
    /// `stall_timeout_ms`; the agents still acting then are detached.
    fn await_outcomes(&self, delivered: &[bool]) {
        let deadline = Instant::now() + Duration::from_millis(self.config.stall_timeout_ms);
        let mut hub = self.shared.lock();
        loop {
            let acting: Vec<AgentKey> = self
                .rows
                .iter()
                .zip(delivered)
                .filter_map(|(row, &d)| row.filter(|_| d))
                .filter(|(key, _)| {
                    hub.agents
                        .get(key)
                        .is_some_and(|a| a.phase == Phase::Acting)
                })
                .map(|(key, _)| key)
                .collect();
            if acting.is_empty() {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                for key in acting {
                    if let Some(agent) = hub.agents.get_mut(&key) {
                        agent.phase = Phase::Detached;
                    }
                    hub.counters.stalls += 1;
                    self.shared.log(format!(
                        "client {} agent {}: no outcome within {} ms; its segment is cut",
                        key.0, key.1, self.config.stall_timeout_ms
                    ));
                }
                return;
            }
            hub = self.shared.wait(hub, deadline - now);
        }
    }

    /// Reports an episode's tally in row `i`'s info.
    fn report(&mut self, i: usize, tally: &Tally) {
        let info = &mut self.infos[i];
        info.episode = Some(EpisodeStats {
            episode_return: tally.episode_return,
            episode_length: tally.episode_length,
        });
        info.is_success = tally.is_success;
        for &(k, v) in &tally.metrics {
            info.set(k, v);
        }
        info.set("remote_cuts", tally.cuts as f64);
        info.set("remote_held_actions", tally.held_actions as f64);
    }

    /// Builds row `i` after the learner's action went out (`delivered`) or
    /// could not.
    fn settle(&mut self, hub: &mut Hub, i: usize, delivered: bool) {
        let Some((key, segment)) = self.rows[i] else {
            return;
        };
        if delivered {
            if let Some(done) = hub.finished.remove(&key).filter(|f| f.segment == segment) {
                self.rewards[i] = done.outcome.reward as f32;
                self.set_obs(i, &done.obs, &done.bytes);
                self.keep_final(i);
                self.terminated[i] = done.outcome.step_type == StepType::Terminated;
                self.truncated[i] = done.outcome.step_type == StepType::Truncated;
                self.report(i, &done.tally);
                self.rows[i] = None;
                return;
            }
            let going_on = hub
                .agents
                .get_mut(&key)
                .filter(|a| a.segment == segment)
                .and_then(|a| Some((a.outcome.take()?, a.obs.clone(), a.bytes.clone())));
            if let Some((outcome, obs, bytes)) = going_on {
                self.rewards[i] = outcome.reward as f32;
                self.set_obs(i, &obs, &bytes);
                return;
            }
        }
        // A cut (see the module documentation).
        self.keep_final(i);
        self.truncated[i] = true;
        self.rows[i] = None;
        if let Some(agent) = hub.agents.get_mut(&key) {
            agent.tally.cuts += 1;
        }
    }
}

impl BatchEnv for RemoteBatch {
    fn num_envs(&self) -> usize {
        self.rows.len()
    }

    fn observation_space(&self) -> &Space {
        &self.spec.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.spec.action_space
    }

    /// Follows the agents there are (waiting for one if need be); the seed
    /// is not used: the clients' worlds are their own.
    fn reset(&mut self, _seed: u64) -> hlynr_env::Result<()> {
        {
            let mut hub = self.shared.lock();
            for (key, _) in self.rows.iter_mut().filter_map(Option::take) {
                if let Some(agent) = hub.agents.get_mut(&key)
                    && agent.phase == Phase::Acting
                {
                    agent.phase = Phase::Detached;
                }
            }
        }
        self.clear_outputs();
        self.fill_rows()
    }

    fn step(&mut self, actions: &[f32]) -> hlynr_env::Result<()> {
        let n = self.rows.len();
        check_action_batch(&self.spec.action_space, n, actions)?;
        self.clear_outputs();
        let act_dim = self.spec.action_space.flat_dim();
        let mut delivered = vec![false; n];
        {
            let mut hub = self.shared.lock();
            for (i, row) in self.rows.iter().enumerate() {
                if let Some((key, segment)) = *row {
                    let action = &actions[i * act_dim..(i + 1) * act_dim];
                    delivered[i] = hub.deliver(key, segment, action);
                }
            }
        }
        self.await_outcomes(&delivered);
        {
            let shared = self.shared.clone();
            let mut hub = shared.lock();
            for (i, &d) in delivered.iter().enumerate() {
                self.settle(&mut hub, i, d);
            }
            hub.finished.clear();
        }
        self.fill_rows()
    }

    fn obs(&self) -> &[f32] {
        &self.obs
    }

    fn obs_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn rewards(&self) -> &[f32] {
        &self.rewards
    }

    fn terminated(&self) -> &[bool] {
        &self.terminated
    }

    fn truncated(&self) -> &[bool] {
        &self.truncated
    }

    fn infos(&self) -> &[Info] {
        &self.infos
    }

    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        let d = self.spec.observation_space.flat_dim();
        self.has_final
            .get(i)
            .filter(|&&has| has)
            .map(|_| &self.final_obs[i * d..(i + 1) * d])
    }

    fn final_observation_bytes(&self, i: usize) -> Option<&[u8]> {
        let b = self.spec.observation_space.byte_dim();
        self.has_final
            .get(i)
            .filter(|&&has| has)
            .map(|_| &self.final_bytes[i * b..(i + 1) * b])
    }

    fn active(&self) -> Option<&[bool]> {
        Some(&self.active)
    }

    /// Remote worlds keep no snapshots: a checkpoint records only that the
    /// batch was remote.
    fn state(&self) -> Value {
        serde_json::json!({ "remote": self.server.addr().to_string() })
    }

    /// Restoring follows the agents there are, on fresh segments (the
    /// clients' episodes go on; a resumed run is not bitwise).
    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        if state.get("remote").is_none() {
            return Err(EnvError::state(
                "remote env",
                "the saved batch was not remote",
            ));
        }
        self.reset(0)
    }
}

impl Drop for RemoteBatch {
    fn drop(&mut self) {
        let counters = {
            let mut hub = self.shared.lock();
            hub.closed = true;
            // Requests waiting for actions learn that the learner stopped.
            hub.pending.clear();
            hub.counters
        };
        self.shared.log(format!(
            "stopped: {} connections, {} refused requests, {} stalls, {} held actions",
            counters.connections, counters.refused, counters.stalls, counters.held_actions
        ));
    }
}
