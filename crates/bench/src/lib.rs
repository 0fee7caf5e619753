//! Benchmark workloads, defined once and timed by both criterion (`cargo bench -p
//! hlynr-bench`) and the `hlynr bench` command.
//!
//! The network workloads W1-W4 are the ones the project's targets are stated for
//! (see `docs/benchmarks.md`); `scripts/bench_pytorch.py` runs the same
//! workloads in PyTorch for a same-machine comparison.

pub mod env;
pub mod nn;

use std::time::Instant;

/// Median seconds per call of `f`, over `repeats` timed batches of `inner` calls
/// each, after a warm-up batch.
pub fn median_secs(mut f: impl FnMut(), inner: usize, repeats: usize) -> f64 {
    let inner = inner.max(1);
    for _ in 0..inner.div_ceil(4).max(3) {
        f();
    }
    let mut samples: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            for _ in 0..inner {
                f();
            }
            start.elapsed().as_secs_f64() / inner as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
