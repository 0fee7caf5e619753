//! Evaluation reports: `report.json` (a stable schema that scripts rely on),
//! `report.md` (the same numbers for people) and a terminal table.
//!
//! The JSON schema is documented in `docs/eval.md`; bump [`SCHEMA_VERSION`]
//! whenever a field changes meaning or disappears (adding fields is compatible).
//! The report holds no timestamps or host names, so a fixed seed gives a
//! byte-identical file: reports can be diffed and checked into experiments.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde::ser::SerializeMap;

use super::stats::{Summary, Z_95, wilson_interval};
use super::{EvalError, PolicyEpisodes, Result};

/// Version of the `report.json` layout.
pub const SCHEMA_VERSION: u32 = 1;

/// Keys of a policy's entry that are not env metrics; an env metric with one of
/// these names would be ambiguous and is rejected.
pub const RESERVED_KEYS: &[&str] = &[
    "episodes",
    "successes",
    "success_rate",
    "success_ci95",
    "mean_return",
    "std_return",
    "episode_return",
    "episode_length",
    "termination_reasons",
];

/// What an environment adds to its evaluation reports, provided by the
/// environment's own crate (interception: `hlynr-envs`); the default adds
/// nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportSpec {
    /// Fractions of episodes whose metric is within thresholds.
    pub within: Option<WithinSpec>,
    /// Terminal-table columns shown when the env reports their metric: the
    /// metric and its `(header, statistic)` cells, in order. Without any, the
    /// table shows the mean of every metric.
    pub columns: Vec<(String, Vec<(String, Stat)>)>,
}

/// The fraction of episodes whose `metric` is at most each threshold, as a
/// report field of its own (interception: the miss distance at radii other
/// than the scenario's kill radius). These are statistics, never a second
/// definition of success.
#[derive(Clone, Debug, PartialEq)]
pub struct WithinSpec {
    /// The env metric (`miss_distance_m`).
    pub metric: String,
    /// The report field holding the fractions, keyed by threshold
    /// (`miss_within_m`: `{"50": 0.9, ...}`).
    pub field: String,
    /// Thresholds in the metric's unit, in the order reported.
    pub thresholds: Vec<f64>,
    /// Unit of the thresholds, for table headers (`m`).
    pub unit: String,
    /// Title of its `report.md` section.
    pub title: String,
}

/// What was evaluated, for the report header.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportContext {
    /// Env id (`"intercept"`, `"CartPole-v1"`).
    pub env: String,
    /// Scenario name for envs that have scenarios.
    pub scenario: Option<String>,
    /// Base seed of the evaluation.
    pub seed: u64,
    /// Episodes per policy.
    pub episodes: u64,
    /// Whether stochastic policies acted with their mode.
    pub deterministic: bool,
    /// Whether policies saw the true state instead of the estimate.
    pub oracle: bool,
    /// What the environment adds to the report.
    pub spec: ReportSpec,
}

/// The whole report; serialises to `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    /// Layout version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Version of hlynr that wrote the report.
    pub hlynr_version: String,
    /// Env id.
    pub env: String,
    /// Scenario name, `null` for envs without scenarios.
    pub scenario: Option<String>,
    /// Base seed.
    pub seed: u64,
    /// Episodes per policy.
    pub episodes: u64,
    /// Whether stochastic policies acted with their mode.
    pub deterministic: bool,
    /// Whether policies saw the true state.
    pub oracle: bool,
    /// One entry per policy, in the order they were given.
    pub policies: PolicyReports,
    /// What the environment added (shapes `report.md` and the terminal table).
    #[serde(skip)]
    pub spec: ReportSpec,
}

/// Policy name -> report, serialised as a JSON object in the given order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyReports(pub Vec<(String, PolicyReport)>);

impl Serialize for PolicyReports {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, report) in &self.0 {
            map.serialize_entry(name, report)?;
        }
        map.end()
    }
}

impl PolicyReports {
    /// The report of policy `name`.
    pub fn get(&self, name: &str) -> Option<&PolicyReport> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, r)| r)
    }
}

