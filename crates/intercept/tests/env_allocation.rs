//! The env's step does not allocate once warmed up, and a reset allocates
//! only the interceptor's drawn parameter tables (motor stages and drag
//! table, at most four small vectors): a counting global allocator watches a
//! few thousand decisions, with episode resets, on every tier.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use hlynr_env::{Env, Info};
use hlynr_intercept::{InterceptEnv, ScenarioConfig};

/// Counts allocations (and reallocations) made through the global allocator.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator.
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

/// Allocations during `decisions` steps (and the resets they need) after a
/// warm-up of the same length; `(step allocations, reset allocations, resets)`.
fn allocations(tier: &str, decisions: usize) -> (u64, u64, u64) {
    let config = ScenarioConfig::load(tier).expect("shipped scenario loads");
    let mut env = InterceptEnv::new(&config).expect("env builds");
    let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
    let act_dim = env.action_space().flat_dim();
    let mut info = Info::default();
    env.reset(Some(3), (&mut obs).into(), &mut info).unwrap();
    let (mut step_allocs, mut reset_allocs, mut resets) = (0, 0, 0);
    for phase in 0..2 {
        for i in 0..decisions {
            // A varying action so the command path is exercised.
            let u = ((i % 17) as f32 / 8.0) - 1.0;
            let action: [f32; 3] = [u, -0.5 * u, 0.3];
            info.clear();
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            let done = env
                .step(&action[..act_dim], (&mut obs).into(), &mut info)
                .unwrap()
                .done();
            let mid = ALLOCATIONS.load(Ordering::Relaxed);
            if done {
                info.clear();
                env.reset(None, (&mut obs).into(), &mut info).unwrap();
            }
            let after = ALLOCATIONS.load(Ordering::Relaxed);
            if phase == 1 {
                step_allocs += mid - before;
                reset_allocs += after - mid;
                resets += u64::from(done);
            }
        }
    }
    (step_allocs, reset_allocs, resets)
}

/// Vectors in a drawn interceptor's parameters (aero: stages, and the drag
/// table's Mach, zero-lift and base-drag columns).
const PARAMETER_VECTORS: u64 = 4;

#[test]
fn step_does_not_allocate_and_reset_only_draws_parameters() {
    for tier in ["easy", "medium", "hard", "extreme", "legacy"] {
        let (steps, resets_allocs, resets) = allocations(tier, 3000);
        assert!(resets > 0, "{tier}: no episode ended, resets untested");
        assert_eq!(steps, 0, "{tier}: {steps} allocations in 3000 steps");
        assert!(
            resets_allocs <= PARAMETER_VECTORS * resets,
            "{tier}: {resets_allocs} allocations in {resets} resets"
        );
    }
}
