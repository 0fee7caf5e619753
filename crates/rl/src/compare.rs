//! Side-by-side comparison of finished (or running) training runs: what was
//! configured differently, what each achieved, and their learning curves.
//!
//! Everything is read from the run directories (`config.yaml`,
//! `manifest.json`, `metrics.jsonl`; see [`crate::run`]), never from the
//! processes that wrote them, so runs can be compared while they train and
//! long after.
//!
//! **Which numbers.** A run's success rate and return come from its
//! deterministic evaluations (`eval/success_rate`, `eval/mean_reward`) when it
//! has any, since those are measured on fixed seeds and comparable between
//! runs; otherwise from the training rollouts (`rollout/success_rate`,
//! `rollout/ep_rew_mean`). Each summary says which key it used, so a table
//! never silently mixes the two. "Best" ranks success rate first and breaks
//! ties by return (the same order `best/` is kept by), and "steps to best" is
//! the first env step at which that best was reached: how quickly a setting
//! learns, not only how far.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::eval::plot::{colour, escape, nice_ticks};
use crate::format::{self, Align};
use crate::metrics::{MetricsLog, MetricsRecord, event_kind, keys, number_json, read_metrics};
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

/// The rows of the results table: (label, one cell per run).
fn result_rows(runs: &[RunSummary]) -> Vec<Vec<String>> {
    let dash = || "-".to_string();
    let metric_rows =
        |label: &str, pick: &dyn Fn(&RunSummary) -> Option<&MetricSummary>, rate: bool| {
            let fmt = |x: f64| {
                if rate {
                    format::rate(x)
                } else {
                    format::number(x)
                }
            };
            let mut final_row = vec![format!("{label} (final)")];
            let mut best_row = vec![format!("{label} (best)")];
            let mut source_row = vec![format!("{label} source")];
            for r in runs {
                match pick(r) {
                    Some(m) => {
                        final_row.push(fmt(m.final_value));
                        best_row.push(fmt(m.best_value));
                        source_row.push(m.key.clone());
                    }
                    None => {
                        final_row.push(dash());
                        best_row.push(dash());
                        source_row.push("none logged".into());
                    }
                }
            }
            [final_row, best_row, source_row]
        };
    let mut rows = Vec::new();
    rows.push(
        std::iter::once("status".to_string())
            .chain(runs.iter().map(|r| {
                r.status()
                    .map_or_else(|| "no manifest".into(), |s| format!("{s:?}").to_lowercase())
            }))
            .collect(),
    );
    rows.extend(metric_rows("success rate", &|r| r.success.as_ref(), true));
    rows.extend(metric_rows("return", &|r| r.episode_return.as_ref(), false));
    let row = |label: &str, f: &dyn Fn(&RunSummary) -> String| -> Vec<String> {
        std::iter::once(label.to_string())
            .chain(runs.iter().map(f))
            .collect()
    };
    rows.push(row("steps to best", &|r| {
        r.steps_to_best.map_or_else(dash, format::group_thousands)
    }));
    rows.push(row("env steps", &|r| {
        format::group_thousands(r.total_steps)
    }));
    rows.push(row("median steps/s", &|r| {
        r.median_steps_per_s.map_or_else(dash, format::number)
    }));
    rows.push(row("wall time", &|r| {
        r.wall_time_s.map_or_else(dash, format::wall_time)
    }));
    rows.push(row("doctor events", &|r| r.doctor_events.to_string()));
    rows
}

/// The comparison as Markdown: a config-difference table and a key-results
/// table, one column per run.
pub fn render_table_markdown(runs: &[RunSummary]) -> String {
    let mut header = vec![String::new()];
    header.extend(runs.iter().map(|r| r.name.clone()));
    let mut out = String::new();
    out.push_str("## Config differences\n\n");
    let diffs = config_differences(runs);
    if runs.len() < 2 {
        out.push_str("(one run: nothing to compare it with)\n");
    } else if diffs.is_empty() {
        out.push_str("(the resolved configs are identical)\n");
    } else {
        let mut h = header.clone();
        h[0] = "key".into();
        let rows: Vec<Vec<String>> = diffs
            .into_iter()
            .map(|(k, values)| {
                std::iter::once(k)
                    .chain(
                        values
                            .into_iter()
                            .map(|v| v.unwrap_or_else(|| "(absent)".into())),
                    )
                    .collect()
            })
            .collect();
        format::markdown_table(&mut out, &h, &columns(h.len()), &rows);
    }
    out.push_str("\n## Results\n\n");
    let mut h = header;
    h[0] = "metric".into();
    format::markdown_table(&mut out, &h, &columns(h.len()), &result_rows(runs));
    out
}

