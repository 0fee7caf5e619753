//! Decision-step throughput of the interception env: each tier single-threaded
//! (zero action, resets included), and a 64-env `VecEnv` on `medium` spread
//! over 2 rayon threads. Criterion's throughput is decisions per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hlynr_env::{BatchEnv, Env, Info, Parallelism, VecEnv};
use hlynr_intercept::{InterceptEnv, ScenarioConfig};

/// Decisions per measured iteration (several episodes, so resets count).
const DECISIONS: u64 = 2_000;
const VEC_ENVS: usize = 64;

fn load(tier: &str) -> ScenarioConfig {
    ScenarioConfig::load(tier).unwrap_or_else(|e| panic!("scenario {tier}: {e}"))
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("intercept single-thread");
    group.throughput(Throughput::Elements(DECISIONS));
    for tier in ["easy", "medium", "hard", "extreme", "legacy"] {
        let mut env = InterceptEnv::new(&load(tier)).expect("env builds");
        let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
        let action = vec![0.0f32; env.action_space().flat_dim()];
        let mut info = Info::default();
        env.reset(Some(0), (&mut obs).into(), &mut info).unwrap();
        group.bench_function(tier, |b| {
            b.iter(|| {
                for _ in 0..DECISIONS {
                    info.clear();
                    if env
                        .step(&action, (&mut obs).into(), &mut info)
                        .unwrap()
                        .done()
                    {
                        info.clear();
                        env.reset(None, (&mut obs).into(), &mut info).unwrap();
                    }
                }
            })
        });
    }
    group.finish();
}

fn vec_env(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("rayon pool");
    let mut group = c.benchmark_group("intercept vecenv");
    group.throughput(Throughput::Elements(VEC_ENVS as u64));
    for tier in ["medium", "hard"] {
        let config = load(tier);
        let mut envs = VecEnv::from_fn(VEC_ENVS, |_| {
            InterceptEnv::new(&config).expect("env builds")
        })
        .expect("vec env builds")
        .with_parallelism(Parallelism::Rayon {
            min_envs_per_task: VEC_ENVS / 2,
        });
        let actions = vec![0.0f32; VEC_ENVS * envs.action_space().flat_dim()];
        envs.reset(0).expect("reset");
        group.bench_function(format!("{tier} {VEC_ENVS} envs rayon 2 threads"), |b| {
            pool.install(|| b.iter(|| envs.step(&actions).expect("step")))
        });
    }
    group.finish();
}

criterion_group!(benches, single_thread, vec_env);
criterion_main!(benches);
