//! The run directory: where one training run keeps everything it produces.
//!
//! ```text
//! runs/<name>-<YYYYmmdd-HHMMSS>/
//!   config.yaml            the fully resolved config (every default filled in)
//!   manifest.json          version, git commit, start/end, host, seed, status
//!   events.out.tfevents.*  TensorBoard scalars
//!   metrics.jsonl          one JSON object per log interval
//!   checkpoints/           see `checkpoint`
//!   eval/                  evaluation reports
//!   writer.lock            held by the one process writing the run (see `run::lock`)
//! ```
//!
//! The resolved config is the single source of truth for everything built
//! later from the run (resume, eval, serving), so it is written once, at
//! creation, atomically. The manifest records the run's status so a reader
//! can tell a finished run from one that crashed: it says `running` from
//! creation until [`RunDir::finish`], and a run dropped without a final status
//! (early return, panic) is marked `failed` on drop.
//!
//! This module also owns [`RunError`], the error type of run management
//! (run directory, metrics, TensorBoard files, checkpoints, progress, signals).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

mod lock;

pub use lock::RunLock;

/// Everything that can go wrong in run management. Every variant names the
/// file or thing involved.
#[derive(Debug, Error)]
pub enum RunError {
    /// A file or directory could not be read or written.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// A file exists but its contents are damaged or inconsistent.
    #[error("{path}: corrupt: {message}")]
    Corrupt { path: String, message: String },
    /// An argument or value outside what is allowed.
    #[error("{context}: {message}")]
    Invalid { context: String, message: String },
    /// Another process is writing the run.
    #[error(
        "{path}: the run is being written by {holder}; a run has one writer at a time: \
         wait for it to finish, or stop it (Ctrl-C) and resume it then"
    )]
    Locked { path: String, holder: String },
}

/// Result alias for run management.
pub type Result<T> = std::result::Result<T, RunError>;

impl RunError {
    /// An I/O failure on `path`.
    pub fn io(path: &Path, message: impl std::fmt::Display) -> Self {
        RunError::Io {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }

    /// Damaged contents of `path`.
    pub fn corrupt(path: &Path, message: impl Into<String>) -> Self {
        RunError::Corrupt {
            path: path.display().to_string(),
            message: message.into(),
        }
    }

    /// An invalid argument.
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        RunError::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }
}

/// What a [`ResumeRecord`] names as its checkpoint when the run started over
/// from step 0 because it had written none yet.
pub const NO_CHECKPOINT: &str = "none (no checkpoint yet: started over from step 0)";

/// Version of the manifest layout; bumped on incompatible changes.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// File names inside a run directory.
pub const CONFIG_FILE: &str = "config.yaml";
/// The manifest file name.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The metrics stream file name.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The checkpoints directory name.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The evaluation reports directory name.
pub const EVAL_DIR: &str = "eval";

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started and not yet finished (or crashed without a chance to say so).
    Running,
    /// Reached its step budget, or ended by `run.early_stop`.
    Completed,
    /// Stopped on request (Ctrl-C, SIGTERM) after writing a checkpoint.
    Interrupted,
    /// Stopped by an error.
    Failed,
}

/// One continuation of the run from a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeRecord {
    /// When the continuation started (UTC, ISO 8601).
    pub at: String,
    /// The checkpoint directory it continued from, relative to the run.
    pub checkpoint: String,
    /// Total env steps at that checkpoint.
    pub env_steps: u64,
    /// The command line of the continuing process.
    pub command_line: Vec<String>,
}

/// `manifest.json`: what a run is and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT_VERSION`] at writing.
    pub format_version: u32,
    /// Version of hlynr that started the run.
    pub hlynr_version: String,
    /// The run's name as given (without the timestamp).
    pub name: String,
    /// Commit of the source tree, when it is a git checkout.
    pub git_commit: Option<String>,
    /// Start time (UTC, ISO 8601).
    pub started_at: String,
    /// End time (UTC, ISO 8601) once the run has a final status.
    pub ended_at: Option<String>,
    /// Machine name.
    pub host: String,
    /// Process id of the process that last wrote the status.
    pub pid: u32,
    /// The run's master seed.
    pub seed: u64,
    /// Where the run stands.
    pub status: RunStatus,
    /// Why the run failed or was interrupted, when it did.
    pub status_message: Option<String>,
    /// The command line that started the run.
    pub command_line: Vec<String>,
    /// Continuations from checkpoints, oldest first.
    #[serde(default)]
    pub resumes: Vec<ResumeRecord>,
}

/// A run directory and its manifest.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    manifest: Manifest,
    /// Whether this handle is responsible for the final status (it created or
    /// resumed the run), so dropping it unfinished marks the run failed.
    owns_status: bool,
    /// The writer's lock (`None` for a read-only handle), released when the
    /// handle drops, after its `Drop` has recorded the final status.
    lock: Option<RunLock>,
}

