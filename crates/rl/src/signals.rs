//! Stopping a run cleanly on Ctrl-C (SIGINT) or SIGTERM.
//!
//! The first signal only sets a flag. The training loop polls
//! [`StopSignal::stop_requested`] after each update, finishes it, writes a
//! checkpoint and exits with status `interrupted`, so no work is lost and
//! nothing is half-written. A second signal while the first is being handled
//! exits the process at once (status 128 + signal number, the shell
//! convention), for when the clean path is stuck.
//!
//! The handlers only store to atomics, which is async-signal-safe.
//!
//! Once every [`StopSignal`] is dropped, the two signals terminate the process
//! again (exit status 128 + signal number): the signal library cannot restore
//! the original disposition, so a fallback action armed while no handler is
//! active does the default's job.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::run::RunError;

/// The signals that request a clean stop.
pub const STOP_SIGNALS: [i32; 2] = [SIGINT, SIGTERM];

/// The process-wide fallback: exits on a stop signal while no [`StopSignal`]
/// is alive. Registered once, then armed and disarmed.
#[derive(Debug)]
struct Fallback {
    armed: Arc<AtomicBool>,
    active: usize,
}

static FALLBACK: Mutex<Option<Fallback>> = Mutex::new(None);

/// Registers the fallback on first use and counts one more live handler.
fn enter_handler() -> std::io::Result<()> {
    let mut guard = FALLBACK.lock().unwrap_or_else(PoisonError::into_inner);
    if guard.is_none() {
        let armed = Arc::new(AtomicBool::new(false));
        for sig in STOP_SIGNALS {
            signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&armed))?;
        }
        *guard = Some(Fallback { armed, active: 0 });
    }
    if let Some(f) = guard.as_mut() {
        f.active += 1;
        f.armed.store(false, Ordering::SeqCst);
    }
    Ok(())
}

/// Counts one fewer live handler; arms the fallback when none is left.
fn leave_handler() {
    let mut guard = FALLBACK.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(f) = guard.as_mut() {
        f.active = f.active.saturating_sub(1);
        if f.active == 0 {
            f.armed.store(true, Ordering::SeqCst);
        }
    }
}

/// A registered stop request handler. Dropping it makes the signals
/// terminate the process again.
#[derive(Debug)]
pub struct StopSignal {
    /// Set by the first signal; arms the immediate exit on the second.
    signalled: Arc<AtomicBool>,
    /// Number of the last signal received (0 = none).
    last_signal: Arc<AtomicUsize>,
    /// Set by [`StopSignal::request_stop`] (e.g. a time budget).
    requested: Arc<AtomicBool>,
    ids: Vec<SigId>,
    /// Whether this handler counts towards the exit fallback.
    fallback: bool,
}

impl StopSignal {
    /// Installs handlers for SIGINT and SIGTERM.
    pub fn install() -> Result<Self, RunError> {
        Self::install_with(true)
    }

    /// Installs handlers for SIGINT and SIGTERM in a process that has its
    /// own handlers for them (a Python interpreter hosting a run): those
    /// still run after ours (the signal library chains to them), and once
    /// this handler is dropped the signals are theirs alone again, so no
    /// exit fallback is armed.
    pub fn install_in_host() -> Result<Self, RunError> {
        Self::install_with(false)
    }

    fn install_with(fallback: bool) -> Result<Self, RunError> {
        let signalled = Arc::new(AtomicBool::new(false));
        let last_signal = Arc::new(AtomicUsize::new(0));
        let mut ids = Vec::new();
        if fallback {
            enter_handler().map_err(|e| {
                RunError::invalid(
                    "signal handlers",
                    format!("cannot install SIGINT/SIGTERM handlers: {e}"),
                )
            })?;
        }
        let mut register = || -> std::io::Result<()> {
            for sig in STOP_SIGNALS {
                // Order matters: the exit check runs before the flag is set,
                // so it fires only on the second signal.
                ids.push(signal_hook::flag::register_conditional_shutdown(
                    sig,
                    128 + sig,
                    Arc::clone(&signalled),
                )?);
                ids.push(signal_hook::flag::register_usize(
                    sig,
                    Arc::clone(&last_signal),
                    sig as usize,
                )?);
                ids.push(signal_hook::flag::register(sig, Arc::clone(&signalled))?);
            }
            Ok(())
        };
        let result = register();
        if let Err(e) = result {
            for id in ids {
                signal_hook::low_level::unregister(id);
            }
            if fallback {
                leave_handler();
            }
            return Err(RunError::invalid(
                "signal handlers",
                format!("cannot install SIGINT/SIGTERM handlers: {e}"),
            ));
        }
        Ok(StopSignal {
            signalled,
            last_signal,
            requested: Arc::new(AtomicBool::new(false)),
            ids,
            fallback,
        })
    }

    /// Whether the run should stop after the current update.
    pub fn stop_requested(&self) -> bool {
        self.signalled.load(Ordering::SeqCst) || self.requested.load(Ordering::SeqCst)
    }

    /// The signal that requested the stop, if one did (`SIGINT` = 2, `SIGTERM` = 15).
    pub fn signal(&self) -> Option<i32> {
        match self.last_signal.load(Ordering::SeqCst) {
            0 => None,
            s => i32::try_from(s).ok(),
        }
    }

    /// A human-readable reason for the stop, for the manifest and logs.
    pub fn reason(&self) -> Option<String> {
        match self.signal() {
            Some(SIGINT) => Some("stopped by SIGINT (Ctrl-C)".into()),
            Some(SIGTERM) => Some("stopped by SIGTERM".into()),
            Some(s) => Some(format!("stopped by signal {s}")),
            None if self.requested.load(Ordering::SeqCst) => Some("stop requested".into()),
            None => None,
        }
    }

    /// Requests a stop from inside the program (same effect as a signal,
    /// without arming the immediate exit).
    pub fn request_stop(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }
}

impl Drop for StopSignal {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        if self.fallback {
            leave_handler();
        }
    }
}
