//! Return normalisation for the critic.
//!
//! With returns of order 1000, a critic regressing raw returns produces value
//! losses that dwarf the policy loss and, through a shared trunk or the global
//! gradient clip, drown the policy's gradient. With return normalisation the
//! value head predicts *standardised* returns `(R - mu) / sigma`, where `mu`
//! and `sigma` are running statistics of the GAE returns of every rollout so
//! far. Values are converted back to return units (`v sigma + mu`) wherever
//! GAE needs them, so advantages are unaffected. The statistics are updated
//! from each rollout's returns before that rollout's update; the network's
//! outputs are not rescaled when they change (no PopArt output preservation),
//! which is harmless because they change slowly.

use hlynr_env::RunningMeanStd;
use serde::{Deserialize, Serialize};

/// Running statistics of returns and the conversions to and from the critic's scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReturnNormalizer {
    stats: RunningMeanStd,
    epsilon: f64,
}

impl Default for ReturnNormalizer {
    fn default() -> Self {
        Self::new()
    }
}

impl ReturnNormalizer {
    /// Fresh statistics: mean 0 and variance 1 until the first update, which
    /// replaces them entirely (no prior weight, so a return scale far from 1
    /// is not distorted by the prior).
    pub fn new() -> Self {
        Self {
            stats: RunningMeanStd::with_initial_count(1, 0.0).expect("0 is a valid prior weight"),
            epsilon: 1e-8,
        }
    }

    /// Merges a rollout's returns; they must be finite (nothing changes otherwise).
    pub fn update(&mut self, returns: &[f32]) -> hlynr_env::Result<()> {
        self.stats.update(returns)
    }

    /// Running mean of returns.
    pub fn mean(&self) -> f64 {
        self.stats.mean()[0]
    }

    /// Running standard deviation of returns (with the variance floor).
    pub fn std(&self) -> f64 {
        (self.stats.var()[0] + self.epsilon).sqrt()
    }

    /// Return units to the critic's scale.
    #[inline]
    pub fn normalize(&self, value: f32) -> f32 {
        ((value as f64 - self.mean()) / self.std()) as f32
    }

    /// The critic's scale to return units.
    #[inline]
    pub fn denormalize(&self, value: f32) -> f32 {
        (value as f64 * self.std() + self.mean()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardises_and_inverts() {
        let mut n = ReturnNormalizer::new();
        let returns: Vec<f32> = (0..1000).map(|i| 1000.0 + (i % 10) as f32).collect();
        n.update(&returns).unwrap();
        assert!((n.mean() - 1004.5).abs() < 0.01, "{}", n.mean());
        assert!((n.std() - 8.25f64.sqrt()).abs() < 0.01, "{}", n.std());
        let z = n.normalize(1009.0);
        assert!((z - 4.5 / 8.25f32.sqrt()).abs() < 1e-3, "{z}");
        assert!((n.denormalize(z) - 1009.0).abs() < 1e-3);
        let before = n.clone();
        assert!(n.update(&[f32::NAN]).is_err());
        assert_eq!(n, before);
    }
}