/// Everything measured for one policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyReport {
    /// Episodes run.
    pub episodes: u64,
    /// Episodes whose final step reported success; `null` when the env
    /// defines no success.
    pub successes: Option<u64>,
    /// `successes / episodes`; `null` when the env defines no success.
    pub success_rate: Option<f64>,
    /// Wilson 95% interval of the success rate.
    pub success_ci95: Option<[f64; 2]>,
    /// Mean undiscounted return.
    pub mean_return: f64,
    /// Population standard deviation of the return.
    pub std_return: f64,
    /// Distribution of the return.
    pub episode_return: Summary,
    /// Distribution of the episode length (steps).
    pub episode_length: Summary,
    /// Episode count per termination reason (sorted by reason).
    pub termination_reasons: BTreeMap<String, u64>,
    /// The [`WithinSpec`] fractions, under their field name, keyed by
    /// threshold (`"miss_within_m": {"50": .., "2": ..}`); empty when the env
    /// adds none or did not report the metric.
    #[serde(flatten)]
    pub within: BTreeMap<String, BTreeMap<String, f64>>,
    /// One summary per env metric of the final step (sorted by name), written
    /// beside the fields above: `"miss_distance_m": {"mean": ..}`.
    #[serde(flatten)]
    pub metrics: BTreeMap<String, Summary>,
}

impl PolicyReport {
    /// Summarises one policy's episodes.
    ///
    /// Success is read, never recomputed: an episode counts as a success when
    /// its final step carried `is_success == Some(true)`. Once any episode
    /// carries a flag, an episode without one counts as a failure.
    pub fn from_episodes(episodes: &PolicyEpisodes, spec: &ReportSpec) -> Result<Self> {
        let runs = &episodes.episodes;
        let n = runs.len() as u64;
        let defines_success = runs.iter().any(|e| e.is_success.is_some());
        let successes = defines_success
            .then(|| runs.iter().filter(|e| e.is_success == Some(true)).count() as u64);
        let episode_return = Summary::of(runs.iter().map(|e| e.episode_return));
        let episode_length = Summary::of(runs.iter().map(|e| e.length as f64));
        let mut termination_reasons = BTreeMap::new();
        for e in runs {
            *termination_reasons
                .entry(e.termination_reason.clone())
                .or_insert(0) += 1;
        }
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for e in runs {
            for &(key, value) in &e.metrics {
                let within_field = spec.within.as_ref().map(|w| w.field.as_str());
                if RESERVED_KEYS.contains(&key) || within_field == Some(key) {
                    return Err(EvalError::invalid(
                        format!("policy {:?} report", episodes.policy),
                        format!(
                            "the env reports a metric named {key:?}, which is a reserved report field"
                        ),
                    ));
                }
                values.entry(key.to_string()).or_default().push(value);
            }
        }
        let mut within = BTreeMap::new();
        if let Some(w) = &spec.within
            && let Some(xs) = values.get(&w.metric).filter(|xs| !xs.is_empty())
        {
            let fractions = w
                .thresholds
                .iter()
                .map(|&t| {
                    let k = xs.iter().filter(|&&x| x <= t).count();
                    (format!("{t}"), k as f64 / xs.len() as f64)
                })
                .collect();
            within.insert(w.field.clone(), fractions);
        }
        let metrics = values
            .into_iter()
            .map(|(k, v)| (k, Summary::of(v)))
            .collect();
        Ok(Self {
            episodes: n,
            successes,
            success_rate: successes.map(|k| if n == 0 { 0.0 } else { k as f64 / n as f64 }),
            success_ci95: successes.map(|k| wilson_interval(k, n, Z_95)),
            mean_return: episode_return.mean.unwrap_or(f64::NAN),
            std_return: episode_return.std.unwrap_or(f64::NAN),
            episode_return,
            episode_length,
            termination_reasons,
            within,
            metrics,
        })
    }

    /// A summary by name: an env metric, `"episode_return"` or `"episode_length"`.
    pub fn summary(&self, key: &str) -> Option<&Summary> {
        match key {
            "episode_return" => Some(&self.episode_return),
            "episode_length" => Some(&self.episode_length),
            other => self.metrics.get(other),
        }
    }
}

