//! Criterion benchmarks of vectorised environment throughput.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hlynr_bench::env::CartPoleVec;
use hlynr_env::Parallelism;

fn cartpole(c: &mut Criterion) {
    let mut group = c.benchmark_group("cartpole vecenv random actions");
    for (label, parallelism) in [
        ("serial", Parallelism::Serial),
        (
            "rayon",
            Parallelism::Rayon {
                min_envs_per_task: 64,
            },
        ),
    ] {
        let mut envs = CartPoleVec::new(256, parallelism);
        group.throughput(Throughput::Elements(envs.num_envs() as u64));
        group.bench_function(format!("256 envs {label}"), |b| b.iter(|| envs.step()));
    }
    group.finish();
}

criterion_group!(benches, cartpole);
criterion_main!(benches);
