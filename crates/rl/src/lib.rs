//! hlynr-rl: reinforcement-learning algorithms and run management.
//!
//! Algorithms see environments only through `hlynr_env::BatchEnv` and build their
//! networks from `hlynr_nn`; run management (configuration, logging, checkpoints,
//! evaluation) is shared by every algorithm.

pub mod eval;
pub mod format;

pub mod algorithm;
pub mod checkpoint;
pub mod common;
pub mod compare;
pub mod curriculum;
pub mod doctor;
pub mod dqn;
pub mod env_config;
pub mod env_factory;
pub mod episode_metrics;
pub mod error;
pub mod export;
pub mod metrics;
pub mod model_policy;
pub mod monitor;
pub mod normalize_returns;
pub mod policy;
pub mod ppo;
pub mod progress;
pub mod recurrent;
pub mod run;
pub mod run_config;
pub mod signals;
pub mod sink;
pub mod tensorboard;
pub mod trainer;
