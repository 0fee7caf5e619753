//! Small building blocks of the rules: the fire-once latch, bounded
//! histories, and the least-squares trend the rules use (the median is
//! [`crate::format::median`]).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Turns a per-observation condition into one-shot findings with hysteresis.
///
/// The latch fires when the condition has held for `needed` consecutive
/// observations; after firing it stays raised (and silent) until the
/// condition has been false for `rearm_after` consecutive observations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Latch {
    /// Consecutive observations with the condition true.
    pub streak: u32,
    /// Consecutive observations with the condition false while raised.
    clear: u32,
    /// Fired and not yet re-armed.
    raised: bool,
}

impl Latch {
    /// Records one observation; true when the rule fires now.
    pub fn update(&mut self, condition: bool, needed: u32, rearm_after: u32) -> bool {
        if condition {
            self.streak = self.streak.saturating_add(1);
            self.clear = 0;
            if !self.raised && self.streak >= needed.max(1) {
                self.raised = true;
                return true;
            }
        } else {
            self.streak = 0;
            if self.raised {
                self.clear += 1;
                if self.clear >= rearm_after.max(1) {
                    self.raised = false;
                    self.clear = 0;
                }
            }
        }
        false
    }
}

/// The last `capacity` values of a series (finite values only: the rules
/// reason about trends, and non-finite values have their own rule).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct History {
    values: VecDeque<f64>,
}

impl History {
    /// Appends `x`, dropping the oldest values beyond `capacity`.
    pub fn push(&mut self, x: f64, capacity: usize) {
        self.values.push_back(x);
        while self.values.len() > capacity.max(1) {
            self.values.pop_front();
        }
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The values, oldest first.
    pub fn to_vec(&self) -> Vec<f64> {
        self.values.iter().copied().collect()
    }

    /// The oldest value held.
    pub fn first(&self) -> Option<f64> {
        self.values.front().copied()
    }

    /// Largest value held.
    pub fn max(&self) -> Option<f64> {
        self.values.iter().copied().reduce(f64::max)
    }
}

/// Least-squares line of `ys` against their index `0..n`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Trend {
    /// Fitted change per index step.
    pub slope: f64,
    /// Pearson correlation of the values with the index (0 for a constant
    /// series).
    pub correlation: f64,
    /// Fitted change over the whole series: `slope * (n - 1)`.
    pub change: f64,
}

/// The trend of `ys`; `None` for fewer than 2 values.
pub(crate) fn trend(ys: &[f64]) -> Option<Trend> {
    let n = ys.len();
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mean_x = (nf - 1.0) / 2.0;
    let mean_y = ys.iter().sum::<f64>() / nf;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (i, &y) in ys.iter().enumerate() {
        let dx = i as f64 - mean_x;
        let dy = y - mean_y;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    let slope = sxy / sxx;
    let correlation = if syy > 0.0 {
        sxy / (sxx * syy).sqrt()
    } else {
        0.0
    };
    Some(Trend {
        slope,
        correlation,
        change: slope * (nf - 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latch_fires_once_per_episode_of_the_condition() {
        let mut l = Latch::default();
        let pattern = [
            true, true, true, true, true, false, true, false, false, true, true,
        ];
        let fired: Vec<bool> = pattern.iter().map(|&c| l.update(c, 2, 2)).collect();
        // Fires on the 2nd true; the single false at index 5 does not re-arm
        // (2 needed); two falses (7, 8) re-arm; fires again at index 10.
        let expected = [
            false, true, false, false, false, false, false, false, false, false, true,
        ];
        assert_eq!(fired, expected);
    }

    #[test]
    fn trend_matches_hand_computed_values() {
        // y = 2x + 1: slope 2, perfect correlation, change 2 * 3.
        let t = trend(&[1.0, 3.0, 5.0, 7.0]).unwrap();
        assert!((t.slope - 2.0).abs() < 1e-12);
        assert!((t.correlation - 1.0).abs() < 1e-12);
        assert!((t.change - 6.0).abs() < 1e-12);
        // Symmetric noise around a constant: slope 0.
        let t = trend(&[1.0, -1.0, -1.0, 1.0]).unwrap();
        assert!(t.slope.abs() < 1e-12 && t.correlation.abs() < 1e-12);
        assert_eq!(trend(&[5.0, 5.0]).unwrap().correlation, 0.0);
        assert!(trend(&[1.0]).is_none());
    }

    #[test]
    fn history_keeps_the_newest_values() {
        let mut h = History::default();
        for x in 0..5 {
            h.push(f64::from(x), 3);
        }
        assert_eq!(h.to_vec(), [2.0, 3.0, 4.0]);
        assert_eq!((h.first(), h.max(), h.len()), (Some(2.0), Some(4.0), 3));
    }
}
