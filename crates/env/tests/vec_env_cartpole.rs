//! The vectorised environment on the real CartPole task: the registered stack
//! (time limit, episode statistics) stepped serially and in parallel must give
//! bitwise-identical batches, and a restored state must continue exactly.

use hlynr_env::classic::CartPole;
use hlynr_env::{BatchEnv, EpisodeStatistics, Parallelism, TimeLimit, VecEnv};
use hlynr_rng::Rng;

type Task = EpisodeStatistics<TimeLimit<CartPole>>;

fn batch(n: usize, parallelism: Parallelism) -> VecEnv<Task> {
    VecEnv::from_fn(n, |_| {
        EpisodeStatistics::new(TimeLimit::new(CartPole::new(), 500).unwrap())
    })
    .unwrap()
    .with_parallelism(parallelism)
}

/// Steps with random actions and returns every output as exact bits, plus the
/// number of finished episodes.
fn run(v: &mut VecEnv<Task>, action_seed: u64, steps: usize) -> (Vec<u32>, usize) {
    let mut rng = Rng::seed_from_u64(action_seed);
    let mut actions = vec![0.0f32; v.num_envs()];
    let mut trace = Vec::new();
    let mut episodes = 0;
    for _ in 0..steps {
        for a in &mut actions {
            *a = rng.below(2) as f32;
        }
        v.step(&actions).unwrap();
        trace.extend(v.obs().iter().map(|x| x.to_bits()));
        trace.extend(v.rewards().iter().map(|x| x.to_bits()));
        for i in 0..v.num_envs() {
            let flags = u32::from(v.terminated()[i]) | (u32::from(v.truncated()[i]) << 1);
            trace.push(flags);
            if let Some(fin) = v.final_observation(i) {
                episodes += 1;
                trace.extend(fin.iter().map(|x| x.to_bits()));
                let stats = v.infos()[i].episode.expect("finished episode has stats");
                trace.push(stats.episode_length as u32);
            }
        }
    }
    (trace, episodes)
}

#[test]
fn cartpole_batch_is_identical_serial_and_parallel() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let mut serial = batch(64, Parallelism::Serial);
    serial.reset(2024).unwrap();
    let (expected, episodes) = run(&mut serial, 7, 300);
    // Random actions end CartPole episodes within a few dozen steps.
    assert!(episodes > 64, "only {episodes} episodes finished");
    for parallelism in [
        Parallelism::Rayon {
            min_envs_per_task: 5,
        },
        Parallelism::default(),
    ] {
        let mut v = batch(64, parallelism);
        let got = pool.install(|| {
            v.reset(2024).unwrap();
            run(&mut v, 7, 300)
        });
        assert!(got.0 == expected, "{parallelism:?} differs from serial");
    }
}

#[test]
fn cartpole_batch_state_round_trip_continues_exactly() {
    let mut v = batch(16, Parallelism::Serial);
    v.reset(5).unwrap();
    run(&mut v, 1, 37);
    let saved = serde_json::to_string(&v.state()).unwrap();
    let expected = run(&mut v, 2, 200);
    let mut restored = batch(16, Parallelism::Serial);
    restored
        .set_state(&serde_json::from_str(&saved).unwrap())
        .unwrap();
    assert_eq!(run(&mut restored, 2, 200), expected);
}