impl EvalReport {
    /// Builds the report from the engine's results, policies in the given order.
    pub fn new(context: &ReportContext, results: &[PolicyEpisodes]) -> Result<Self> {
        let policies = results
            .iter()
            .map(|r| {
                let report = PolicyReport::from_episodes(r, &context.spec)?;
                Ok((r.policy.clone(), report))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            schema_version: SCHEMA_VERSION,
            hlynr_version: env!("CARGO_PKG_VERSION").to_string(),
            env: context.env.clone(),
            scenario: context.scenario.clone(),
            seed: context.seed,
            episodes: context.episodes,
            deterministic: context.deterministic,
            oracle: context.oracle,
            policies: PolicyReports(policies),
            spec: context.spec.clone(),
        })
    }

    /// `report.json`: pretty-printed, keys in a fixed order, newline-terminated.
    pub fn to_json(&self) -> String {
        // Serialising plain structs, maps with string keys and finite-or-null
        // numbers cannot fail; NaN (a report with no episodes) becomes null.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            unreachable!("an evaluation report always serialises to JSON: {e}")
        });
        text.push('\n');
        text
    }

    /// `report.md`: a summary table, one table per metric, termination reasons.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let title = match &self.scenario {
            Some(s) => format!("{} / {}", self.env, s),
            None => self.env.clone(),
        };
        let _ = writeln!(md, "# Evaluation: {title}\n");
        let _ = writeln!(
            md,
            "Seed {}, {} episodes per policy on identical seeds, {} actions, {}. \
             Success is the environment's own `is_success`; intervals are Wilson 95%. \
             Percentiles interpolate linearly between ranks; std is the population value.\n",
            self.seed,
            self.episodes,
            if self.deterministic {
                "deterministic"
            } else {
                "sampled"
            },
            if self.oracle {
                "oracle (true state)"
            } else {
                "estimated state"
            },
        );
        let mut rows = vec![vec![
            "Policy".to_string(),
            "Success".to_string(),
            "95% CI".to_string(),
            "Return (mean ± std)".to_string(),
            "Length (mean)".to_string(),
        ]];
        for (name, p) in &self.policies.0 {
            rows.push(vec![
                format!("`{name}`"),
                fmt_rate(p.success_rate),
                fmt_ci(p.success_ci95),
                format!(
                    "{} ± {}",
                    crate::format::number(p.mean_return),
                    crate::format::number(p.std_return)
                ),
                fmt_opt(p.episode_length.mean),
            ]);
        }
        push_markdown_table(&mut md, &rows);

        let mut metric_names: Vec<&String> = Vec::new();
        for (_, p) in &self.policies.0 {
            for k in p.metrics.keys() {
                if !metric_names.contains(&k) {
                    metric_names.push(k);
                }
            }
        }
        metric_names.sort();
        for metric in metric_names {
            let _ = writeln!(md, "\n## `{metric}`\n");
            let mut rows = vec![
                [
                    "Policy", "n", "mean", "std", "min", "median", "p90", "p99", "max",
                ]
                .map(String::from)
                .to_vec(),
            ];
            for (name, p) in &self.policies.0 {
                if let Some(s) = p.metrics.get(metric) {
                    rows.push(vec![
                        format!("`{name}`"),
                        s.count.to_string(),
                        fmt_opt(s.mean),
                        fmt_opt(s.std),
                        fmt_opt(s.min),
                        fmt_opt(s.median),
                        fmt_opt(s.p90),
                        fmt_opt(s.p99),
                        fmt_opt(s.max),
                    ]);
                }
            }
            push_markdown_table(&mut md, &rows);
        }

        if let Some(w) = &self.spec.within
            && self
                .policies
                .0
                .iter()
                .any(|(_, p)| p.within.contains_key(&w.field))
        {
            let _ = writeln!(md, "\n## {}\n", w.title);
            let mut header = vec!["Policy".to_string()];
            header.extend(w.thresholds.iter().map(|t| format!("<= {t} {}", w.unit)));
            let mut rows = vec![header];
            for (name, p) in &self.policies.0 {
                let fractions = p.within.get(&w.field);
                let mut row = vec![format!("`{name}`")];
                row.extend(
                    w.thresholds
                        .iter()
                        .map(|t| fmt_rate(fractions.and_then(|f| f.get(&format!("{t}"))).copied())),
                );
                rows.push(row);
            }
            push_markdown_table(&mut md, &rows);
        }

        let mut reasons: Vec<&String> = Vec::new();
        for (_, p) in &self.policies.0 {
            for k in p.termination_reasons.keys() {
                if !reasons.contains(&k) {
                    reasons.push(k);
                }
            }
        }
        reasons.sort();
        let _ = writeln!(md, "\n## Termination reasons (episodes)\n");
        let mut header = vec!["Policy".to_string()];
        header.extend(reasons.iter().map(|r| format!("`{r}`")));
        let mut rows = vec![header];
        for (name, p) in &self.policies.0 {
            let mut row = vec![format!("`{name}`")];
            row.extend(reasons.iter().map(|r| {
                p.termination_reasons
                    .get(*r)
                    .copied()
                    .unwrap_or(0)
                    .to_string()
            }));
            rows.push(row);
        }
        push_markdown_table(&mut md, &rows);
        md
    }

    /// Writes `dir/report.json` and `dir/report.md`, creating `dir`. Each file
    /// is written to a temporary name and renamed, so a reader never sees half
    /// a report.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        write_atomic(&dir.join("report.json"), self.to_json().as_bytes())?;
        write_atomic(&dir.join("report.md"), self.to_markdown().as_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Which statistic of a summary a table column shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// Mean.
    Mean,
    /// Standard deviation.
    Std,
    /// Median.
    Median,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// Maximum.
    Max,
}

