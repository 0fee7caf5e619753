//! One writer per run directory.
//!
//! A training process holds an exclusive lock on `RUN/writer.lock` from the
//! moment it creates or reopens the run until it exits. The lock is the
//! operating system's advisory file lock (`flock` on Unix, `LockFileEx` on
//! Windows), so it disappears with the process: a run killed with `kill -9`
//! never leaves a stale lock behind. A second `hlynr train`/`hlynr resume` on
//! the same run fails at once and names the holder, whose pid, host and start
//! time the lock file records. Readers (`monitor`, `doctor`, `compare`, `eval
//! --model`) never take the lock and keep working on a live run.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{Result, RunError, hostname, iso8601_utc, unix_seconds};

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = "writer.lock";

/// The exclusive right to write one run directory; released on drop or when
/// the process ends, however it ends.
#[derive(Debug)]
pub struct RunLock {
    /// Held open: closing it releases the lock.
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `run_dir` without waiting. Fails with
    /// [`RunError::Locked`], naming the holder, when another process (or
    /// another handle in this one) holds it.
    pub fn acquire(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| RunError::io(&path, format!("cannot open the run's lock file: {e}")))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(RunError::Locked {
                    path: run_dir.display().to_string(),
                    holder: if holder.is_empty() {
                        "another process".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(RunError::io(&path, format!("cannot lock: {e}")));
            }
        }
        let holder = format!(
            "process {} on host {} (since {})\n",
            std::process::id(),
            hostname(),
            iso8601_utc(unix_seconds(SystemTime::now()))
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(holder.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(|e| RunError::io(&path, format!("cannot record the lock holder: {e}")))?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
