//! Helpers shared by the test suites of several hlynr crates.
//!
//! Some checks need a reader outside the project: TensorBoard's own event
//! reader, PyTorch's `load_state_dict`. They run from the default test command
//! whenever the Python package is importable, and otherwise skip with a
//! message on the terminal, so a skipped check is never mistaken for a passed
//! one. A run that must not skip (CI installs the package first) lists the
//! module in `HLYNR_REQUIRE_PYTHON`; a missing module is then a failure.
//!
//! - `HLYNR_PYTHON`: the interpreter (default `python3`).
//! - `HLYNR_REQUIRE_PYTHON`: comma-separated modules that must be importable.
//!
//! [`tampered`] holds an environment double that corrupts or fails chosen
//! steps; [`pixels`] a small camera task with byte frames; [`modules`] checks that a crate's modules import each other without
//! cycles.

pub mod modules;
pub mod pixels;
pub mod tampered;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Python interpreter the checks use.
pub fn python() -> OsString {
    std::env::var_os("HLYNR_PYTHON").unwrap_or_else(|| "python3".into())
}

/// True when `HLYNR_REQUIRE_PYTHON` names `module`.
fn required(module: &str) -> bool {
    std::env::var("HLYNR_REQUIRE_PYTHON")
        .map(|list| list.split(',').any(|m| m.trim() == module))
        .unwrap_or(false)
}

/// Writes straight to the process's stderr: the test harness captures only
/// the `print!` family, so this line reaches the terminal even for a test
/// that passes.
fn tell(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Runs `script` (a path under the repository root) with `args` when every
/// module in `modules` imports, and returns its output. Otherwise reports the
/// skip for `check` on the terminal and returns `None`, or panics when one of
/// the missing modules is required.
pub fn run_python_check(
    check: &str,
    modules: &[&str],
    script: &Path,
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
) -> Option<Output> {
    let py = python();
    for module in modules {
        let probe = Command::new(&py)
            .args(["-c", &format!("import {module}")])
            .output();
        let importable = probe.as_ref().is_ok_and(|o| o.status.success());
        if !importable {
            let why = match &probe {
                Err(e) => format!("cannot start {}: {e}", py.to_string_lossy()),
                Ok(_) => format!(
                    "Python module `{module}` is not importable by {}",
                    py.to_string_lossy()
                ),
            };
            assert!(!required(module), "{check}: {why} (HLYNR_REQUIRE_PYTHON)");
            tell(&format!(
                "SKIPPED {check}: {why}; install it or set HLYNR_PYTHON to run this check"
            ));
            return None;
        }
    }
    let out = Command::new(&py)
        .arg(repo_root().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{check}: cannot run {}: {e}", script.display()));
    tell(&format!("RAN {check} with {}", py.to_string_lossy()));
    Some(out)
}

/// The `configs/` file `name` of the repository.
pub fn config_file(name: &str) -> PathBuf {
    repo_root().join("configs").join(name)
}

/// The only entry of directory `dir` (the run a `train` wrote into a fresh
/// runs directory).
pub fn only_entry(dir: &Path) -> PathBuf {
    let mut entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path());
    let first = entries
        .next()
        .unwrap_or_else(|| panic!("{} is empty", dir.display()));
    assert!(
        entries.next().is_none(),
        "{} holds more than one entry",
        dir.display()
    );
    first
}

/// Trains with the `hlynr` binary `bin` (`env!("CARGO_BIN_EXE_hlynr")` of
/// the calling test): `train --progress quiet --config CONFIG --runs-dir
/// RUNS` and `args`, into `runs` emptied first; panics with its stderr when
/// it fails, else returns the run directory.
pub fn train_run(bin: &str, config: &Path, runs: &Path, args: &[&str]) -> PathBuf {
    let _ = std::fs::remove_dir_all(runs);
    let out = train_command(bin, config, runs)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    assert!(
        out.status.success(),
        "train {}: {}",
        config.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    only_entry(runs)
}

/// `bin train --progress quiet --config CONFIG --runs-dir RUNS`, to add
/// arguments to and run or spawn (a learner a test talks to while it trains).
pub fn train_command(bin: &str, config: &Path, runs: &Path) -> Command {
    let mut command = Command::new(bin);
    command
        .args(["train", "--progress", "quiet", "--config"])
        .arg(config)
        .arg("--runs-dir")
        .arg(runs);
    command
}

/// An HTTP client for tests of servers: statuses are answers, not errors,
/// and no request waits longer than 20 s.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build(),
    )
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A loopback port that was free a moment ago (for a server started as a
/// separate process, whose address the test must know in advance).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
