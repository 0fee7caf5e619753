//! `hlynr doctor RUN_DIR`: replays a run's `metrics.jsonl` through the
//! training doctor and prints what went wrong when, with the config keys to
//! change (Markdown, or JSON with `--json`).
//!
//! The rules' thresholds come from the `doctor` section of the run's
//! `config.yaml` (defaults when it has none). `doctor.enabled` only switches
//! off the watch during training; this command always diagnoses. The exit
//! status is 0 whenever the analysis ran, findings or not, so scripts can
//! tell "could not analyse" (non-zero) from "analysed"; error-severity
//! findings are pointed out on stderr, and `--json` output carries each
//! finding's severity for scripts that want to gate on it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use hlynr_rl::doctor::{DoctorConfig, Severity, analyze, render_markdown, to_json};
use hlynr_rl::metrics::read_metrics;
use hlynr_rl::run::{CONFIG_FILE, METRICS_FILE, RunDir, read_config};

/// Arguments of `hlynr doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The run directory (holds `metrics.jsonl` and `config.yaml`).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// Prints `{"findings": [...]}` as JSON instead of the Markdown report.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hlynr doctor`.
pub fn run(args: &DoctorArgs) -> Result<()> {
    let dir = &args.run_dir;
    if !dir.is_dir() {
        bail!("{}: no such run directory", dir.display());
    }
    let metrics_path = dir.join(METRICS_FILE);
    if !metrics_path.is_file() {
        bail!(
            "{}: no {METRICS_FILE} (is this a run directory?)",
            dir.display()
        );
    }
    let log = read_metrics(&metrics_path)?;
    if let Some(tail) = &log.truncated_tail {
        eprintln!(
            "note: {} ends with a half-written line ({} bytes, skipped)",
            metrics_path.display(),
            tail.len()
        );
    }
    let mut config = doctor_config(dir)?;
    config.enabled = true;
    let findings = analyze(&log, &config);
    if args.json {
        println!("{:#}", to_json(&findings));
    } else {
        let events = log.events();
        print!("{}", render_markdown(&run_name(dir), &findings, &events));
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if errors > 0 {
        eprintln!(
            "{errors} error-severity finding{} (exit status stays 0: the analysis itself succeeded)",
            if errors == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// The doctor section of the run's `config.yaml`, or the defaults when the
/// run has no config file or the config has no section.
fn doctor_config(dir: &Path) -> Result<DoctorConfig> {
    let path = dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Ok(DoctorConfig::default());
    }
    let resolved = read_config(&path)?;
    DoctorConfig::from_run_config(&resolved)
        .with_context(|| format!("{}: invalid doctor section", path.display()))
}

/// The run's name from its manifest, else the directory name.
fn run_name(dir: &Path) -> String {
    match RunDir::open(dir) {
        Ok(run) => run.manifest().name.clone(),
        Err(_) => dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    }
}
