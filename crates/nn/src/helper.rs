//! A second thread for the other half of a large product.
//!
//! A training product (a 256-wide layer on a batch of 64) takes a few hundred
//! microseconds on one core, and a learner issues them back to back with
//! short gaps (activations, the loss, the optimiser step) between them. A
//! general pool such as rayon's puts its idle workers to sleep after a few
//! microseconds, and waking one costs about as much as the half product it
//! would take over, so splitting through it gained nothing in a whole DQN run.
//! This helper keeps spinning for [`SPIN`] after each job before it parks,
//! which covers those gaps, and the caller never waits for a helper that has
//! not started: it takes the other half back and computes it itself. So a
//! split product is never much slower than the unsplit one, whatever the
//! helper is doing (parked, busy with another caller's half, or on a machine
//! with one core, where there is no helper).
//!
//! The split must not change results: callers split work into parts whose
//! results do not depend on which thread computes them.

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long the helper spins for the next job before it parks.
pub const SPIN: Duration = Duration::from_micros(300);

/// The slot's states. Only the caller that moved it out of `IDLE` writes the
/// job; only the helper or that caller (whichever moves it out of `POSTED`)
/// runs it.
const IDLE: u8 = 0;
const WRITING: u8 = 1;
const POSTED: u8 = 2;
const RUNNING: u8 = 3;
const DONE: u8 = 4;
const PANICKED: u8 = 5;

/// A type-erased reference to a closure on the caller's stack, held in an
/// `UnsafeCell<Option<_>>` that the one thread running the job takes it from.
#[derive(Clone, Copy)]
struct JobRef {
    data: *const (),
    call: unsafe fn(*const ()),
}

/// Takes the `F` out of the `UnsafeCell<Option<F>>` that `data` points to
/// and calls it.
///
/// # Safety
/// `data` must point to a live `UnsafeCell<Option<F>>` that no other thread
/// accesses during the call.
unsafe fn call<F: FnOnce() + Send>(data: *const ()) {
    // SAFETY: the caller guarantees `data` is a live cell this thread alone
    // accesses.
    let f = unsafe { (*(*data.cast::<UnsafeCell<Option<F>>>()).get()).take() };
    if let Some(f) = f {
        f();
    }
}

struct Slot {
    state: AtomicU8,
    job: UnsafeCell<Option<JobRef>>,
    thread: OnceLock<Option<Thread>>,
}

// SAFETY: `job` is written only by the caller holding the slot in `WRITING`
// and read only by the thread that moved it from `POSTED` (the state's
// acquire/release pairs order those accesses); the closure behind it is
// `Send`, run by exactly one thread, and the caller does not return before
// the job has finished.
unsafe impl Sync for Slot {}

static SLOT: Slot = Slot {
    state: AtomicU8::new(IDLE),
    job: UnsafeCell::new(None),
    thread: OnceLock::new(),
};

/// The helper thread, started on first use; `None` on a one-core machine or
/// where a thread cannot be spawned.
fn helper() -> Option<&'static Thread> {
    SLOT.thread
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            if cores < 2 {
                return None;
            }
            std::thread::Builder::new()
                .name("hlynr-nn-helper".into())
                .spawn(helper_loop)
                .ok()
                .map(|h| h.thread().clone())
        })
        .as_ref()
}

fn helper_loop() {
    loop {
        let idle_since = Instant::now();
        while SLOT.state.load(Ordering::Acquire) != POSTED {
            if idle_since.elapsed() > SPIN {
                // A spurious or stale unpark only costs one more round.
                std::thread::park_timeout(Duration::from_millis(50));
            } else {
                std::hint::spin_loop();
            }
        }
        if SLOT
            .state
            .compare_exchange(POSTED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue; // the caller took its job back
        }
        // SAFETY: in `RUNNING` the job was written before `POSTED` was
        // released, and the caller keeps the closure alive until `DONE`.
        let job = unsafe { (*SLOT.job.get()).expect("a posted job") };
        // SAFETY: `job` was built by `join` from a live closure of the type
        // its `call` expects.
        let outcome = catch_unwind(AssertUnwindSafe(|| unsafe { (job.call)(job.data) }));
        let state = if outcome.is_ok() { DONE } else { PANICKED };
        SLOT.state.store(state, Ordering::Release);
    }
}

