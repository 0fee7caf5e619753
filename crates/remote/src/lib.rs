//! Environments that live in another process: a browser game, a simulator
//! in another language. Env clients connect to the learner over WebSocket
//! (`docs/remote.md`), send their agents' observations and rewards, and get
//! actions back; the learner trains on them as a batch of agent slots.
//!
//! - `protocol`: the messages (JSON or MessagePack), dm_env_rpc-style.
//! - `hub`: what the connections and the learner share: agents, their
//!   phases, requests waiting for actions.
//! - `server`: the WebSocket server, on its own thread, which answers a
//!   client itself (held actions) when the learner is busy learning.
//! - `batch`: [`RemoteBatch`], the learner's `BatchEnv`.
//! - `config`: `env.remote` ([`RemoteConfig`]).

mod batch;
mod config;
mod hub;
pub mod protocol;
mod server;

pub use batch::{RemoteBatch, Serving};
pub use config::RemoteConfig;
pub use hub::Counters;
pub use protocol::Spec;
