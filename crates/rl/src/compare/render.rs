//! The comparison as a Markdown table and as JSON.

use serde_json::{Map, Value, json};

use crate::format::{self, Align};
use crate::metrics::number_json;

use super::summary::*;

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