impl Stat {
    fn of(self, s: &Summary) -> Option<f64> {
        match self {
            Stat::Mean => s.mean,
            Stat::Std => s.std,
            Stat::Median => s.median,
            Stat::P90 => s.p90,
            Stat::P99 => s.p99,
            Stat::Max => s.max,
        }
    }
}

/// One numeric column of the terminal table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Header text.
    pub header: String,
    /// Summary name (see [`PolicyReport::summary`]).
    pub key: String,
    /// Which statistic to show.
    pub stat: Stat,
}

impl Column {
    /// A column showing `stat` of summary `key`.
    pub fn new(header: &str, key: &str, stat: Stat) -> Self {
        Self {
            header: header.to_string(),
            key: key.to_string(),
            stat,
        }
    }
}

/// Columns for the terminal table: the env's own columns
/// ([`ReportSpec::columns`]) where it reports their metrics, otherwise the mean
/// of every metric; return and length always.
pub fn default_columns(report: &EvalReport) -> Vec<Column> {
    let has = |key: &str| {
        report
            .policies
            .0
            .iter()
            .any(|(_, p)| p.metrics.contains_key(key))
    };
    let mut columns = vec![Column::new("return", "episode_return", Stat::Mean)];
    let mut any_known = false;
    for (key, stats) in &report.spec.columns {
        if has(key) {
            any_known = true;
            columns.extend(stats.iter().map(|(h, s)| Column::new(h, key, *s)));
        }
    }
    if !any_known {
        let mut names: Vec<&String> = report
            .policies
            .0
            .iter()
            .flat_map(|(_, p)| p.metrics.keys())
            .collect();
        names.sort();
        names.dedup();
        columns.extend(names.iter().map(|k| Column::new(k, k, Stat::Mean)));
    }
    columns.push(Column::new("length", "episode_length", Stat::Mean));
    columns
}

