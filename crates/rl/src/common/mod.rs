//! Parts every learning algorithm shares: hyperparameter schedules over
//! training progress, the window of recent episodes, and the non-finite guard.

pub mod episodes;
pub mod nonfinite;
pub mod schedule;
