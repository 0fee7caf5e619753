//! Collecting a rollout allocates nothing once the buffers have their size:
//! batched inference, environment steps and buffer writes all reuse memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use hlynr_nn::{Lstm, Tensor};
use hlynr_rl::env_config::EnvConfig;
use hlynr_rl::env_factory::make_classic_vec_env;
use hlynr_rl::ppo::{EpisodeWindow, Ppo, PpoConfig};
use hlynr_rng::Rng;

/// Counts allocations made by the whole test process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The policy's products run on the allocation-free small-batch kernel
/// (`hlynr_nn::small_gemm`), so after the first rollout has sized every buffer
/// the later ones never touch the heap; nor does a recurrent policy's step.
#[test]
fn second_and_later_rollouts_allocate_nothing() {
    // 8 envs (batched products) and 1 env (the batch-1 path).
    for n_envs in [8, 1] {
        check_rollouts_allocate_nothing(n_envs);
    }
    check_lstm_steps_allocate_nothing(8);
    check_lstm_steps_allocate_nothing(1);
}

fn check_rollouts_allocate_nothing(n_envs: usize) {
    let env_config = EnvConfig {
        id: "CartPole-v1".into(),
        python: None,
        max_episode_steps: None,
        settings: serde_json::json!({}),
        frame_stack: None,
        remote: None,
    };
    let config = PpoConfig {
        n_steps: 64,
        batch_size: 64,
        ..PpoConfig::default()
    };
    let envs = make_classic_vec_env(&env_config, n_envs).unwrap();
    let mut ppo = Ppo::new(config, envs, 7, 1_000_000).unwrap();
    // Warm-up: the first rollout sizes every buffer; the following ones fill
    // the statistics window of the last 100 episodes (which grows as episodes
    // arrive). The thread pool's workers allocate once when they start.
    ppo.collect_rollout().unwrap();
    while (ppo.episodes().total_episodes as usize) < 2 * EpisodeWindow::CAPACITY {
        ppo.collect_rollout().unwrap();
    }
    rayon::broadcast(|_| ());
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..3 {
        ppo.collect_rollout().unwrap();
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "3 rollouts of {n_envs} x 64 steps allocated {allocations} times"
    );
}

/// A recurrent policy's step (`Lstm::step` on a batch of environments) reuses
/// its scratch once sized: stepping it again allocates nothing. Called from the
/// one test of this file, because the counter sees every thread and a second
/// test starting in parallel would be counted.
fn check_lstm_steps_allocate_nothing(batch: usize) {
    let (input, hidden) = (6, 64);
    let mut rng = Rng::seed_from_u64(3);
    let mut lstm = Lstm::new(input, hidden, &mut rng);
    let mut x = Tensor::zeros(&[batch, input]);
    rng.fill_normal_f32(x.data_mut());
    let mut h = Tensor::zeros(&[batch, hidden]);
    let mut c = Tensor::zeros(&[batch, hidden]);
    lstm.step(&x, &mut h, &mut c).unwrap();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..64 {
        lstm.step(&x, &mut h, &mut c).unwrap();
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "64 LSTM steps allocated {allocations} times"
    );
    // The state moved: the steps really ran.
    assert!(h.data().iter().any(|&v| v != 0.0));
}