/// A plain-text table, one row per policy: name, success % with its interval,
/// then `columns`. Numbers are right-aligned; a missing value prints `-`.
pub fn terminal_table(report: &EvalReport, columns: &[Column]) -> String {
    let mut rows = Vec::with_capacity(report.policies.0.len() + 1);
    let mut header = vec!["policy".to_string(), "success [95% CI]".to_string()];
    header.extend(columns.iter().map(|c| c.header.clone()));
    rows.push(header);
    for (name, p) in &report.policies.0 {
        let success = match (p.success_rate, p.success_ci95) {
            (Some(rate), Some([lo, hi])) => format!(
                "{:5.1}% [{:.1}, {:.1}]",
                100.0 * rate,
                100.0 * lo,
                100.0 * hi
            ),
            _ => "-".to_string(),
        };
        let mut row = vec![name.clone(), success];
        row.extend(
            columns
                .iter()
                .map(|c| fmt_opt(p.summary(&c.key).and_then(|s| c.stat.of(s)))),
        );
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|j| rows.iter().map(|r| r[j].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(j, cell)| {
                if j == 0 {
                    format!("{cell:<w$}", w = widths[j])
                } else {
                    format!("{cell:>w$}", w = widths[j])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        if i == 0 {
            let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            let _ = writeln!(out, "{}", "-".repeat(rule));
        }
    }
    out
}

/// A table whose first row is the header: names left, numbers right.
fn push_markdown_table(md: &mut String, rows: &[Vec<String>]) {
    use crate::format::{Align, markdown_table};
    let Some((header, body)) = rows.split_first() else {
        return;
    };
    let align: Vec<Align> = (0..header.len())
        .map(|j| if j == 0 { Align::Left } else { Align::Right })
        .collect();
    markdown_table(md, header, &align, body);
}

fn fmt_rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_string(), crate::format::rate)
}

fn fmt_ci(ci: Option<[f64; 2]>) -> String {
    ci.map_or_else(
        || "-".to_string(),
        |[lo, hi]| format!("[{:.1}%, {:.1}%]", 100.0 * lo, 100.0 * hi),
    )
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), crate::format::number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::EpisodeResult;

    fn episode(k: u64, ret: f64, success: Option<bool>, miss: f64, reason: &str) -> EpisodeResult {
        EpisodeResult {
            episode: k,
            seed: k,
            episode_return: ret,
            length: 10 + k,
            is_success: success,
            terminated: true,
            truncated: false,
            termination_reason: reason.to_string(),
            metrics: vec![("miss_distance_m", miss)],
        }
    }

    fn sample() -> Vec<PolicyEpisodes> {
        vec![
            PolicyEpisodes {
                policy: "zem-pn".into(),
                episodes: vec![
                    episode(0, 1.0, Some(true), 0.5, "cpa"),
                    episode(1, 2.0, Some(true), 1.5, "cpa"),
                    episode(2, 3.0, Some(false), 30.0, "ground"),
                    episode(3, 4.0, Some(true), 2.5, "cpa"),
                ],
            },
            PolicyEpisodes {
                policy: "apn".into(),
                episodes: vec![
                    episode(0, 0.0, Some(false), 50.0, "timeout"),
                    episode(1, 0.0, None, 60.0, "timeout"),
                    episode(2, 0.0, Some(true), 1.0, "cpa"),
                    episode(3, 0.0, Some(false), 70.0, "cpa"),
                ],
            },
        ]
    }

    fn context() -> ReportContext {
        ReportContext {
            env: "intercept".into(),
            scenario: Some("medium".into()),
            seed: 7,
            episodes: 4,
            deterministic: true,
            oracle: false,
            spec: miss_spec(),
        }
    }

    /// A spec like interception's: misses within 50 to 2 m, and its columns.
    fn miss_spec() -> ReportSpec {
        ReportSpec {
            within: Some(WithinSpec {
                metric: "miss_distance_m".into(),
                field: "miss_within_m".into(),
                thresholds: vec![50.0, 20.0, 10.0, 5.0, 2.0],
                unit: "m".into(),
                title: "Miss within radius".into(),
            }),
            columns: vec![(
                "miss_distance_m".into(),
                vec![
                    ("miss mean m".into(), Stat::Mean),
                    ("median".into(), Stat::Median),
                ],
            )],
        }
    }

    #[test]
    fn policy_report_counts_success_flags_and_summarises_metrics() {
        let report = EvalReport::new(&context(), &sample()).unwrap();
        let zem = report.policies.get("zem-pn").unwrap();
        assert_eq!(zem.successes, Some(3));
        assert_eq!(zem.success_rate, Some(0.75));
        assert_eq!(zem.success_ci95, Some(wilson_interval(3, 4, Z_95)));
        assert_eq!(zem.mean_return, 2.5);
        assert_eq!(zem.termination_reasons.get("cpa"), Some(&3));
        assert_eq!(zem.termination_reasons.get("ground"), Some(&1));
        let miss = &zem.metrics["miss_distance_m"];
        assert_eq!(miss.median, Some(2.0));
        assert_eq!(zem.episode_length.mean, Some(11.5));
        // A missing flag counts as a failure once the env defines success.
        let apn = report.policies.get("apn").unwrap();
        assert_eq!(apn.successes, Some(1));
        assert_eq!(apn.success_rate, Some(0.25));
    }

    #[test]
    fn miss_within_radii_counts_misses_at_most_each_radius() {
        let report = EvalReport::new(&context(), &sample()).unwrap();
        // zem-pn misses 0.5, 1.5, 30, 2.5 m; apn 50, 60, 1, 70 m.
        let zem = &report.policies.get("zem-pn").unwrap().within["miss_within_m"];
        let want = [
            ("50", 1.0),
            ("20", 0.75),
            ("10", 0.75),
            ("5", 0.75),
            ("2", 0.5),
        ];
        for (r, f) in want {
            assert_eq!(zem.get(r), Some(&f), "{r} m");
        }
        let apn = &report.policies.get("apn").unwrap().within["miss_within_m"];
        assert_eq!(
            apn.get("50"),
            Some(&0.5),
            "a miss equal to the radius is within it"
        );
        assert_eq!(apn.get("2"), Some(&0.25));
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(value["policies"]["zem-pn"]["miss_within_m"]["20"], 0.75);
        assert!(report.to_markdown().contains("## Miss within radius"));
        // Envs without a miss metric get no such block.
        let mut plain = sample();
        for p in &mut plain {
            for e in &mut p.episodes {
                e.metrics.clear();
            }
        }
        let report = EvalReport::new(&context(), &plain).unwrap();
        assert!(report.policies.get("zem-pn").unwrap().within.is_empty());
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert!(value["policies"]["zem-pn"].get("miss_within_m").is_none());
    }

    #[test]
    fn json_has_documented_layout_in_policy_order() {
        let report = EvalReport::new(&context(), &sample()).unwrap();
        let text = report.to_json();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["schema_version"], SCHEMA_VERSION);
        assert_eq!(value["env"], "intercept");
        assert_eq!(value["scenario"], "medium");
        assert_eq!(value["seed"], 7);
        assert_eq!(value["episodes"], 4);
        let zem = &value["policies"]["zem-pn"];
        assert_eq!(zem["success_rate"], 0.75);
        assert!(zem["success_ci95"].as_array().unwrap().len() == 2);
        for key in ["mean", "median", "p90", "p99", "std", "count"] {
            assert!(zem["miss_distance_m"][key].is_number(), "{key}");
        }
        assert_eq!(zem["termination_reasons"]["ground"], 1);
        // Policies keep the order given, not alphabetical order.
        assert!(text.find("\"zem-pn\"").unwrap() < text.find("\"apn\"").unwrap());
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn env_without_success_reports_null() {
        let mut runs = sample();
        for e in &mut runs[0].episodes {
            e.is_success = None;
        }
        let report = EvalReport::new(&context(), &runs[..1]).unwrap();
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert!(value["policies"]["zem-pn"]["success_rate"].is_null());
        assert!(value["policies"]["zem-pn"]["success_ci95"].is_null());
        let table = terminal_table(&report, &default_columns(&report));
        assert!(table.lines().nth(2).unwrap().contains(" - "), "{table}");
    }

    #[test]
    fn reserved_metric_names_are_rejected() {
        let mut runs = sample();
        runs[0].episodes[0].metrics.push(("success_rate", 1.0));
        let err = EvalReport::new(&context(), &runs).unwrap_err().to_string();
        assert!(
            err.contains("\"success_rate\"") && err.contains("zem-pn"),
            "{err}"
        );
    }

    #[test]
    fn markdown_and_terminal_tables_show_every_policy() {
        let report = EvalReport::new(&context(), &sample()).unwrap();
        let md = report.to_markdown();
        assert!(md.contains("# Evaluation: intercept / medium"));
        assert!(md.contains("| `zem-pn` | 75.0% |"), "{md}");
        assert!(md.contains("## `miss_distance_m`"));
        assert!(md.contains("`timeout`"));
        let table = terminal_table(&report, &default_columns(&report));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("policy") && lines[0].contains("miss mean m"));
        assert!(lines[2].starts_with("zem-pn") && lines[2].contains("75.0%"));
        // zem-pn miss median = 2.0, apn miss median = 55
        assert!(
            lines[2].contains(" 2 ") && lines[3].contains(" 55 "),
            "{table}"
        );
    }
}
