//! hlynr-env: the environment API, vectorised environments, wrappers and the
//! classic-control tasks used to validate algorithms.
//!
//! Semantics follow Gymnasium (`terminated` vs `truncated`, `reset(seed)`), with
//! flat buffers (an `f32` lane, and a `u8` lane for frames) so that a batch of
//! environments fills contiguous `[N, obs_dim]` observation arrays without
//! allocating.

pub mod classic;
pub mod config;
pub mod env;
pub mod error;
pub mod hex;
pub mod obs;
pub mod policy;
pub mod space;
pub mod vec_env;
pub mod wrappers;

pub use env::{Env, EpisodeStats, Info, Step, checked_step};
pub use error::{EnvError, Result};
pub use obs::{ObsMut, ObsRef};
pub use policy::{Policy, PolicyInput};
pub use space::{Dtype, Space};
pub use vec_env::{BatchEnv, Parallelism, VecEnv, check_action_batch};
pub use wrappers::{
    ActionRepeat, EpisodeStatistics, FrameStack, FrameStackPolicy, ObsNormalizer, RewardScaler,
    RunningMeanStd, TimeLimit, VecNormalize, VecNormalizeConfig, unstacked_space,
};
