//! Checkpoints: everything needed to continue a run exactly, written so that
//! a crash at any instant never leaves a half-written checkpoint in use and
//! never loses the last good one.
//!
//! # Layout
//!
//! ```text
//! checkpoints/
//!   step-000100000/    model.safetensors, optimizer.safetensors, state.json,
//!                      resume/ (the algorithm's resume-only files, if any)
//!   last/              the newest checkpoint (a full copy; its resume/ files
//!                      are hard links to the step checkpoint's)
//!   best/              the best by the eval metric (a full copy, no resume/)
//! ```
//!
//! Resume-only files ([`ResumeFiles`]: a replay buffer) are streamed to disk
//! once per save and verified by streaming on load. Being one file on disk
//! under two names, a resume file damaged in place is damaged in both `last/`
//! and its step checkpoint; resume then falls back to an older step
//! checkpoint, as for any other damage.
//!
//! `model.safetensors` holds the network's parameters under their PyTorch
//! names (counters as I64); `optimizer.safetensors` the optimizer moments with
//! its scalars as metadata (see `hlynr_nn::optim`); `state.json` the format
//! version, total env steps, the size and SHA-256 of both tensor files and
//! the caller's state (counters, schedule positions, RNG states, normaliser
//! statistics, curriculum, config fingerprint, ...), plus the SHA-256 of all
//! that as canonical JSON, so a flipped byte anywhere is detected on load.
//!
//! # Writing atomically
//!
//! A checkpoint named `X` is written into `.tmp-X-<pid>/`, each file synced,
//! then the directory synced. It is then renamed to `X.new` (parent synced).
//! If `X` exists it is renamed to `X.old`, then `X.new` to `X`, each rename
//! followed by a parent sync, and finally `X.old` is deleted. Directory
//! renames are atomic on POSIX file systems, and a directory only ever gets a
//! name without the `.tmp-` prefix once complete, so at every instant at least
//! one complete copy of `X` exists as `X`, `X.new` or `X.old`.
//!
//! # Recovering
//!
//! [`recover_interrupted_writes`] (run before every write and by
//! [`latest_valid_checkpoint`]) finishes an interrupted swap: an `X.new` is
//! complete and newest, so it becomes `X` (the current `X`, if any, is
//! discarded); an `X.old` with no `X` is moved back; an `X.old` beside an `X`
//! is deleted; `.tmp-*` directories of other processes are partial and
//! deleted.
//!
//! # Loading
//!
//! [`read_checkpoint`] checks that every file is present, has the recorded
//! size and SHA-256, parses, that optimizer moments have the shape of the
//! parameter they belong to, and that the optimizer scalars are JSON (what
//! they mean is checked by the algorithm that imports them).
//! [`latest_valid_checkpoint`] returns the newest checkpoint that passes,
//! together with every newer one that failed and why.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use hlynr_nn::io::{Loaded, TensorEntry};
use hlynr_nn::optim::OPTIMIZER_METADATA_KEY;
use hlynr_nn::{NamedParam, OptimizerState, ParamKind, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::run::RunError;

/// Version of the checkpoint layout; bumped on incompatible changes.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;

/// Model file name.
pub const MODEL_FILE: &str = "model.safetensors";
/// Optimizer file name.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// State file name.
pub const STATE_FILE: &str = "state.json";
/// The newest checkpoint's directory.
pub const LAST: &str = "last";
/// The best checkpoint's directory.
pub const BEST: &str = "best";
/// Directory of a checkpoint's resume-only files.
pub const RESUME_DIR: &str = "resume";

/// Large files only a resume needs (an off-policy learner's replay buffer).
/// [`CheckpointManager::save`] streams them into the newest step checkpoint
/// alone, never assembling them in memory, records their size and SHA-256
/// like every other file, and gives `last/` hard links to them instead of a
/// second copy; `best/`, which only evaluation and rollback read, gets none.
pub trait ResumeFiles {
    /// The files' names: plain file names, unique.
    fn names(&self) -> Vec<String>;
    /// Writes file `name` to `out`.
    fn write(&self, name: &str, out: &mut dyn std::io::Write) -> std::io::Result<()>;
}

/// Where a checkpoint being written gets its resume-only files.
#[derive(Clone, Copy)]
enum Resume<'a> {
    None,
    /// Streamed from the algorithm.
    Write(&'a dyn ResumeFiles),
    /// Hard links (or copies) of those of the checkpoint just installed.
    Link {
        from: &'a Path,
        files: &'a BTreeMap<String, FileDigest>,
    },
}

const NEW_SUFFIX: &str = ".new";
const OLD_SUFFIX: &str = ".old";
const TMP_PREFIX: &str = ".tmp-";

/// A model tensor: a value, or a counter (kept in `f32` in memory, stored
/// as `I64`, as PyTorch stores `num_batches_tracked`).
#[derive(Clone, Debug, PartialEq)]
pub enum ModelTensor {
    /// Parameters and buffers (`F32`).
    Value(Tensor),
    /// Integer counters (`I64`).
    Counter(Tensor),
}

impl ModelTensor {
    /// The tensor.
    pub fn tensor(&self) -> &Tensor {
        match self {
            ModelTensor::Value(t) | ModelTensor::Counter(t) => t,
        }
    }
}

/// What a checkpoint holds. The algorithm fills `state` with whatever it
/// needs to continue exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointPayload {
    /// Named model tensors (names unique).
    pub model: Vec<(String, ModelTensor)>,
    /// The optimizer state (e.g. `Adam::state`), as the algorithm exported it.
    pub optimizer: OptimizerState,
    /// Counters, schedules, RNG states, normalisers, env and curriculum state,
    /// config fingerprint: any JSON.
    pub state: Value,
}

