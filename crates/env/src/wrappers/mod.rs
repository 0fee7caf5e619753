//! Environment wrappers: per-environment ones implement [`crate::Env`] around an
//! inner env (time limit, action repeat, frame stacking, episode statistics);
//! [`VecNormalize`] wraps a whole [`crate::BatchEnv`].
//!
//! Every wrapper forwards `state`/`set_state` including its own counters and
//! buffers, so a wrapped env restored from a checkpoint continues exactly.
//! A typical stack, innermost first: env, `TimeLimit`, `EpisodeStatistics`
//! (so truncated episodes are counted), `FrameStack`, then a `VecEnv` of those
//! and `VecNormalize` around it (so episode returns are the true ones).

mod action_repeat;
mod episode_stats;
mod frame_stack;
pub mod normalize;
mod time_limit;

pub use action_repeat::ActionRepeat;
pub use episode_stats::EpisodeStatistics;
pub use frame_stack::{FrameStack, FrameStackPolicy, unstacked_space};
pub use normalize::{
    ObsNormalizer, RewardScaler, RunningMeanStd, VecNormalize, VecNormalizeConfig,
};
pub use time_limit::TimeLimit;