/// What [`RunDir::create`] needs to know.
#[derive(Clone, Debug)]
pub struct NewRun<'a> {
    /// Parent directory of all runs (`runs/` by default).
    pub runs_dir: &'a Path,
    /// Run name: letters, digits, `.`, `_`, `-`.
    pub name: &'a str,
    /// The master seed.
    pub seed: u64,
    /// The fully resolved config, written to `config.yaml`.
    pub resolved_config: &'a Value,
    /// The command line to record (usually `std::env::args()`).
    pub command_line: Vec<String>,
}

impl RunDir {
    /// Creates `runs_dir/<name>-<YYYYmmdd-HHMMSS>/` (UTC, now) with its
    /// config, manifest and `checkpoints/` directory. Two runs of the same
    /// name started within one second get suffixes `-2`, `-3`, ...
    pub fn create(new: &NewRun<'_>) -> Result<Self> {
        Self::create_at(new, SystemTime::now())
    }

    /// [`RunDir::create`] with an explicit start time (for tests and replays).
    pub fn create_at(new: &NewRun<'_>, started: SystemTime) -> Result<Self> {
        validate_run_name(new.name)?;
        fs::create_dir_all(new.runs_dir)
            .map_err(|e| RunError::io(new.runs_dir, format!("cannot create directory: {e}")))?;
        let unix_s = unix_seconds(started);
        let base = format!("{}-{}", new.name, compact_utc(unix_s));
        let path = create_unique_dir(new.runs_dir, &base)?;
        let lock = RunLock::acquire(&path)?;
        let checkpoints = path.join(CHECKPOINTS_DIR);
        fs::create_dir(&checkpoints)
            .map_err(|e| RunError::io(&checkpoints, format!("cannot create directory: {e}")))?;
        let manifest = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            hlynr_version: env!("CARGO_PKG_VERSION").to_string(),
            name: new.name.to_string(),
            git_commit: git_commit(&std::env::current_dir().unwrap_or_default()),
            started_at: iso8601_utc(unix_s),
            ended_at: None,
            host: hostname(),
            pid: std::process::id(),
            seed: new.seed,
            status: RunStatus::Running,
            status_message: None,
            command_line: new.command_line.clone(),
            resumes: Vec::new(),
        };
        let run = RunDir {
            path,
            manifest,
            owns_status: true,
            lock: Some(lock),
        };
        write_config(&run.config_path(), new.resolved_config)?;
        run.write_manifest()?;
        Ok(run)
    }

    /// Opens an existing run read-only (for eval, doctor, compare): the
    /// manifest is read and validated; dropping the handle changes nothing.
    pub fn open(path: &Path) -> Result<Self> {
        let manifest_path = path.join(MANIFEST_FILE);
        let text = fs::read_to_string(&manifest_path).map_err(|e| {
            RunError::io(
                &manifest_path,
                format!("cannot read manifest (is this a run directory?): {e}"),
            )
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| RunError::corrupt(&manifest_path, format!("invalid manifest: {e}")))?;
        if manifest.format_version != MANIFEST_FORMAT_VERSION {
            return Err(RunError::corrupt(
                &manifest_path,
                format!(
                    "manifest format version {} is not the supported version {MANIFEST_FORMAT_VERSION}",
                    manifest.format_version
                ),
            ));
        }
        Ok(RunDir {
            path: path.to_path_buf(),
            manifest,
            owns_status: false,
            lock: None,
        })
    }

    /// Opens a run to continue it from `checkpoint` (at `env_steps`), or from
    /// the beginning when it has none, under the writer's `lock` (taken with
    /// [`RunLock::acquire`] before anything in the run was read for the
    /// continuation): the status goes back to `running` and the continuation
    /// is recorded. The returned handle owns the final status and the lock,
    /// as one from [`RunDir::create`].
    pub fn resume(
        path: &Path,
        lock: RunLock,
        checkpoint: Option<&Path>,
        env_steps: u64,
        command_line: Vec<String>,
    ) -> Result<Self> {
        if lock.path().parent() != Some(path) {
            return Err(RunError::invalid(
                "RunDir::resume",
                format!(
                    "the lock {} is not the lock of {}",
                    lock.path().display(),
                    path.display()
                ),
            ));
        }
        let mut run = Self::open(path)?;
        run.lock = Some(lock);
        let relative = match checkpoint {
            Some(c) => c.strip_prefix(path).unwrap_or(c).display().to_string(),
            None => NO_CHECKPOINT.to_string(),
        };
        run.manifest.resumes.push(ResumeRecord {
            at: iso8601_utc(unix_seconds(SystemTime::now())),
            checkpoint: relative,
            env_steps,
            command_line,
        });
        run.manifest.status = RunStatus::Running;
        run.manifest.status_message = None;
        run.manifest.ended_at = None;
        run.manifest.pid = std::process::id();
        run.manifest.host = hostname();
        run.owns_status = true;
        run.write_manifest()?;
        Ok(run)
    }

    /// Records the final status (with a reason for `failed`/`interrupted`)
    /// and the end time.
    pub fn finish(&mut self, status: RunStatus, message: Option<String>) -> Result<()> {
        self.manifest.status = status;
        self.manifest.status_message = message;
        self.manifest.ended_at = Some(iso8601_utc(unix_seconds(SystemTime::now())));
        self.owns_status = false;
        self.write_manifest()
    }

    /// The run directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The manifest as last read or written.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// `config.yaml`.
    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    /// `manifest.json`.
    pub fn manifest_path(&self) -> PathBuf {
        self.path.join(MANIFEST_FILE)
    }

    /// `metrics.jsonl`.
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join(METRICS_FILE)
    }

    /// `checkpoints/`.
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.path.join(CHECKPOINTS_DIR)
    }

    /// `eval/` (created on first use by whoever writes reports).
    pub fn eval_dir(&self) -> PathBuf {
        self.path.join(EVAL_DIR)
    }

    /// The resolved config written at creation.
    pub fn read_config(&self) -> Result<Value> {
        read_config(&self.config_path())
    }

    fn write_manifest(&self) -> Result<()> {
        let path = self.manifest_path();
        let mut text = serde_json::to_string_pretty(&self.manifest)
            .map_err(|e| RunError::io(&path, format!("cannot serialise manifest: {e}")))?;
        text.push('\n');
        hlynr_nn::io::write_atomic(&path, text.as_bytes())
            .map_err(|e| RunError::io(&path, e.to_string()))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.owns_status && self.manifest.status == RunStatus::Running {
            // Best effort: a drop cannot report errors, and the manifest then
            // still says `running`, which readers treat as "ended abnormally"
            // when no process holds the run.
            let _ = self.finish(
                RunStatus::Failed,
                Some("the run ended without recording a final status (error or panic)".into()),
            );
        }
    }
}