impl CheckpointPayload {
    /// Model tensors from a layer's named parameters (copies them).
    pub fn model_from_params(params: &[NamedParam<'_>]) -> Vec<(String, ModelTensor)> {
        params
            .iter()
            .map(|(name, p)| {
                let t = match p.kind {
                    ParamKind::Counter => ModelTensor::Counter(p.value.clone()),
                    ParamKind::Trainable | ParamKind::Buffer => ModelTensor::Value(p.value.clone()),
                };
                (name.clone(), t)
            })
            .collect()
    }

    /// The model tensor called `name`.
    pub fn model_tensor(&self, name: &str) -> Option<&ModelTensor> {
        self.model.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// Size and digest of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    /// Length in bytes.
    pub bytes: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// The layout of `state.json`: the checkpoint description and the SHA-256
/// of its canonical JSON, so every field (steps, file digests, state) is
/// covered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    sha256: String,
    checkpoint: StateBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateBody {
    format_version: u32,
    env_steps: u64,
    files: BTreeMap<String, FileDigest>,
    state: Value,
}

/// A checkpoint read and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Its directory.
    pub path: PathBuf,
    /// Total env steps when it was written.
    pub env_steps: u64,
    /// The contents (model tensors sorted by name).
    pub payload: CheckpointPayload,
    /// Its resume-only files, verified: name and path.
    pub resume_files: BTreeMap<String, PathBuf>,
}

/// A checkpoint that failed validation, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct RejectedCheckpoint {
    /// Its directory.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// The outcome of looking for a checkpoint to resume from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovery {
    /// The newest valid checkpoint, if any.
    pub checkpoint: Option<Checkpoint>,
    /// Newer checkpoints that failed validation (report these).
    pub rejected: Vec<RejectedCheckpoint>,
    /// Interrupted writes that were completed or cleaned up.
    pub repairs: Vec<String>,
}

/// `step-000100000`: nine digits so names sort by step up to 10^9 steps.
pub fn step_dir_name(env_steps: u64) -> String {
    format!("step-{env_steps:09}")
}

/// The step of a `step-N` directory name.
pub fn parse_step_dir_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("step-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Names a checkpoint may have: `step-N`, `last`, `best`, or another plain
/// name; never one used by the write protocol.
fn validate_name(name: &str) -> Result<(), RunError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || !name.chars().all(ok_char) {
        return Err(RunError::invalid(
            "checkpoint name",
            format!("`{name}` must be non-empty letters, digits, `_` or `-`"),
        ));
    }
    Ok(())
}

// --------------------------------------------------------------- writing ----

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> RunError {
    RunError::io(path, format!("{what}: {e}"))
}

/// Flushes a directory entry to disk. Not every platform can open a
/// directory for syncing; there the rename is as durable as the OS makes it.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    use std::io::Write;
    let mut f = fs::File::create_new(path).map_err(|e| io_err(path, "cannot create", e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(path, "cannot write", e))
}

/// The tensor files of a checkpoint, encoded, and the description
/// `state.json` will hold once the resume-only files are written.
struct Encoded {
    model: Vec<u8>,
    optimizer: Vec<u8>,
    body: StateBody,
}

fn encode(env_steps: u64, payload: &CheckpointPayload) -> Result<Encoded, RunError> {
    let mut seen = BTreeSet::new();
    for (name, _) in &payload.model {
        if !seen.insert(name.as_str()) {
            return Err(RunError::invalid(
                "checkpoint model",
                format!("tensor name `{name}` appears twice"),
            ));
        }
    }
    let entries: Vec<(String, TensorEntry<'_>)> = payload
        .model
        .iter()
        .map(|(n, t)| {
            let e = match t {
                ModelTensor::Value(t) => TensorEntry::F32(t),
                ModelTensor::Counter(t) => TensorEntry::I64(t),
            };
            (n.clone(), e)
        })
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let model = hlynr_nn::io::serialize(&entries, &meta)
        .map_err(|e| RunError::invalid("checkpoint model", e.to_string()))?;

    let opt_entries: Vec<(String, TensorEntry<'_>)> = payload
        .optimizer
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), TensorEntry::F32(t)))
        .collect();
    let mut opt_meta = BTreeMap::new();
    opt_meta.insert(
        OPTIMIZER_METADATA_KEY.to_string(),
        payload.optimizer.scalars.clone(),
    );
    let optimizer = hlynr_nn::io::serialize(&opt_entries, &opt_meta)
        .map_err(|e| RunError::invalid("checkpoint optimizer", e.to_string()))?;

