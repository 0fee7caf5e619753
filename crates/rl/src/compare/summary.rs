//! What each run configured and achieved, read from its directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::format::{self};
use crate::metrics::{MetricsLog, MetricsRecord, event_kind, keys, read_metrics};
use crate::run::{
    CONFIG_FILE, MANIFEST_FILE, METRICS_FILE, Manifest, RunDir, RunError, RunStatus, read_config,
};

/// Dotted config keys left out of [`config_differences`]: values that differ
/// between every pair of runs without saying anything about the setting.
/// The resolved config holds no names, paths or timestamps (those live in
/// the manifest), so this list is empty today; it exists so such a key,
/// once added, is excluded in one place.
pub const IGNORED_CONFIG_KEYS: &[&str] = &[];

/// A metric's end point and best point in one run.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSummary {
    /// The `metrics.jsonl` key the numbers come from (`eval/...` or
    /// `rollout/...`).
    pub key: String,
    /// The last logged value (may be non-finite: a diverged run shows it).
    pub final_value: f64,
    /// The largest finite value (`NaN` when no value is finite).
    pub best_value: f64,
    /// Env step of the first record with [`MetricSummary::best_value`].
    pub best_step: Option<u64>,
    /// Number of logged values.
    pub points: usize,
}

impl MetricSummary {
    /// Summarises the series of `key` in `log`; `None` when it has no values.
    pub fn of(log: &MetricsLog, key: &str) -> Option<Self> {
        let series = log.series(key);
        let &(_, final_value) = series.last()?;
        let mut best: Option<(u64, f64)> = None;
        for &(step, v) in &series {
            if v.is_finite() && best.is_none_or(|(_, b)| v > b) {
                best = Some((step, v));
            }
        }
        Some(MetricSummary {
            key: key.to_string(),
            final_value,
            best_value: best.map_or(f64::NAN, |b| b.1),
            best_step: best.map(|b| b.0),
            points: series.len(),
        })
    }
}

/// What one run configured and achieved.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The run directory's name (unique, unlike the manifest's run name).
    pub name: String,
    /// The run directory.
    pub dir: PathBuf,
    /// The manifest, when the directory has one.
    pub manifest: Option<Manifest>,
    /// The resolved config flattened to dotted keys (`ppo.learning_rate.initial`).
    /// Lists are leaves: `ppo.policy.net_arch` -> `[64,64]`.
    pub config: BTreeMap<String, Value>,
    /// Success rate: `eval/success_rate`, else `rollout/success_rate`; `None`
    /// for environments without a success predicate.
    pub success: Option<MetricSummary>,
    /// Return: `eval/mean_reward`, else `rollout/ep_rew_mean`.
    pub episode_return: Option<MetricSummary>,
    /// First env step at which the best (success rate, then return) was reached.
    pub steps_to_best: Option<u64>,
    /// Env steps of the last record.
    pub total_steps: u64,
    /// Median of `time/fps` (steps per second) over the run's updates.
    pub median_steps_per_s: Option<f64>,
    /// Training wall time at the last record, seconds (includes earlier
    /// segments of a resumed run).
    pub wall_time_s: Option<f64>,
    /// Number of doctor findings (`doctor` events).
    pub doctor_events: usize,
    /// The metrics stream, for curves.
    pub metrics: MetricsLog,
}

impl RunSummary {
    /// Reads and summarises the run in `run_dir`. The directory must hold
    /// `config.yaml` and `metrics.jsonl`; `manifest.json` is read when
    /// present. Errors name the directory and the file at fault.
    pub fn load(run_dir: &Path) -> Result<RunSummary, RunError> {
        if !run_dir.is_dir() {
            return Err(RunError::io(
                run_dir,
                "not a directory (expected a run directory)",
            ));
        }
        for file in [CONFIG_FILE, METRICS_FILE] {
            if !run_dir.join(file).is_file() {
                return Err(RunError::io(
                    run_dir,
                    format!("not a run directory: it has no {file}"),
                ));
            }
        }
        let manifest = if run_dir.join(MANIFEST_FILE).is_file() {
            Some(RunDir::open(run_dir)?.manifest().clone())
        } else {
            None
        };
        let config = read_config(&run_dir.join(CONFIG_FILE))?;
        let metrics = read_metrics(&run_dir.join(METRICS_FILE))?;
        let name = run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .or_else(|| manifest.as_ref().map(|m| m.name.clone()))
            .unwrap_or_else(|| run_dir.display().to_string());
        Ok(Self::from_parts(name, run_dir, manifest, &config, metrics))
    }

    /// Summarises already-read parts of a run (`load` without the files).
    pub fn from_parts(
        name: String,
        dir: &Path,
        manifest: Option<Manifest>,
        config: &Value,
        metrics: MetricsLog,
    ) -> RunSummary {
        let success = first_present(&metrics, &[keys::EVAL_SUCCESS_RATE, keys::SUCCESS_RATE]);
        let episode_return = first_present(&metrics, &[keys::EVAL_MEAN_REWARD, keys::EP_REW_MEAN]);
        let steps_to_best = steps_to_best(&metrics, success.as_ref(), episode_return.as_ref());
        let total_steps = metrics.records.iter().map(|r| r.step()).max().unwrap_or(0);
        let fps: Vec<f64> = metrics
            .series(keys::FPS)
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| v.is_finite())
            .collect();
        let wall_time_s = metrics
            .records
            .iter()
            .map(record_time_s)
            .filter(|t| t.is_finite())
            .reduce(f64::max);
        let doctor_events = metrics
            .events()
            .iter()
            .filter(|(_, e)| e.kind == event_kind::DOCTOR)
            .count();
        RunSummary {
            name,
            dir: dir.to_path_buf(),
            manifest,
            config: flatten_config(config),
            success,
            episode_return,
            steps_to_best,
            total_steps,
            median_steps_per_s: format::median(&fps),
            wall_time_s,
            doctor_events,
            metrics,
        }
    }

    /// The manifest's status, when there is a manifest.
    pub fn status(&self) -> Option<RunStatus> {
        self.manifest.as_ref().map(|m| m.status)
    }
}

