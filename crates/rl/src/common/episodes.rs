//! The window of recent finished episodes behind `rollout/ep_rew_mean`,
//! `rollout/ep_len_mean` and `rollout/success_rate`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Statistics of the most recent finished episodes (Stable-Baselines3 keeps 100).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeWindow {
    returns: VecDeque<f64>,
    lengths: VecDeque<u64>,
    /// `info.is_success` of episodes that reported one.
    successes: VecDeque<bool>,
    /// Episodes finished since the start of training.
    pub total_episodes: u64,
}

impl EpisodeWindow {
    /// Window length.
    pub const CAPACITY: usize = 100;

    /// Records a finished episode.
    pub fn push_episode(&mut self, episode_return: f64, length: u64) {
        if self.returns.len() == Self::CAPACITY {
            self.returns.pop_front();
            self.lengths.pop_front();
        }
        self.returns.push_back(episode_return);
        self.lengths.push_back(length);
    }

    /// Records an episode's `info.is_success`.
    pub fn push_success(&mut self, success: bool) {
        if self.successes.len() == Self::CAPACITY {
            self.successes.pop_front();
        }
        self.successes.push_back(success);
    }

    /// Mean undiscounted return (`rollout/ep_rew_mean`), if any episode finished.
    pub fn mean_return(&self) -> Option<f64> {
        mean(self.returns.iter().copied())
    }

    /// Mean length (`rollout/ep_len_mean`).
    pub fn mean_length(&self) -> Option<f64> {
        mean(self.lengths.iter().map(|&l| l as f64))
    }

    /// Fraction of successes among episodes reporting `is_success`
    /// (`rollout/success_rate`).
    pub fn success_rate(&self) -> Option<f64> {
        mean(self.successes.iter().map(|&s| f64::from(u8::from(s))))
    }
}

fn mean(values: impl ExactSizeIterator<Item = f64>) -> Option<f64> {
    let n = values.len();
    (n > 0).then(|| values.sum::<f64>() / n as f64)
}