/// Runs `a` on the calling thread and `b` on the helper where it is free,
/// and returns when both have finished. `b` runs on the calling thread
/// instead where the helper is busy with another caller's job, absent, or
/// has not picked `b` up by the time `a` is done.
pub fn join<A: FnOnce(), B: FnOnce() + Send>(a: A, b: B) {
    let Some(thread) = helper() else {
        a();
        b();
        return;
    };
    if SLOT
        .state
        .compare_exchange(IDLE, WRITING, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        a();
        b();
        return;
    }
    // Only the thread that runs the job touches `b` until `join` returns.
    let b = UnsafeCell::new(Some(b));
    // SAFETY: this thread holds the slot in `WRITING`; nobody else reads or
    // writes `job` until it is released as `POSTED`.
    unsafe {
        *SLOT.job.get() = Some(JobRef {
            data: (&raw const b).cast(),
            call: call::<B>,
        });
    }
    SLOT.state.store(POSTED, Ordering::Release);
    thread.unpark();
    // Whatever happens in `a`, `b` must have finished (or been taken back)
    // before this frame, which owns `b`, is left: the guard sees to it.
    let posted = Posted;
    a();
    if posted.complete() == PANICKED {
        panic!("the helper thread's half of a split product panicked");
    }
}

/// The job posted by this thread; completing it takes it back and runs it
/// here if the helper has not started it, or waits for the helper.
struct Posted;

impl Posted {
    /// Completes the job; returns how it ended (`DONE` or `PANICKED`).
    fn complete(self) -> u8 {
        std::mem::forget(self);
        finish(true)
    }
}

impl Drop for Posted {
    /// Unwinding from the caller's half: the other half is not needed, but
    /// the helper must be done with it before the caller's frame goes.
    fn drop(&mut self) {
        finish(false);
    }
}

fn finish(run_if_taken_back: bool) -> u8 {
    if SLOT
        .state
        .compare_exchange(POSTED, WRITING, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        // SAFETY: the job is this thread's again (`WRITING`), written by it.
        let job = unsafe { (*SLOT.job.get()).take().expect("a posted job") };
        SLOT.state.store(IDLE, Ordering::Release);
        if run_if_taken_back {
            // SAFETY: the closure lives in `join`'s frame, still running.
            unsafe { (job.call)(job.data) };
        }
        return DONE;
    }
    let state = loop {
        match SLOT.state.load(Ordering::Acquire) {
            RUNNING => std::hint::spin_loop(),
            s => break s,
        }
    };
    SLOT.state.store(IDLE, Ordering::Release);
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn both_halves_run_exactly_once() {
        for _ in 0..2000 {
            let (a, b) = (AtomicUsize::new(0), AtomicUsize::new(0));
            join(
                || {
                    a.fetch_add(1, Ordering::Relaxed);
                },
                || {
                    b.fetch_add(1, Ordering::Relaxed);
                },
            );
            assert_eq!((a.into_inner(), b.into_inner()), (1, 1));
        }
    }

    #[test]
    fn concurrent_callers_each_get_both_halves() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..500 {
                        let out = Mutex::new(Vec::new());
                        join(
                            || out.lock().unwrap().push(1),
                            || out.lock().unwrap().push(2),
                        );
                        let mut v = out.into_inner().unwrap();
                        v.sort();
                        assert_eq!(v, [1, 2]);
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(total.into_inner(), 2000);
    }

    #[test]
    fn a_panic_in_either_half_reaches_the_caller_and_the_helper_survives() {
        let r = catch_unwind(|| join(|| panic!("first half"), || {}));
        assert!(r.is_err());
        let r = catch_unwind(|| join(|| {}, || panic!("second half")));
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        join(
            || {
                n.fetch_add(1, Ordering::Relaxed);
            },
            || {
                n.fetch_add(1, Ordering::Relaxed);
            },
        );
        assert_eq!(n.into_inner(), 2);
    }
}
