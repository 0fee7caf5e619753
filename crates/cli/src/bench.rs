//! `hlynr bench`: quick throughput figures for the engine and the environments.
//!
//! Times the same workloads as the criterion benches (`cargo bench -p
//! hlynr-bench`) with a simple median-of-batches timer, and prints them next to
//! the targets in `docs/benchmarks.md`. Criterion remains the reference for
//! published numbers; this command is for a fast check on a new machine.

use hlynr_bench::env::{ArenaTicks, CartPoleVec, RacingSteps};
use hlynr_bench::median_secs;
use hlynr_bench::nn::{ConvUpdate, LstmUpdate, PolicyForward, PpoUpdate};
use hlynr_env::Parallelism;
use hlynr_envs::Registry;
use hlynr_rl::algorithm::Algorithm;
use hlynr_rl::trainer::{RunConfig, Value, build_algorithm};

/// The racing seed's configuration, whose learner step W5 times.
const RACING_IQN: &str = include_str!("../../../configs/racing_iqn.yaml");

/// Gradient steps per timed iteration of W5: each iteration also takes one
/// env step and one greedy action, which this many steps make a small share.
const W5_GRADIENT_STEPS: u64 = 16;

/// Env steps W5 collects before it is timed (its `learning_starts`).
const W5_LEARNING_STARTS: u64 = 256;

/// W5: `configs/racing_iqn.yaml`'s DQN (IQN, dueling, double Q, noisy nets,
/// prioritised replay) on the racing env, its replay filled past
/// `learning_starts`; each call is one iteration of `W5_GRADIENT_STEPS`
/// learner steps (sampling, both networks' passes, backward, clipping,
/// Adam, priorities) plus one env step.
fn racing_iqn_learner() -> anyhow::Result<Box<dyn Algorithm>> {
    let overrides = [
        format!("dqn.learning_starts={W5_LEARNING_STARTS}"),
        "dqn.train_freq=1".to_string(),
        format!("dqn.gradient_steps={W5_GRADIENT_STEPS}"),
    ];
    let (config, _): (RunConfig, Value) =
        hlynr_env::config::resolve(RACING_IQN, "configs/racing_iqn.yaml", &overrides)?;
    let envs = Registry::builtin().factory_for(&config)?.make_train(1)?;
    let mut dqn = build_algorithm(&config, envs)?;
    while dqn.num_timesteps() <= W5_LEARNING_STARTS {
        dqn.iterate()?;
    }
    Ok(dqn)
}

/// One measured row.
struct Row {
    name: &'static str,
    value: f64,
    unit: &'static str,
    target: &'static str,
}

/// Runs every workload and prints a table; `repeats` timed batches each.
pub fn run(repeats: usize) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut w1 = PpoUpdate::new(0);
    rows.push(Row {
        name: "W1 PPO update, 2 MLPs 32-128-128, batch 512",
        value: median_secs(|| w1.step(), 50, repeats) * 1e3,
        unit: "ms",
        target: "<= 1.6 ms",
    });
    for (batch, target) in [(16, "<= 15 us"), (1, "<= 10 us")] {
        let mut w2 = PolicyForward::new(batch, 0);
        rows.push(Row {
            name: if batch == 16 {
                "W2 policy forward, batch 16"
            } else {
                "W2 policy forward, batch 1"
            },
            value: median_secs(
                || {
                    std::hint::black_box(w2.step());
                },
                2000,
                repeats,
            ) * 1e6,
            unit: "us",
            target,
        });
    }
    let mut w3 = LstmUpdate::new(0);
    rows.push(Row {
        name: "W3 LSTM 32->128, seq 32, batch 16, update",
        value: median_secs(|| w3.step(), 20, repeats) * 1e3,
        unit: "ms",
        target: "<= 3.5 ms",
    });
    let mut w4 = ConvUpdate::new(0);
    rows.push(Row {
        name: "W4 conv net 64x64x4, batch 32, update",
        value: median_secs(|| w4.step(), 20, repeats) * 1e3,
        unit: "ms",
        target: "<= 3.0 ms",
    });
    let mut w5 = racing_iqn_learner()?;
    rows.push(Row {
        name: "W5 racing IQN learner step, batch 32",
        value: median_secs(
            || {
                w5.iterate().expect("a W5 iteration");
            },
            2,
            repeats,
        ) * 1e3
            / W5_GRADIENT_STEPS as f64,
        unit: "ms",
        target: ">= 1.5x PyTorch (scripts/bench_pytorch.py)",
    });
    for (label, parallelism, target) in [
        (
            "CartPole VecEnv, 256 envs, serial",
            Parallelism::Serial,
            ">= 20 M steps/s",
        ),
        (
            "CartPole VecEnv, 256 envs, rayon",
            Parallelism::Rayon {
                min_envs_per_task: 64,
            },
            "(too cheap to split; Auto stays serial)",
        ),
    ] {
        let mut envs = CartPoleVec::new(256, parallelism);
        let n = envs.num_envs() as f64;
        let secs = median_secs(|| envs.step(), 20_000, repeats);
        rows.push(Row {
            name: label,
            value: n / secs / 1e6,
            unit: "M steps/s",
            target,
        });
    }
    for (label, camera, target) in [
        (
            "racing env, 64x64 camera, 1 thread",
            true,
            ">= 50 k steps/s",
        ),
        ("racing env, 19-beam LIDAR, 1 thread", false, ""),
    ] {
        let mut env = RacingSteps::new(camera);
        let secs = median_secs(|| env.step(), 2_000, repeats);
        rows.push(Row {
            name: label,
            value: 1.0 / secs / 1e3,
            unit: "k steps/s",
            target,
        });
    }
    let mut arena = ArenaTicks::default();
    let secs = median_secs(|| arena.step(), 20_000, repeats);
    rows.push(Row {
        name: "arena world + scripted prey, 1 thread",
        value: 1.0 / secs / 1e3,
        unit: "k ticks/s",
        target: ">= 350 k ticks/s (500x the game's 700)",
    });
    println!(
        "hlynr {} bench (median of {repeats} timed batches)",
        env!("CARGO_PKG_VERSION")
    );
    println!("{:<48} {:>12}  target", "workload", "measured");
    for r in rows {
        let value = format!("{:.3} {}", r.value, r.unit);
        println!("{:<48} {:>12}  {}", r.name, value, r.target);
    }
    Ok(())
}