/// Writes `value` as YAML to `path` atomically.
pub fn write_config(path: &Path, value: &Value) -> Result<()> {
    let text = serde_norway::to_string(value)
        .map_err(|e| RunError::io(path, format!("cannot serialise config as YAML: {e}")))?;
    hlynr_nn::io::write_atomic(path, text.as_bytes()).map_err(|e| RunError::io(path, e.to_string()))
}

/// Reads a YAML config into a JSON value.
pub fn read_config(path: &Path) -> Result<Value> {
    let text =
        fs::read_to_string(path).map_err(|e| RunError::io(path, format!("cannot read: {e}")))?;
    serde_norway::from_str(&text).map_err(|e| RunError::corrupt(path, format!("invalid YAML: {e}")))
}

/// Run names become directory names, so only a safe alphabet is allowed.
pub fn validate_run_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 128 || name.starts_with('.') || !name.chars().all(ok_char) {
        return Err(RunError::invalid(
            "run name",
            format!(
                "`{name}` is not a valid run name: use 1-128 letters, digits, `.`, `_` or `-`, not starting with `.`"
            ),
        ));
    }
    Ok(())
}

/// Creates `parent/base`, or `parent/base-2`, `-3`, ... if taken. Uses
/// `create_dir` (not `create_dir_all`) so two processes never share a run.
fn create_unique_dir(parent: &Path, base: &str) -> Result<PathBuf> {
    for n in 1..=1000u32 {
        let name = if n == 1 {
            base.to_string()
        } else {
            format!("{base}-{n}")
        };
        let path = parent.join(name);
        match fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(RunError::io(&path, format!("cannot create directory: {e}"))),
        }
    }
    Err(RunError::io(
        &parent.join(base),
        "1000 run directories with this name and start second already exist",
    ))
}

/// Whole seconds since the Unix epoch (0 for times before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A UTC calendar date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcDateTime {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day of month, 1-31.
    pub day: u32,
    /// Hour, 0-23.
    pub hour: u32,
    /// Minute, 0-59.
    pub minute: u32,
    /// Second, 0-59 (Unix time has no leap seconds).
    pub second: u32,
}

impl UtcDateTime {
    /// The calendar date and time of `unix_s` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_seconds(unix_s: u64) -> Self {
        let days = (unix_s / 86_400) as i64;
        let secs = (unix_s % 86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        UtcDateTime {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
        }
    }
}