fn record_time_s(r: &MetricsRecord) -> f64 {
    match r {
        MetricsRecord::Scalars { time_s, .. } | MetricsRecord::Event { time_s, .. } => *time_s,
    }
}

/// The summary of the first key of `candidates` that has values.
fn first_present(log: &MetricsLog, candidates: &[&str]) -> Option<MetricSummary> {
    candidates.iter().find_map(|k| MetricSummary::of(log, k))
}

/// The first step whose (success, return) is the lexicographic maximum.
/// With a success series the candidates are its records, each paired with
/// the return logged at the same step; without one, the return's records.
/// Non-finite values rank below every finite one.
fn steps_to_best(
    log: &MetricsLog,
    success: Option<&MetricSummary>,
    episode_return: Option<&MetricSummary>,
) -> Option<u64> {
    let rank = |v: f64| if v.is_finite() { v } else { f64::NEG_INFINITY };
    let returns: Vec<(u64, f64)> = episode_return.map_or_else(Vec::new, |r| log.series(&r.key));
    // The first return logged at each step (a map keeps long runs linear).
    let mut first_return: BTreeMap<u64, f64> = BTreeMap::new();
    for &(step, v) in &returns {
        first_return.entry(step).or_insert(v);
    }
    let return_at = |step: u64| {
        first_return
            .get(&step)
            .map_or(f64::NEG_INFINITY, |v| rank(*v))
    };
    let candidates: Vec<(u64, f64, f64)> = match success {
        Some(s) => log
            .series(&s.key)
            .into_iter()
            .map(|(step, v)| (step, rank(v), return_at(step)))
            .collect(),
        None => returns
            .iter()
            .map(|&(step, v)| (step, f64::NEG_INFINITY, rank(v)))
            .collect(),
    };
    let mut best: Option<(u64, f64, f64)> = None;
    for c in candidates {
        if c.1 == f64::NEG_INFINITY && c.2 == f64::NEG_INFINITY {
            // A record with neither a finite success nor a finite return says nothing.
            continue;
        }
        let better = match best {
            None => true,
            Some(b) => c.1 > b.1 || (c.1 == b.1 && c.2 > b.2),
        };
        if better {
            best = Some(c);
        }
    }
    best.map(|b| b.0)
}

/// Flattens nested objects into dotted keys; lists, scalars and empty
/// objects are leaves.
pub fn flatten_config(config: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, child, out);
                }
            }
            leaf => {
                out.insert(prefix.to_string(), leaf.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", config, &mut out);
    out
}

/// A config value as table text: strings bare, everything else as compact JSON.
fn config_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The dotted config keys whose values differ between `runs`, each with one
/// value per run (`None`: the run's config lacks the key), sorted by key.
/// Keys in [`IGNORED_CONFIG_KEYS`] are left out. Fewer than two runs have no
/// differences.
pub fn config_differences(runs: &[RunSummary]) -> Vec<(String, Vec<Option<String>>)> {
    if runs.len() < 2 {
        return Vec::new();
    }
    let all_keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.config.keys()).collect();
    all_keys
        .into_iter()
        .filter(|k| !IGNORED_CONFIG_KEYS.contains(&k.as_str()))
        .filter_map(|k| {
            let values: Vec<Option<&Value>> = runs.iter().map(|r| r.config.get(k)).collect();
            let first = values[0];
            if values.iter().all(|v| *v == first) {
                return None;
            }
            Some((
                k.clone(),
                values.into_iter().map(|v| v.map(config_text)).collect(),
            ))
        })
        .collect()
}

/// The curve plotted by default: the success rate the runs report (eval
/// before rollout), else their return.
pub fn default_metric(runs: &[RunSummary]) -> &'static str {
    let has = |key: &str| runs.iter().any(|r| !r.metrics.series(key).is_empty());
    [
        keys::EVAL_SUCCESS_RATE,
        keys::SUCCESS_RATE,
        keys::EVAL_MEAN_REWARD,
        keys::EP_REW_MEAN,
    ]
    .into_iter()
    .find(|k| has(k))
    .unwrap_or(keys::EP_REW_MEAN)
}

/// The return curve to plot beside [`default_metric`]: evaluation return when
/// any run has it, else rollout return.
pub fn return_metric(runs: &[RunSummary]) -> &'static str {
    if runs
        .iter()
        .any(|r| !r.metrics.series(keys::EVAL_MEAN_REWARD).is_empty())
    {
        keys::EVAL_MEAN_REWARD
    } else {
        keys::EP_REW_MEAN
    }
}

/// Every scalar key logged by any of `runs`, sorted.
pub fn available_metrics(runs: &[RunSummary]) -> Vec<String> {
    let mut all = BTreeSet::new();
    for r in runs {
        for rec in &r.metrics.records {
            if let MetricsRecord::Scalars { values, .. } = rec {
                all.extend(values.keys().cloned());
            }
        }
    }
    all.into_iter().collect()
}
