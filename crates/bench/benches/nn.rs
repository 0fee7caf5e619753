//! Criterion benchmarks of the network-engine workloads W1-W4.

use criterion::{Criterion, criterion_group, criterion_main};
use hlynr_bench::nn::{ConvUpdate, LstmUpdate, PolicyForward, PpoUpdate};

fn workloads(c: &mut Criterion) {
    let mut w1 = PpoUpdate::new(0);
    c.bench_function("W1 ppo update 2x MLP 32-128-128 batch 512", |b| {
        b.iter(|| w1.step())
    });
    for batch in [16, 1] {
        let mut w2 = PolicyForward::new(batch, 0);
        c.bench_function(&format!("W2 policy forward batch {batch}"), |b| {
            b.iter(|| w2.step())
        });
    }
    let mut w3 = LstmUpdate::new(0);
    c.bench_function("W3 lstm 32->128 seq 32 batch 16 update", |b| {
        b.iter(|| w3.step())
    });
    let mut w4 = ConvUpdate::new(0);
    c.bench_function("W4 conv net 64x64x4 batch 32 update", |b| {
        b.iter(|| w4.step())
    });
}

criterion_group!(benches, workloads);
criterion_main!(benches);