/// Converts days since 1970-01-01 to (year, month, day) in the proleptic
/// Gregorian calendar. Works in 400-year eras (146,097 days) whose years start
/// on 1 March, so the leap day is the last day of the year and month lengths
/// follow a fixed linear pattern.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // shift the epoch to 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of March-based year
    let mp = (5 * doy + 2) / 153; // month index, March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYYmmdd-HHMMSS` (UTC), the run directory suffix.
pub fn compact_utc(unix_s: u64) -> String {
    let t = UtcDateTime::from_unix_seconds(unix_s);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `YYYY-mm-ddTHH:MM:SSZ` (UTC).
pub fn iso8601_utc(unix_s: u64) -> String {
    let t = UtcDateTime::from_unix_seconds(unix_s);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// The machine's name (from the kernel, then `/etc/hostname`, then
/// `$HOSTNAME`), or `localhost`. Only characters safe in file names are kept,
/// since the name is part of TensorBoard event file names.
pub fn hostname() -> String {
    let candidates = [
        fs::read_to_string("/proc/sys/kernel/hostname").ok(),
        fs::read_to_string("/etc/hostname").ok(),
        std::env::var("HOSTNAME").ok(),
        std::env::var("COMPUTERNAME").ok(),
    ];
    for c in candidates.into_iter().flatten() {
        let cleaned: String = c
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .collect();
        if !cleaned.is_empty() {
            return cleaned;
        }
    }
    "localhost".to_string()
}

/// The commit checked out in the git repository containing `start`, read
/// from `.git` directly (no `git` process): `HEAD`, then the loose ref or
/// `packed-refs`. `None` outside a repository or when anything is unreadable.
pub fn git_commit(start: &Path) -> Option<String> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        let dot_git = d.join(".git");
        if dot_git.exists() {
            return commit_in(&git_dir_of(&dot_git)?);
        }
        dir = d.parent();
    }
    None
}

/// `.git` is a directory, or (worktrees, submodules) a file `gitdir: <path>`.
fn git_dir_of(dot_git: &Path) -> Option<PathBuf> {
    if dot_git.is_dir() {
        return Some(dot_git.to_path_buf());
    }
    let text = fs::read_to_string(dot_git).ok()?;
    let target = text.trim().strip_prefix("gitdir:")?.trim();
    let target = Path::new(target);
    Some(if target.is_absolute() {
        target.to_path_buf()
    } else {
        dot_git.parent()?.join(target)
    })
}

fn commit_in(git_dir: &Path) -> Option<String> {
    let head = fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref:").map(str::trim) else {
        return is_object_id(head).then(|| head.to_string());
    };
    // Linked worktrees keep shared refs in the common dir.
    let common = fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|| git_dir.to_path_buf());
    for base in [git_dir, common.as_path()] {
        if let Ok(id) = fs::read_to_string(base.join(reference)) {
            let id = id.trim();
            if is_object_id(id) {
                return Some(id.to_string());
            }
        }
        if let Ok(packed) = fs::read_to_string(base.join("packed-refs")) {
            for line in packed.lines() {
                if let Some((id, name)) = line.split_once(' ')
                    && name.trim() == reference
                    && is_object_id(id)
                {
                    return Some(id.to_string());
                }
            }
        }
    }
    None
}

/// SHA-1 (40) or SHA-256 (64) hex object ids.
fn is_object_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        // 1970-01-01, a leap day, the day after, and a far date.
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2100 is not a leap year: 2100-02-28 is followed by 2100-03-01.
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
    }

    #[test]
    fn timestamps_format_in_utc() {
        // 2024-02-29T23:59:59Z
        assert_eq!(compact_utc(1_709_251_199), "20240229-235959");
        assert_eq!(iso8601_utc(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn every_day_of_four_centuries_advances_by_one() {
        // Walking day by day across 1970..2370 (includes 2000, 2100, 2400-era
        // rules) must give strictly consecutive valid dates.
        let month_len = |y: i64, m: u32| match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut prev = civil_from_days(0);
        for d in 1..146_097 {
            let cur = civil_from_days(d);
            let (y, m, day) = prev;
            let expected = if day < month_len(y, m) {
                (y, m, day + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(cur, expected, "day {d}");
            prev = cur;
        }
    }

    #[test]
    fn run_names_are_checked() {
        assert!(validate_run_name("intercept_ppo-v2.1").is_ok());
        for bad in ["", "a/b", "..", ".hidden", "sp ace", "x\u{e9}"] {
            assert!(validate_run_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_ids_are_validated() {
        assert!(is_object_id(&"a".repeat(40)));
        assert!(!is_object_id(&"g".repeat(40)));
        assert!(!is_object_id("abc"));
    }
}
