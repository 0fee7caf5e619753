//! What one periodic evaluation measured, and how `best/` ranks evaluations.

use serde::{Deserialize, Serialize};

use super::PolicyEpisodes;

/// The key `best/` is chosen by: curriculum stage first (an evaluation on a
/// later, harder stage ranks above any on an earlier one), then success
/// rate, then mean return.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalScore {
    /// Curriculum stage the evaluation ran on (0 without a curriculum).
    #[serde(default)]
    pub stage: usize,
    /// Success rate; `null` for envs that define no success.
    pub success_rate: Option<f64>,
    /// Mean undiscounted return.
    pub mean_return: f64,
}

impl EvalScore {
    /// Whether `self` beats `other` (success rate, then return; a rate
    /// beats none).
    pub fn beats(&self, other: &EvalScore) -> bool {
        if self.stage != other.stage {
            return self.stage > other.stage;
        }
        match (self.success_rate, other.success_rate) {
            (Some(a), Some(b)) if a != b => a > b,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            _ => self.mean_return > other.mean_return,
        }
    }

    /// Whether `self` improves on `other` by at least `min_delta` in the
    /// primary measure: the success rate (a fraction) when both define one,
    /// else the mean return. A later curriculum stage always improves; with
    /// `min_delta` 0 this is [`EvalScore::beats`].
    pub fn improves_on(&self, other: &EvalScore, min_delta: f64) -> bool {
        if min_delta <= 0.0 || self.stage != other.stage {
            return self.beats(other);
        }
        let gain = match (self.success_rate, other.success_rate) {
            (Some(a), Some(b)) => a - b,
            _ => self.mean_return - other.mean_return,
        };
        gain >= min_delta
    }
}

/// What one evaluation measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    /// Env steps when it ran.
    pub env_steps: u64,
    /// Curriculum stage it ran on (0 without a curriculum).
    #[serde(default)]
    pub stage: usize,
    /// Episodes.
    pub episodes: u64,
    /// Mean undiscounted return.
    pub mean_reward: f64,
    /// Mean episode length.
    pub mean_ep_length: f64,
    /// Fraction of successful episodes; `null` when the env defines none.
    pub success_rate: Option<f64>,
}

impl EvalSummary {
    /// Summarises one policy's episodes.
    pub fn of(results: &PolicyEpisodes, env_steps: u64) -> Self {
        let eps = &results.episodes;
        let n = eps.len().max(1) as f64;
        let flagged = eps.iter().any(|e| e.is_success.is_some());
        EvalSummary {
            env_steps,
            stage: 0,
            episodes: eps.len() as u64,
            mean_reward: eps.iter().map(|e| e.episode_return).sum::<f64>() / n,
            mean_ep_length: eps.iter().map(|e| e.length as f64).sum::<f64>() / n,
            success_rate: flagged
                .then(|| eps.iter().filter(|e| e.is_success == Some(true)).count() as f64 / n),
        }
    }

    /// The score `best/` is chosen by.
    pub fn score(&self) -> EvalScore {
        EvalScore {
            stage: self.stage,
            success_rate: self.success_rate,
            mean_return: self.mean_reward,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rate_ranks_before_return() {
        let s = |r: Option<f64>, m: f64| EvalScore {
            stage: 0,
            success_rate: r,
            mean_return: m,
        };
        assert!(s(Some(0.9), -10.0).beats(&s(Some(0.8), 100.0)));
        assert!(s(Some(0.8), 5.0).beats(&s(Some(0.8), 4.0)));
        assert!(!s(Some(0.8), 4.0).beats(&s(Some(0.8), 4.0)));
        assert!(s(None, 500.0).beats(&s(None, 499.0)));
        assert!(s(Some(0.0), 0.0).beats(&s(None, 1e9)));
        // A later curriculum stage ranks above any score on an earlier one.
        let later = EvalScore {
            stage: 1,
            ..s(Some(0.1), -5.0)
        };
        assert!(later.beats(&s(Some(1.0), 100.0)));
        assert!(!s(Some(1.0), 100.0).beats(&later));
    }

    #[test]
    fn an_improvement_is_a_gain_of_at_least_min_delta_in_the_primary_measure() {
        let s = |stage: usize, r: Option<f64>, m: f64| EvalScore {
            stage,
            success_rate: r,
            mean_return: m,
        };
        let base = s(0, Some(0.50), 10.0);
        assert!(s(0, Some(0.55), 0.0).improves_on(&base, 0.05));
        assert!(
            !s(0, Some(0.54), 99.0).improves_on(&base, 0.05),
            "return does not count beside a success rate"
        );
        assert!(s(0, None, 20.0).improves_on(&s(0, None, 10.0), 10.0));
        assert!(!s(0, None, 19.9).improves_on(&s(0, None, 10.0), 10.0));
        // 0 is any strict gain, as `beats`.
        assert!(s(0, Some(0.5), 10.5).improves_on(&base, 0.0));
        assert!(!base.improves_on(&base, 0.0));
        // A new curriculum stage always improves.
        assert!(s(1, Some(0.0), -5.0).improves_on(&base, 0.5));
    }
}
