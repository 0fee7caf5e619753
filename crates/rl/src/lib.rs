//! hlynr-rl: reinforcement-learning algorithms and run management.
//!
//! Algorithms see environments only through `hlynr_env::BatchEnv` and build their
//! networks from `hlynr_nn`; run management (configuration, logging, checkpoints,
//! evaluation) is shared by every algorithm.

pub mod eval;

pub mod checkpoint;
pub mod compare;
pub mod curriculum;
pub mod doctor;
pub mod metrics;
pub mod monitor;
pub mod normalize_returns;
pub mod policy_net;
pub mod ppo;
pub mod progress;
pub mod recurrent;
pub mod run;
pub mod run_lock;
pub mod signals;
pub mod tensorboard;
pub mod trainer;
