//! Training runs from Python: start one from a config (a file or a mapping
//! built in Python), resume one, read one's metric stream. Runs behave as
//! under the `hlynr` command: the same run directory, progress display and
//! Ctrl-C handling (the update in progress finishes and a checkpoint is
//! written; then Python's `KeyboardInterrupt` is raised as usual).

use std::path::PathBuf;

use hlynr_cli::{NewRun, resume_run, start_run};
use hlynr_rl::metrics::{MetricsRecord, read_metrics as read_log};
use hlynr_rl::progress::ProgressMode;
use hlynr_rl::signals::StopSignal;
use hlynr_rl::trainer::{TrainOutcome, TrainStatus};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::{runtime_error, value_error};

fn progress_mode(progress: &str) -> PyResult<ProgressMode> {
    progress.parse().map_err(value_error)
}

fn status_name(outcome: &TrainOutcome) -> &'static str {
    match outcome.status {
        TrainStatus::Completed => "completed",
        TrainStatus::Paused => "paused",
        TrainStatus::Interrupted => "interrupted",
        TrainStatus::DoctorStopped => "doctor_stopped",
        TrainStatus::EarlyStopped => "early_stopped",
    }
}

/// Runs `segment` with the interpreter released and Ctrl-C requesting a
/// clean stop; afterwards Python's own handlers run (raising
/// `KeyboardInterrupt` after a Ctrl-C, once the checkpoint is on disk).
fn supervised<T: Send>(
    py: Python<'_>,
    segment: impl FnOnce(&StopSignal) -> anyhow::Result<T> + Send,
) -> PyResult<T> {
    let stop = StopSignal::install_in_host().map_err(runtime_error)?;
    let result = py.detach(|| segment(&stop));
    drop(stop);
    let value = result.map_err(|e| runtime_error(format!("{e:#}")))?;
    py.check_signals()?;
    Ok(value)
}

/// The config file `config_path` or the YAML/JSON text `config_text` with
/// `overrides`, resolved as a run would store it.
fn load(
    config_path: Option<&PathBuf>,
    config_text: Option<&String>,
    source_name: &str,
    overrides: &[String],
) -> PyResult<(hlynr_rl::trainer::RunConfig, serde_json::Value)> {
    match (config_path, config_text) {
        (Some(path), None) => hlynr_envs::load_config(path, overrides),
        (None, Some(text)) => hlynr_envs::load_config_str(text, source_name, overrides),
        _ => {
            return Err(value_error(
                "give exactly one of a config file or a config text",
            ));
        }
    }
    .map_err(value_error)
}

/// What a run's `config.yaml` would hold for this config (see [`train`]),
/// as JSON, without creating a run.
#[pyfunction]
#[pyo3(signature = (config_path, config_text, source_name, overrides))]
pub fn resolve_config(
    config_path: Option<PathBuf>,
    config_text: Option<String>,
    source_name: &str,
    overrides: Vec<String>,
) -> PyResult<String> {
    let (_, resolved) = load(
        config_path.as_ref(),
        config_text.as_ref(),
        source_name,
        &overrides,
    )?;
    Ok(resolved.to_string())
}

/// Starts a training run from the config file `config_path` or the YAML/JSON
/// text `config_text` (named `source_name` in errors) with `--set` style
/// `overrides`; returns the run directory, its status and its env steps.
#[pyfunction]
#[pyo3(signature = (config_path, config_text, source_name, overrides, runs_dir, name, progress="bar", steps=None, command_line=Vec::new()))]
#[allow(clippy::too_many_arguments)]
pub fn train(
    py: Python<'_>,
    config_path: Option<PathBuf>,
    config_text: Option<String>,
    source_name: &str,
    overrides: Vec<String>,
    runs_dir: PathBuf,
    name: String,
    progress: &str,
    steps: Option<u64>,
    command_line: Vec<String>,
) -> PyResult<(PathBuf, &'static str, u64)> {
    let progress = progress_mode(progress)?;
    let (config, resolved) = load(
        config_path.as_ref(),
        config_text.as_ref(),
        source_name,
        &overrides,
    )?;
    // The environment is the config's part most often wrong (an unknown id
    // or setting): a `ValueError` before any run directory exists.
    crate::registry()
        .factory_for(&config)
        .map_err(value_error)?;
    let run = NewRun {
        config,
        resolved,
        name,
        runs_dir,
        command_line,
        progress,
        steps,
    };
    let (run_dir, outcome) = supervised(py, |stop| start_run(run, &crate::registry(), stop))?;
    Ok((run_dir, status_name(&outcome), outcome.env_steps))
}

/// Runs the `hlynr` command line `args` (the program name first), as the
/// `hlynr` binary does: `python -m hlynr train --config ...`.
#[pyfunction]
pub fn cli(py: Python<'_>, args: Vec<String>) -> PyResult<()> {
    py.detach(|| hlynr_cli::run_args(args, &crate::registry()))
        .map_err(|e| runtime_error(format!("{e:#}")))
}

/// Continues the run at `run_dir` from its newest valid checkpoint; returns
/// its status and env steps.
#[pyfunction]
#[pyo3(signature = (run_dir, progress="bar", steps=None, command_line=Vec::new()))]
pub fn resume(
    py: Python<'_>,
    run_dir: PathBuf,
    progress: &str,
    steps: Option<u64>,
    command_line: Vec<String>,
) -> PyResult<(&'static str, u64)> {
    let progress = progress_mode(progress)?;
    let outcome = supervised(py, |stop| {
        resume_run(
            &run_dir,
            steps,
            progress,
            command_line,
            &crate::registry(),
            stop,
        )
    })?;
    Ok((status_name(&outcome), outcome.env_steps))
}

/// The resolved config of the run at `run_dir` (its `config.yaml`), as JSON.
#[pyfunction]
pub fn run_config(run_dir: PathBuf) -> PyResult<String> {
    let path = run_dir.join(hlynr_rl::run::CONFIG_FILE);
    let config = hlynr_rl::run::read_config(&path).map_err(value_error)?;
    Ok(config.to_string())
}

/// The run's metric stream: one dict per logged update (`step`, `time_s`
/// and the values by name) and the run's events (`step`, `time_s`,
/// `event`: the event as a dict), in file order. A last line cut short by a
/// crash is skipped.
#[pyfunction]
pub fn read_metrics<'py>(
    py: Python<'py>,
    run_dir: PathBuf,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
    let log = read_log(&run_dir.join(hlynr_rl::run::METRICS_FILE)).map_err(value_error)?;
    let (rows, events) = (PyList::empty(py), PyList::empty(py));
    for record in &log.records {
        let row = PyDict::new(py);
        match record {
            MetricsRecord::Scalars {
                step,
                time_s,
                values,
            } => {
                row.set_item("step", step)?;
                row.set_item("time_s", time_s)?;
                for (key, value) in values.iter() {
                    row.set_item(key, value)?;
                }
                rows.append(row)?;
            }
            MetricsRecord::Event {
                step,
                time_s,
                event,
            } => {
                row.set_item("step", step)?;
                row.set_item("time_s", time_s)?;
                row.set_item("event", event.to_json().to_string())?;
                events.append(row)?;
            }
        }
    }
    Ok((rows, events))
}