/// A label column, then one right-aligned column per run.
fn columns(n: usize) -> Vec<Align> {
    (0..n)
        .map(|i| if i == 0 { Align::Left } else { Align::Right })
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

/// An env-step count as a short axis label (`250k`, `1.5M`).
fn step_label(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    format!("{}{suffix}", trim_float(scaled))
}

/// A tick value without float noise (`0.30000000000000004` -> `0.3`).
fn trim_float(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e7).contains(&a) {
        return format!("{v:.1e}");
    }
    let text = format!("{v:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Plot-area geometry of [`learning_curves_svg`], pixels.
const PLOT_LEFT: f64 = 80.0;
const PLOT_TOP: f64 = 50.0;
const PLOT_WIDTH: f64 = 720.0;
const PLOT_HEIGHT: f64 = 400.0;
/// Series with at most this many points get a marker at each point (sparse
/// evaluation curves would otherwise hide where the measurements are).
const MARKER_MAX_POINTS: usize = 60;

/// An overlay plot of `metric` against env steps, one colour per run, with a
/// legend, ticked axes and a title. Non-finite values are left out of the
/// line and counted in the legend; a run without the metric is listed in the
/// legend as having no data. Success rates get a fixed 0-1 axis so plots of
/// different comparisons read the same.
pub fn learning_curves_svg(runs: &[RunSummary], metric: &str) -> String {
    let series: Vec<Vec<(u64, f64)>> = runs.iter().map(|r| r.metrics.series(metric)).collect();
    let finite = || {
        series
            .iter()
            .flatten()
            .filter(|(_, v)| v.is_finite())
            .copied()
    };
    let max_step = finite().map(|(s, _)| s).max().unwrap_or(0).max(1) as f64;
    let (mut y_lo, mut y_hi) = finite()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, v)| {
            (lo.min(v), hi.max(v))
        });
    if metric.ends_with("success_rate") {
        y_lo = 0.0;
        y_hi = 1.0;
    } else if !(y_lo.is_finite() && y_hi.is_finite()) {
        (y_lo, y_hi) = (0.0, 1.0);
    } else if y_hi - y_lo <= 1e-9 * y_hi.abs().max(y_lo.abs()) {
        // A flat curve: centre it in a band of +-10% (or +-1 around zero).
        let pad = if y_hi == 0.0 { 1.0 } else { 0.1 * y_hi.abs() };
        y_lo -= pad;
        y_hi += pad;
    } else {
        let span = y_hi - y_lo;
        y_lo -= 0.05 * span;
        y_hi += 0.05 * span;
    }
    let x_ticks = nice_ticks(0.0, max_step, 6);
    let y_ticks = nice_ticks(y_lo, y_hi, 6);
    let x_px = |s: f64| PLOT_LEFT + s / max_step * PLOT_WIDTH;
    let y_px = |v: f64| PLOT_TOP + PLOT_HEIGHT - (v - y_lo) / (y_hi - y_lo) * PLOT_HEIGHT;

    let labels: Vec<String> = runs
        .iter()
        .zip(&series)
        .map(|(r, s)| {
            let bad = s.iter().filter(|(_, v)| !v.is_finite()).count();
            if s.is_empty() {
                format!("{} (no data)", r.name)
            } else if bad > 0 {
                format!("{} ({bad} non-finite left out)", r.name)
            } else {
                r.name.clone()
            }
        })
        .collect();
    let legend_w = 50.0 + 7.0 * labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
    let width = PLOT_LEFT + PLOT_WIDTH + 20.0 + legend_w + 10.0;
    let height = (PLOT_TOP + PLOT_HEIGHT + 60.0).max(PLOT_TOP + 24.0 * runs.len() as f64 + 20.0);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">"
    );
    let _ = writeln!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{width:.0}\" height=\"{height:.0}\" fill=\"white\"/>"
    );
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"28\" font-size=\"16\" font-weight=\"bold\" text-anchor=\"middle\">{}</text>",
        PLOT_LEFT + PLOT_WIDTH / 2.0,
        escape(&format!("{metric} vs env steps"))
    );
    for &t in &x_ticks {
        let px = x_px(t);
        let _ = writeln!(
            out,
            "<line x1=\"{px:.1}\" y1=\"{PLOT_TOP:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#e4e4e4\"/>",
            PLOT_TOP + PLOT_HEIGHT
        );
        let _ = writeln!(
            out,
            "<text x=\"{px:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            PLOT_TOP + PLOT_HEIGHT + 18.0,
            escape(&step_label(t))
        );
    }
    for &t in &y_ticks {
        let py = y_px(t);
        let _ = writeln!(
            out,
            "<line x1=\"{PLOT_LEFT:.1}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#e4e4e4\"/>",
            PLOT_LEFT + PLOT_WIDTH
        );
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
            PLOT_LEFT - 6.0,
            py + 4.0,
            escape(&trim_float(t))
        );
    }
    let _ = writeln!(
        out,
        "<rect x=\"{PLOT_LEFT:.1}\" y=\"{PLOT_TOP:.1}\" width=\"{PLOT_WIDTH:.1}\" height=\"{PLOT_HEIGHT:.1}\" \
         fill=\"none\" stroke=\"#555\"/>"
    );
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\">env steps</text>",
        PLOT_LEFT + PLOT_WIDTH / 2.0,
        PLOT_TOP + PLOT_HEIGHT + 42.0
    );
    let (cx, cy) = (PLOT_LEFT - 56.0, PLOT_TOP + PLOT_HEIGHT / 2.0);
    let _ = writeln!(
        out,
        "<text x=\"{cx:.1}\" y=\"{cy:.1}\" font-size=\"13\" text-anchor=\"middle\" \
         transform=\"rotate(-90 {cx:.1} {cy:.1})\">{}</text>",
        escape(metric)
    );
    for (i, s) in series.iter().enumerate() {
        let points: Vec<(f64, f64)> = s
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|&(step, v)| (x_px(step as f64), y_px(v)))
            .collect();
        if points.is_empty() {
            continue;
        }
        let mut d = String::new();
        for (x, y) in &points {
            let _ = write!(d, "{x:.1},{y:.1} ");
        }
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2.2\" stroke-linejoin=\"round\"/>",
            d.trim_end(),
            colour(i)
        );
        if points.len() <= MARKER_MAX_POINTS {
            for (x, y) in &points {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{}\"/>",
                    colour(i)
                );
            }
        }
    }
    let lx = PLOT_LEFT + PLOT_WIDTH + 20.0;
    let _ = writeln!(
        out,
        "<rect x=\"{lx:.1}\" y=\"{PLOT_TOP:.1}\" width=\"{legend_w:.1}\" height=\"{:.1}\" fill=\"white\" stroke=\"#999\"/>",
        8.0 + 20.0 * labels.len() as f64
    );
    for (i, label) in labels.iter().enumerate() {
        let y = PLOT_TOP + 18.0 + 20.0 * i as f64;
        let _ = writeln!(
            out,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"3\"/>",
            lx + 6.0,
            y - 4.0,
            lx + 30.0,
            y - 4.0,
            colour(i)
        );
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"12\">{}</text>",
            lx + 36.0,
            escape(label)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn metric_json(m: Option<&MetricSummary>) -> Value {
    match m {
        None => Value::Null,
        Some(m) => json!({
            "key": m.key,
            "final": number_json(m.final_value),
            "best": number_json(m.best_value),
            "best_step": m.best_step,
            "points": m.points,
        }),
    }
}

/// The comparison as JSON for scripts: per run its summary and flattened
/// config, and the config differences by key.
pub fn to_json(runs: &[RunSummary]) -> Value {
    let runs_json: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "dir": r.dir.display().to_string(),
                "status": r.status().map(|s| format!("{s:?}").to_lowercase()),
                "success_rate": metric_json(r.success.as_ref()),
                "return": metric_json(r.episode_return.as_ref()),
                "steps_to_best": r.steps_to_best,
                "total_steps": r.total_steps,
                "median_steps_per_s": r.median_steps_per_s.map(number_json),
                "wall_time_s": r.wall_time_s.map(number_json),
                "doctor_events": r.doctor_events,
                "config": Value::Object(r.config.clone().into_iter().collect::<Map<_, _>>()),
            })
        })
        .collect();
    let diffs: Map<String, Value> = config_differences(runs)
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    json!({ "runs": runs_json, "config_differences": diffs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Metrics, RunEvent};

    fn scalars(step: u64, time_s: f64, values: &[(&str, f64)]) -> MetricsRecord {
        MetricsRecord::Scalars {
            step,
            time_s,
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<Metrics>(),
        }
    }

    fn event(step: u64, kind: &str) -> MetricsRecord {
        MetricsRecord::Event {
            step,
            time_s: step as f64 / 1000.0,
            event: RunEvent::new(kind, "m"),
        }
    }

    fn summary(name: &str, config: Value, records: Vec<MetricsRecord>) -> RunSummary {
        let log = MetricsLog {
            records,
            truncated_tail: None,
        };
        RunSummary::from_parts(name.into(), Path::new(name), None, &config, log)
    }

    /// A run with rollout metrics every 5k steps and evaluations every 10k.
    fn eval_run() -> RunSummary {
        let r = |step, sr, ret, fps| {
            scalars(
                step,
                step as f64 / 100.0,
                &[
                    (keys::SUCCESS_RATE, sr),
                    (keys::EP_REW_MEAN, ret),
                    (keys::FPS, fps),
                ],
            )
        };
        let e = |step, sr, ret| {
            scalars(
                step,
                step as f64 / 100.0 + 1.0,
                &[(keys::EVAL_SUCCESS_RATE, sr), (keys::EVAL_MEAN_REWARD, ret)],
            )
        };
        summary(
            "eval",
            json!({"ppo": {"learning_rate": 0.001}}),
            vec![
                r(5_000, 0.9, 10.0, 100.0),
                r(10_000, 0.95, 20.0, 300.0),
                e(10_000, 0.2, 5.0),
                event(10_000, "doctor"),
                r(15_000, 0.99, 30.0, 200.0),
                r(20_000, 0.5, 40.0, f64::NAN),
                e(20_000, 0.8, 50.0),
                e(30_000, 0.8, 70.0),
                event(30_000, "checkpoint"),
                e(40_000, 0.5, 90.0),
                event(40_000, "doctor"),
            ],
        )
    }

    #[test]
    fn evaluations_are_preferred_and_best_breaks_ties_by_return() {
        let s = eval_run();
        let success = s.success.as_ref().expect("success");
        assert_eq!(success.key, keys::EVAL_SUCCESS_RATE);
        assert_eq!(success.final_value, 0.5);
        assert_eq!(success.best_value, 0.8);
        assert_eq!(success.best_step, Some(20_000));
        assert_eq!(success.points, 4);
        let ret = s.episode_return.as_ref().expect("return");
        assert_eq!(ret.key, keys::EVAL_MEAN_REWARD);
        assert_eq!((ret.final_value, ret.best_value), (90.0, 90.0));
        // 0.8 is reached at 20k and again at 30k with a higher return.
        assert_eq!(s.steps_to_best, Some(30_000));
        assert_eq!(s.total_steps, 40_000);
        // fps 100, 300, 200 (NaN skipped): median 200.
        assert_eq!(s.median_steps_per_s, Some(200.0));
        assert_eq!(s.wall_time_s, Some(401.0));
        assert_eq!(s.doctor_events, 2);
    }

    #[test]
    fn without_evaluations_the_rollout_metrics_are_used() {
        let s = summary(
            "rollout",
            json!({}),
            vec![
                scalars(
                    100,
                    1.0,
                    &[(keys::SUCCESS_RATE, 0.5), (keys::EP_REW_MEAN, 3.0)],
                ),
                scalars(
                    200,
                    2.0,
                    &[(keys::SUCCESS_RATE, 0.5), (keys::EP_REW_MEAN, 3.0)],
                ),
                scalars(
                    300,
                    3.0,
                    &[(keys::SUCCESS_RATE, f64::NAN), (keys::EP_REW_MEAN, 9.0)],
                ),
            ],
        );
        let success = s.success.as_ref().expect("success");
        assert_eq!(success.key, keys::SUCCESS_RATE);
        assert!(
            success.final_value.is_nan(),
            "the last value is reported as is"
        );
        assert_eq!(success.best_value, 0.5);
        assert_eq!(
            s.episode_return.as_ref().map(|r| r.key.as_str()),
            Some(keys::EP_REW_MEAN)
        );
        // Equal (success, return) at 100 and 200: the first counts; the NaN
        // success at 300 ranks below any finite one despite its return.
        assert_eq!(s.steps_to_best, Some(100));
        assert_eq!(s.median_steps_per_s, None);
        assert_eq!(s.doctor_events, 0);
    }

    #[test]
    fn without_a_success_rate_the_best_is_the_best_return() {
        let s = summary(
            "cartpole",
            json!({}),
            vec![
                scalars(100, 1.0, &[(keys::EP_REW_MEAN, 20.0)]),
                scalars(200, 2.0, &[(keys::EP_REW_MEAN, 80.0)]),
                scalars(300, 3.0, &[(keys::EP_REW_MEAN, 50.0)]),
            ],
        );
        assert!(s.success.is_none());
        assert_eq!(s.steps_to_best, Some(200));
        let empty = summary("empty", json!({}), Vec::new());
        assert_eq!((empty.steps_to_best, empty.total_steps), (None, 0));
        assert!(empty.episode_return.is_none() && empty.wall_time_s.is_none());
    }

    #[test]
    fn config_differences_list_only_differing_keys() {
        let config = |lr: f64, extra: Option<i64>| {
            let mut c = json!({
                "seed": 0,
                "ppo": {"learning_rate": {"type": "linear", "initial": lr},
                        "policy": {"net_arch": [64, 64]}},
                "env": {"id": "CartPole-v1"},
            });
            if let Some(x) = extra {
                c["run"] = json!({ "keep_last_n": x });
            }
            c
        };
        let a = summary("a", config(1e-3, None), Vec::new());
        let b = summary("b", config(3e-4, Some(2)), Vec::new());
        let c = summary("c", config(1e-3, None), Vec::new());
        assert_eq!(
            a.config.get("ppo.policy.net_arch"),
            Some(&json!([64, 64])),
            "lists are leaves"
        );
        let diffs = config_differences(&[a.clone(), b.clone(), c]);
        assert_eq!(
            diffs,
            vec![
                (
                    "ppo.learning_rate.initial".to_string(),
                    vec![
                        Some("0.001".into()),
                        Some("0.0003".into()),
                        Some("0.001".into())
                    ]
                ),
                (
                    "run.keep_last_n".to_string(),
                    vec![None, Some("2".into()), None]
                ),
            ]
        );
        assert!(config_differences(std::slice::from_ref(&a)).is_empty());
        assert!(config_differences(&[a.clone(), a]).is_empty());
    }

    /// Checks that every tag is closed in order (enough XML to catch a
    /// broken writer) and returns the element names in document order.
    fn balanced_elements(svg: &str) -> Result<Vec<String>, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut names = Vec::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let close = rest[open..]
                .find('>')
                .ok_or_else(|| "unterminated tag".to_string())?
                + open;
            let tag = &rest[open + 1..close];
            if tag.contains('<') {
                return Err(format!("`<` inside tag {tag}"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(top) if top == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                let name: String = tag
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                names.push(name.clone());
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        if stack.is_empty() {
            Ok(names)
        } else {
            Err(format!("unclosed: {stack:?}"))
        }
    }

    #[test]
    fn the_element_checker_rejects_broken_markup() {
        assert!(balanced_elements("<svg><g></svg>").is_err());
        assert!(balanced_elements("<svg><text>a</text>").is_err());
        assert!(balanced_elements("<svg><line/></svg>").is_ok());
    }

    #[test]
    fn learning_curves_are_well_formed_with_one_line_per_run() {
        let mut other = eval_run();
        other.name = "run <b> & co".into();
        let no_data = summary("nothing", json!({}), Vec::new());
        let runs = vec![eval_run(), other, no_data];
        assert_eq!(default_metric(&runs), keys::EVAL_SUCCESS_RATE);
        assert_eq!(return_metric(&runs), keys::EVAL_MEAN_REWARD);
        let svg = learning_curves_svg(&runs, keys::EVAL_SUCCESS_RATE);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        let names = balanced_elements(&svg).expect("balanced");
        assert_eq!(names.iter().filter(|n| *n == "polyline").count(), 2);
        assert!(svg.contains("run &lt;b&gt; &amp; co"));
        assert!(svg.contains("nothing (no data)"));
        assert!(svg.contains("eval/success_rate vs env steps"));
        // Step ticks in thousands, success on 0..1.
        assert!(svg.contains(">40k<") && svg.contains(">0.8<"), "{svg}");

        // A flat curve gets a readable band around its value.
        let flat = summary(
            "flat",
            json!({}),
            vec![
                scalars(1, 0.0, &[(keys::EP_REW_MEAN, 500.0)]),
                scalars(2, 0.0, &[(keys::EP_REW_MEAN, 500.0)]),
            ],
        );
        let svg = learning_curves_svg(&[flat], keys::EP_REW_MEAN);
        assert!(svg.contains(">460<") && svg.contains(">540<"), "{svg}");

        let rollout = learning_curves_svg(&runs[..1], keys::FPS);
        let names = balanced_elements(&rollout).expect("balanced");
        assert_eq!(names.iter().filter(|n| *n == "polyline").count(), 1);
        assert!(rollout.contains("1 non-finite left out"));
    }

    #[test]
    fn tables_have_one_column_per_run() {
        let a = eval_run();
        let mut b = eval_run();
        b.name = "b|pipe".into();
        b.config.insert("ppo.learning_rate".into(), json!(0.0003));
        let md = render_table_markdown(&[a, b]);
        assert!(
            md.contains("| ppo.learning_rate | 0.001 | 0.0003 |"),
            "{md}"
        );
        assert!(md.contains("b\\|pipe"));
        assert!(
            md.contains("| success rate (best) | 80.0% | 80.0% |"),
            "{md}"
        );
        assert!(md.contains("| steps to best | 30,000 | 30,000 |"), "{md}");
        assert!(
            md.contains("| success rate source | eval/success_rate |"),
            "{md}"
        );
        for line in md.lines().filter(|l| l.starts_with('|')) {
            let cells = line.replace("\\|", "").matches('|').count();
            assert_eq!(cells, 4, "three cells per row: {line}");
        }
        let single = render_table_markdown(&[eval_run()]);
        assert!(single.contains("one run"));
    }

    #[test]
    fn json_keeps_non_finite_values_and_differences() {
        let mut s = eval_run();
        s.success.as_mut().expect("success").final_value = f64::NAN;
        let mut t = eval_run();
        t.config.insert("seed".into(), json!(1));
        let v = to_json(&[s, t]);
        assert_eq!(v["runs"][0]["success_rate"]["final"], json!("NaN"));
        assert_eq!(v["runs"][0]["steps_to_best"], json!(30_000));
        assert_eq!(v["runs"][1]["config"]["seed"], json!(1));
        assert_eq!(v["config_differences"]["seed"], json!([null, "1"]));
    }

    #[test]
    fn steps_are_labelled_for_axes() {
        assert_eq!(step_label(250_000.0), "250k");
        assert_eq!(step_label(1_500_000.0), "1.5M");
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hlynr-compare-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn load_reads_a_run_directory_and_names_what_is_missing() {
        let dir = scratch("load");
        let err = RunSummary::load(&dir).expect_err("empty dir");
        let text = err.to_string();
        assert!(
            text.contains(&dir.display().to_string()) && text.contains(CONFIG_FILE),
            "{text}"
        );
        crate::run::write_config(&dir.join(CONFIG_FILE), &json!({"ppo": {"n_envs": 8}}))
            .expect("config");
        let err = RunSummary::load(&dir).expect_err("no metrics");
        assert!(err.to_string().contains(METRICS_FILE), "{err}");
        let lines = [
            scalars(64, 0.5, &[(keys::EP_REW_MEAN, 12.0), (keys::FPS, 128.0)]),
            event(64, "doctor"),
        ]
        .map(|r| r.to_line() + "\n")
        .concat();
        std::fs::write(dir.join(METRICS_FILE), lines).expect("metrics");
        let s = RunSummary::load(&dir).expect("loads");
        assert_eq!(s.config.get("ppo.n_envs"), Some(&json!(8)));
        assert_eq!((s.total_steps, s.doctor_events), (64, 1));
        assert!(s.manifest.is_none());
        std::fs::write(dir.join(MANIFEST_FILE), "{").expect("manifest");
        let err = RunSummary::load(&dir).expect_err("bad manifest");
        assert!(err.to_string().contains(MANIFEST_FILE), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