    let mut files = BTreeMap::new();
    files.insert(MODEL_FILE.to_string(), digest(&model));
    files.insert(OPTIMIZER_FILE.to_string(), digest(&optimizer));
    let body = StateBody {
        format_version: CHECKPOINT_FORMAT_VERSION,
        env_steps,
        files,
        state: payload.state.clone(),
    };
    Ok(Encoded {
        model,
        optimizer,
        body,
    })
}

/// `state.json` for `body`, with its own digest.
fn state_bytes(body: StateBody) -> Result<Vec<u8>, RunError> {
    let state_file = StateFile {
        sha256: body_digest(&body)?,
        checkpoint: body,
    };
    let mut state = serde_json::to_vec_pretty(&state_file)
        .map_err(|e| RunError::invalid("checkpoint state", format!("cannot serialise: {e}")))?;
    state.push(b'\n');
    Ok(state)
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A resume-file name must be a plain file name.
fn check_resume_name(name: &str) -> Result<(), RunError> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.starts_with(TMP_PREFIX);
    if plain {
        Ok(())
    } else {
        Err(RunError::invalid(
            "checkpoint resume file",
            format!("`{name}` is not a plain file name"),
        ))
    }
}

/// Streams `source`'s files into `dir/resume/`, each synced; their digests.
fn write_resume_files(
    dir: &Path,
    source: &dyn ResumeFiles,
) -> Result<BTreeMap<String, FileDigest>, RunError> {
    use std::io::Write;
    let names = source.names();
    let mut seen = BTreeSet::new();
    for name in &names {
        check_resume_name(name)?;
        if !seen.insert(name) {
            return Err(RunError::invalid(
                "checkpoint resume file",
                format!("`{name}` is listed twice"),
            ));
        }
    }
    let resume_dir = dir.join(RESUME_DIR);
    fs::create_dir(&resume_dir).map_err(|e| io_err(&resume_dir, "cannot create directory", e))?;
    let mut digests = BTreeMap::new();
    for name in names {
        let path = resume_dir.join(&name);
        let file = fs::File::create_new(&path).map_err(|e| io_err(&path, "cannot create", e))?;
        let mut out = Hashing {
            inner: std::io::BufWriter::new(file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        source
            .write(&name, &mut out)
            .and_then(|()| out.flush())
            .map_err(|e| io_err(&path, "cannot write", e))?;
        let Hashing {
            inner,
            hasher,
            bytes,
        } = out;
        let file = inner
            .into_inner()
            .map_err(|e| io_err(&path, "cannot write", e.error()))?;
        file.sync_all()
            .map_err(|e| io_err(&path, "cannot sync", e))?;
        let digest = FileDigest {
            bytes,
            sha256: hex(&hasher.finalize()),
        };
        digests.insert(name, digest);
    }
    sync_dir(&resume_dir);
    Ok(digests)
}

/// Hard-links (or, where the file system cannot, copies) the resume files
/// `files` of checkpoint `from` into `dir/resume/`.
fn link_resume_files(
    dir: &Path,
    from: &Path,
    files: &BTreeMap<String, FileDigest>,
) -> Result<(), RunError> {
    let resume_dir = dir.join(RESUME_DIR);
    fs::create_dir(&resume_dir).map_err(|e| io_err(&resume_dir, "cannot create directory", e))?;
    for name in files.keys() {
        let (src, dst) = (from.join(RESUME_DIR).join(name), resume_dir.join(name));
        if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst).map_err(|e| io_err(&dst, "cannot copy", e))?;
        }
    }
    sync_dir(&resume_dir);
    Ok(())
}

