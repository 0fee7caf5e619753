//! Runs whose environment is a Python Gymnasium env (`env.python`) need the
//! Python package, which hosts the interpreter. The plain `hlynr` binary
//! hands such a command to it: it runs the same command line as
//! `python -m hlynr ...` (the interpreter is `HLYNR_PYTHON`, else
//! `python3`), so `hlynr train --config acrobot.yaml` works wherever the
//! package is installed, and says how to install it where it is not.

use std::ffi::OsString;
use std::process::{Command, Stdio};

use anyhow::{Result, anyhow};
use hlynr_envs::Registry;
use hlynr_rl::trainer::RunConfig;

/// Returns when `config` can run here; otherwise replaces this process
/// with the same command under the Python package (or fails, saying why).
pub fn ensure_hosted(config: &RunConfig, registry: &Registry) -> Result<()> {
    let Some(spec) = &config.env.python else {
        return Ok(());
    };
    if registry.hosts_python() {
        return Ok(());
    }
    let python = std::env::var_os("HLYNR_PYTHON").unwrap_or_else(|| OsString::from("python3"));
    let shown = python.to_string_lossy().into_owned();
    let has_package = Command::new(&python)
        .args(["-c", "import hlynr._hlynr"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_package {
        return Err(anyhow!(
            "env.python `{spec}` is a Python environment, hosted by hlynr's Python package, \
             which {shown} cannot import: install it (pip install ./crates/py) and run the \
             command again (or as `python -m hlynr ...`; HLYNR_PYTHON picks the interpreter)"
        ));
    }
    eprintln!("env.python `{spec}`: running this command under {shown} -m hlynr");
    let mut command = Command::new(&python);
    command
        .args(["-m", "hlynr"])
        .args(std::env::args_os().skip(1));
    exec(command, &shown)
}

#[cfg(unix)]
fn exec(mut command: Command, shown: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let error = command.exec();
    Err(anyhow!("cannot run {shown}: {error}"))
}

#[cfg(not(unix))]
fn exec(mut command: Command, shown: &str) -> Result<()> {
    let status = command
        .status()
        .map_err(|e| anyhow!("cannot run {shown}: {e}"))?;
    std::process::exit(status.code().unwrap_or(1));
}