fn digest(bytes: &[u8]) -> FileDigest {
    FileDigest {
        bytes: bytes.len() as u64,
        sha256: sha256_hex(bytes),
    }
}

/// SHA-256 of the body's canonical JSON (compact, keys as serde_json orders
/// them); parsing and re-serialising gives the same bytes, since floats are
/// written in shortest round-trip form.
fn body_digest(body: &StateBody) -> Result<String, RunError> {
    let canonical = serde_json::to_vec(body)
        .map_err(|e| RunError::invalid("checkpoint state", format!("cannot serialise: {e}")))?;
    Ok(sha256_hex(&canonical))
}

/// Writes `encoded` and its resume-only files as `checkpoints_dir/name`
/// with the swap protocol; returns the path and the resume files' digests.
fn install(
    checkpoints_dir: &Path,
    name: &str,
    encoded: &Encoded,
    resume: Resume<'_>,
) -> Result<(PathBuf, BTreeMap<String, FileDigest>), RunError> {
    let tmp = checkpoints_dir.join(format!("{TMP_PREFIX}{name}-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, "cannot remove stale directory", e))?;
    }
    fs::create_dir(&tmp).map_err(|e| io_err(&tmp, "cannot create directory", e))?;
    let written = (|| {
        write_synced(&tmp.join(MODEL_FILE), &encoded.model)?;
        write_synced(&tmp.join(OPTIMIZER_FILE), &encoded.optimizer)?;
        let resume_files = match resume {
            Resume::None => BTreeMap::new(),
            Resume::Write(source) => write_resume_files(&tmp, source)?,
            Resume::Link { from, files } => {
                link_resume_files(&tmp, from, files)?;
                files.clone()
            }
        };
        // The state file, written last, lists every file with its digest.
        let mut body = encoded.body.clone();
        for (n, d) in &resume_files {
            body.files.insert(format!("{RESUME_DIR}/{n}"), d.clone());
        }
        write_synced(&tmp.join(STATE_FILE), &state_bytes(body)?)?;
        sync_dir(&tmp);
        Ok::<_, RunError>(resume_files)
    })();
    let resume_files = match written {
        Ok(files) => files,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };

    let target = checkpoints_dir.join(name);
    let new = checkpoints_dir.join(format!("{name}{NEW_SUFFIX}"));
    let old = checkpoints_dir.join(format!("{name}{OLD_SUFFIX}"));
    // Earlier interrupted swaps of this name were finished by the caller's
    // recovery; anything left as `.new` here is therefore ours to replace.
    if new.exists() {
        fs::remove_dir_all(&new).map_err(|e| io_err(&new, "cannot remove", e))?;
    }
    fs::rename(&tmp, &new).map_err(|e| io_err(&new, "cannot rename into place", e))?;
    sync_dir(checkpoints_dir);
    swap_into_place(checkpoints_dir, &new, &target, &old)?;
    Ok((target, resume_files))
}

/// `new` (complete) replaces `target`, keeping a complete copy at all times.
fn swap_into_place(parent: &Path, new: &Path, target: &Path, old: &Path) -> Result<(), RunError> {
    if target.exists() {
        if old.exists() {
            fs::remove_dir_all(old).map_err(|e| io_err(old, "cannot remove", e))?;
        }
        fs::rename(target, old).map_err(|e| io_err(target, "cannot move aside", e))?;
        sync_dir(parent);
    }
    fs::rename(new, target).map_err(|e| io_err(target, "cannot rename into place", e))?;
    sync_dir(parent);
    if old.exists() {
        fs::remove_dir_all(old).map_err(|e| io_err(old, "cannot remove", e))?;
        sync_dir(parent);
    }
    Ok(())
}

/// Writes checkpoint `name` (e.g. `step-000100000`, `last`, `best`) into
/// `checkpoints_dir` atomically, replacing any checkpoint of that name.
pub fn write_checkpoint(
    checkpoints_dir: &Path,
    name: &str,
    env_steps: u64,
    payload: &CheckpointPayload,
) -> Result<PathBuf, RunError> {
    validate_name(name)?;
    fs::create_dir_all(checkpoints_dir)
        .map_err(|e| io_err(checkpoints_dir, "cannot create directory", e))?;
    recover_interrupted_writes(checkpoints_dir)?;
    let encoded = encode(env_steps, payload)?;
    install(checkpoints_dir, name, &encoded, Resume::None).map(|(path, _)| path)
}

/// Completes or undoes writes a crash interrupted (see the module docs).
/// Returns a description of each repair.
pub fn recover_interrupted_writes(checkpoints_dir: &Path) -> Result<Vec<String>, RunError> {
    let mut repairs = Vec::new();
    if !checkpoints_dir.exists() {
        return Ok(repairs);
    }
    let names = list_names(checkpoints_dir)?;
    let me = std::process::id().to_string();
    for name in &names {
        let path = checkpoints_dir.join(name);
        if let Some(rest) = name.strip_prefix(TMP_PREFIX) {
            // `.tmp-<name>-<pid>`: another process's unfinished write.
            let pid = rest.rsplit('-').next().unwrap_or("");
            if pid != me {
                fs::remove_dir_all(&path).map_err(|e| io_err(&path, "cannot remove", e))?;
                repairs.push(format!("removed partial write {name}"));
            }
        }
    }
    for name in &names {
        if let Some(base) = name.strip_suffix(NEW_SUFFIX) {
            let new = checkpoints_dir.join(name);
            let target = checkpoints_dir.join(base);
            let old = checkpoints_dir.join(format!("{base}{OLD_SUFFIX}"));
            swap_into_place(checkpoints_dir, &new, &target, &old)?;
            repairs.push(format!("completed interrupted replacement of {base}"));
        }
    }
    for name in &names {
        if let Some(base) = name.strip_suffix(OLD_SUFFIX) {
            let old = checkpoints_dir.join(name);
            if !old.exists() {
                continue; // handled with its `.new`
            }
            let target = checkpoints_dir.join(base);
            if target.exists() {
                fs::remove_dir_all(&old).map_err(|e| io_err(&old, "cannot remove", e))?;
                repairs.push(format!("removed superseded {name}"));
            } else {
                fs::rename(&old, &target).map_err(|e| io_err(&old, "cannot restore", e))?;
                repairs.push(format!("restored {base} from {name}"));
            }
            sync_dir(checkpoints_dir);
        }
    }
    Ok(repairs)
}

fn list_names(dir: &Path) -> Result<Vec<String>, RunError> {
    let entries = fs::read_dir(dir).map_err(|e| io_err(dir, "cannot list directory", e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, "cannot list directory", e))?;
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && let Some(n) = entry.file_name().to_str()
        {
            names.push(n.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// The `step-N` checkpoints in `checkpoints_dir`, oldest first.
pub fn step_checkpoints(checkpoints_dir: &Path) -> Result<Vec<(u64, PathBuf)>, RunError> {
    if !checkpoints_dir.exists() {
        return Ok(Vec::new());
    }
    let mut steps: Vec<(u64, PathBuf)> = list_names(checkpoints_dir)?
        .into_iter()
        .filter_map(|n| parse_step_dir_name(&n).map(|s| (s, checkpoints_dir.join(n))))
        .collect();
    steps.sort();
    Ok(steps)
}

/// Deletes all but the `keep_last_n` newest `step-N` checkpoints; `last/`
/// and `best/` are never touched. Returns the deleted directories.
pub fn prune_step_checkpoints(
    checkpoints_dir: &Path,
    keep_last_n: usize,
) -> Result<Vec<PathBuf>, RunError> {
    let steps = step_checkpoints(checkpoints_dir)?;
    let excess = steps.len().saturating_sub(keep_last_n);
    let mut removed = Vec::new();
    for (_, path) in steps.into_iter().take(excess) {
        fs::remove_dir_all(&path).map_err(|e| io_err(&path, "cannot remove", e))?;
        removed.push(path);
    }
    if !removed.is_empty() {
        sync_dir(checkpoints_dir);
    }
    Ok(removed)
}

// --------------------------------------------------------------- reading ----

/// Reads and validates the checkpoint in `dir`. Every failure names the file
/// and the problem.
pub fn read_checkpoint(dir: &Path) -> Result<Checkpoint, RunError> {
    if !dir.is_dir() {
        return Err(RunError::io(dir, "checkpoint directory does not exist"));
    }
    let state_path = dir.join(STATE_FILE);
    let state_bytes = fs::read(&state_path).map_err(|e| io_err(&state_path, "cannot read", e))?;
    let state_file: StateFile = serde_json::from_slice(&state_bytes)
        .map_err(|e| RunError::corrupt(&state_path, format!("invalid state file: {e}")))?;
    let actual_digest = body_digest(&state_file.checkpoint)?;
    if actual_digest != state_file.sha256 {
        return Err(RunError::corrupt(
            &state_path,
            format!(
                "checksum mismatch: recorded {}, computed {actual_digest}",
                state_file.sha256
            ),
        ));
    }
    let state_file = state_file.checkpoint;
    if state_file.format_version != CHECKPOINT_FORMAT_VERSION {
        return Err(RunError::corrupt(
            &state_path,
            format!(
                "checkpoint format version {} is not the supported version {CHECKPOINT_FORMAT_VERSION}",
                state_file.format_version
            ),
        ));
    }
    let resume_prefix = format!("{RESUME_DIR}/");
    let expected: BTreeSet<&str> = [MODEL_FILE, OPTIMIZER_FILE].into_iter().collect();
    let listed: BTreeSet<&str> = state_file
        .files
        .keys()
        .map(String::as_str)
        .filter(|n| !n.starts_with(&resume_prefix))
        .collect();
    if expected != listed {
        return Err(RunError::corrupt(
            &state_path,
            format!("lists files {listed:?}, expected {expected:?}"),
        ));
    }

    let model_path = dir.join(MODEL_FILE);
    let model_bytes = read_verified(&model_path, &state_file.files[MODEL_FILE])?;
    let model_file = hlynr_nn::io::deserialize(&model_bytes, &model_path.display().to_string())
        .map_err(|e| RunError::corrupt(&model_path, e.to_string()))?;
    let mut model = Vec::with_capacity(model_file.tensors.len());
    for (name, t) in model_file.tensors {
        let t = match t {
            Loaded::F32(t) => ModelTensor::Value(t),
            Loaded::I64 { shape, values } => {
                let as_f32 = values.iter().map(|&v| v as f32).collect();
                let t = Tensor::from_vec(&shape, as_f32).map_err(|e| {
                    RunError::corrupt(&model_path, format!("counter `{name}`: {e}"))
                })?;
                ModelTensor::Counter(t)
            }
        };
        model.push((name, t));
    }

    let opt_path = dir.join(OPTIMIZER_FILE);
    let opt_bytes = read_verified(&opt_path, &state_file.files[OPTIMIZER_FILE])?;
    let opt_file = hlynr_nn::io::deserialize(&opt_bytes, &opt_path.display().to_string())
        .map_err(|e| RunError::corrupt(&opt_path, e.to_string()))?;
    let scalars = opt_file
        .metadata
        .get(OPTIMIZER_METADATA_KEY)
        .cloned()
        .ok_or_else(|| {
            RunError::corrupt(&opt_path, format!("no `{OPTIMIZER_METADATA_KEY}` metadata"))
        })?;
    let mut tensors = BTreeMap::new();
    for (name, t) in opt_file.tensors {
        match t {
            Loaded::F32(t) => {
                tensors.insert(name, t);
            }
            other => {
                return Err(RunError::corrupt(
                    &opt_path,
                    format!("tensor `{name}` has dtype {}, expected F32", other.dtype()),
                ));
            }
        }
    }
    let optimizer = OptimizerState { tensors, scalars };
    check_optimizer_shapes(&opt_path, &model, &optimizer)?;
    // What the scalars mean is the algorithm's business (it checks them on
    // import); here they must at least be JSON.
    serde_json::from_str::<Value>(&optimizer.scalars).map_err(|e| {
        RunError::corrupt(&opt_path, format!("optimizer scalars are not JSON: {e}"))
    })?;

    let mut resume_files = BTreeMap::new();
    for (listed, expected) in &state_file.files {
        let Some(name) = listed.strip_prefix(&resume_prefix) else {
            continue;
        };
        check_resume_name(name)?;
        let path = dir.join(RESUME_DIR).join(name);
        verify_streamed(&path, expected)?;
        resume_files.insert(name.to_string(), path);
    }

    Ok(Checkpoint {
        path: dir.to_path_buf(),
        env_steps: state_file.env_steps,
        payload: CheckpointPayload {
            model,
            optimizer,
            state: state_file.state,
        },
        resume_files,
    })
}

/// Checks a file's size and SHA-256 without holding it in memory.
fn verify_streamed(path: &Path, expected: &FileDigest) -> Result<(), RunError> {
    use std::io::Read;
    let mut file = fs::File::open(path).map_err(|e| io_err(path, "cannot read", e))?;
    let (mut hasher, mut bytes) = (Sha256::new(), 0u64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| io_err(path, "cannot read", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    let actual = FileDigest {
        bytes,
        sha256: hex(&hasher.finalize()),
    };
    if &actual != expected {
        return Err(RunError::corrupt(
            path,
            format!(
                "size or checksum mismatch: recorded {} bytes {}, found {} bytes {}",
                expected.bytes, expected.sha256, actual.bytes, actual.sha256
            ),
        ));
    }
    Ok(())
}

fn read_verified(path: &Path, expected: &FileDigest) -> Result<Vec<u8>, RunError> {
    let bytes = fs::read(path).map_err(|e| io_err(path, "cannot read", e))?;
    if bytes.len() as u64 != expected.bytes {
        return Err(RunError::corrupt(
            path,
            format!(
                "size {} bytes, state.json records {} (truncated or replaced)",
                bytes.len(),
                expected.bytes
            ),
        ));
    }
    let actual = sha256_hex(&bytes);
    if actual != expected.sha256 {
        return Err(RunError::corrupt(
            path,
            format!(
                "SHA-256 mismatch: state.json records {}, file has {actual}",
                expected.sha256
            ),
        ));
    }
    Ok(bytes)
}

/// Optimizer moments `state.<param>.exp_avg[_sq]` must belong to a model
/// tensor of the same shape: a mismatch means the files come from different
/// networks.
fn check_optimizer_shapes(
    opt_path: &Path,
    model: &[(String, ModelTensor)],
    optimizer: &OptimizerState,
) -> Result<(), RunError> {
    let shapes: BTreeMap<&str, &[usize]> = model
        .iter()
        .map(|(n, t)| (n.as_str(), t.tensor().shape()))
        .collect();
    for (key, t) in &optimizer.tensors {
        let param = key
            .strip_prefix("state.")
            .and_then(|k| {
                k.strip_suffix(".exp_avg_sq")
                    .or_else(|| k.strip_suffix(".exp_avg"))
            })
            .ok_or_else(|| RunError::corrupt(opt_path, format!("unexpected tensor `{key}`")))?;
        match shapes.get(param) {
            Some(&shape) if shape == t.shape() => {}
            Some(&shape) => {
                return Err(RunError::corrupt(
                    opt_path,
                    format!(
                        "`{key}` has shape {:?} but model tensor `{param}` has shape {shape:?}",
                        t.shape()
                    ),
                ));
            }
            None => {
                return Err(RunError::corrupt(
                    opt_path,
                    format!("`{key}` belongs to `{param}`, which the model does not have"),
                ));
            }
        }
    }
    Ok(())
}

/// The newest valid checkpoint among `last/` and `step-N/` (`best/` is not a
/// resume point: it may be older than the run's progress). Interrupted
/// writes are repaired first. Invalid newer checkpoints are listed in
/// [`Recovery::rejected`]; the search continues to older ones, so the last
/// good checkpoint is always found.
pub fn latest_valid_checkpoint(checkpoints_dir: &Path) -> Result<Recovery, RunError> {
    let mut recovery = Recovery {
        repairs: recover_interrupted_writes(checkpoints_dir)?,
        ..Recovery::default()
    };
    let mut best: Option<Checkpoint> = None;
    let last = checkpoints_dir.join(LAST);
    if last.exists() {
        match read_checkpoint(&last) {
            Ok(c) => best = Some(c),
            Err(e) => recovery.rejected.push(RejectedCheckpoint {
                path: last,
                reason: e.to_string(),
            }),
        }
    }
    for (step, path) in step_checkpoints(checkpoints_dir)?.into_iter().rev() {
        if best.as_ref().is_some_and(|b| b.env_steps >= step) {
            break; // `last` is at least as new as every remaining step dir
        }
        let checked = read_checkpoint(&path).and_then(|c| {
            if c.env_steps == step {
                Ok(c)
            } else {
                Err(RunError::corrupt(
                    &path.join(STATE_FILE),
                    format!(
                        "records {} env steps but the directory name says {step}",
                        c.env_steps
                    ),
                ))
            }
        });
        match checked {
            Ok(c) => {
                if best.as_ref().is_none_or(|b| c.env_steps > b.env_steps) {
                    best = Some(c);
                }
                break;
            }
            Err(e) => recovery.rejected.push(RejectedCheckpoint {
                path,
                reason: e.to_string(),
            }),
        }
    }
    recovery.checkpoint = best;
    Ok(recovery)
}

/// Saves checkpoints for a run: `step-N` every save (pruned to
/// `keep_last_n`), `last` always, `best` on request.
#[derive(Clone, Debug)]
pub struct CheckpointManager {
    dir: PathBuf,
    keep_last_n: Option<usize>,
}

impl CheckpointManager {
    /// A manager for `checkpoints_dir`, keeping the newest `keep_last_n`
    /// step checkpoints (`None` keeps all; `Some(0)` keeps only `last` and
    /// `best`). Creates the directory.
    pub fn new(checkpoints_dir: &Path, keep_last_n: Option<usize>) -> Result<Self, RunError> {
        fs::create_dir_all(checkpoints_dir)
            .map_err(|e| io_err(checkpoints_dir, "cannot create directory", e))?;
        // Interrupted writes are repaired by `latest_valid` (which reports
        // what it repaired) and before every save, not silently here.
        Ok(CheckpointManager {
            dir: checkpoints_dir.to_path_buf(),
            keep_last_n,
        })
    }

    /// The checkpoints directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `step-<env_steps>` and `last`, then prunes old step
    /// checkpoints. `resume` files are streamed into the step checkpoint (into
    /// `last` when step checkpoints are not kept) and linked from `last`.
    /// Returns the step checkpoint's path (or `last`'s when step checkpoints
    /// are not kept).
    pub fn save(
        &self,
        env_steps: u64,
        payload: &CheckpointPayload,
        resume: Option<&dyn ResumeFiles>,
    ) -> Result<PathBuf, RunError> {
        recover_interrupted_writes(&self.dir)?;
        let encoded = encode(env_steps, payload)?;
        let streamed = resume.map_or(Resume::None, Resume::Write);
        let path = match self.keep_last_n {
            Some(0) => install(&self.dir, LAST, &encoded, streamed)?.0,
            // Resume files are written once, into the step checkpoint; `last`
            // links to them.
            _ => {
                let (step, files) =
                    install(&self.dir, &step_dir_name(env_steps), &encoded, streamed)?;
                let linked = Resume::Link {
                    from: &step,
                    files: &files,
                };
                install(&self.dir, LAST, &encoded, linked)?;
                step
            }
        };
        if let Some(n) = self.keep_last_n {
            prune_step_checkpoints(&self.dir, n)?;
        }
        Ok(path)
    }

    /// Writes `best`.
    pub fn save_best(
        &self,
        env_steps: u64,
        payload: &CheckpointPayload,
    ) -> Result<PathBuf, RunError> {
        write_checkpoint(&self.dir, BEST, env_steps, payload)
    }

    /// The newest valid checkpoint (see [`latest_valid_checkpoint`]).
    pub fn latest_valid(&self) -> Result<Recovery, RunError> {
        latest_valid_checkpoint(&self.dir)
    }
}

// --------------------------------------------------------------- SHA-256 ----

/// SHA-256 (FIPS 180-4) of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A stable fingerprint of a JSON value (e.g. a resolved config): SHA-256 of
/// its compact serialisation.
pub fn json_fingerprint(value: &Value) -> String {
    sha256_hex(&serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_fips_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        // One million 'a': many blocks.
        assert_eq!(
            sha256_hex(&vec![b'a'; 1_000_000]),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn sha256_padding_boundaries_differ() {
        // Lengths around the 55/56/64-byte padding boundaries must all differ.
        let digests: BTreeSet<String> = (50..70).map(|n| sha256_hex(&vec![0u8; n])).collect();
        assert_eq!(digests.len(), 20);
    }

    #[test]
    fn step_names_round_trip() {
        assert_eq!(step_dir_name(100_000), "step-000100000");
        assert_eq!(parse_step_dir_name("step-000100000"), Some(100_000));
        assert_eq!(parse_step_dir_name("step-"), None);
        assert_eq!(parse_step_dir_name("step-12a"), None);
        assert_eq!(parse_step_dir_name("last"), None);
    }
}
