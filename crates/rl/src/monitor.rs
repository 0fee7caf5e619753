//! The text frame `hlynr monitor` draws for a run: progress, speed, the
//! numbers that say whether training is healthy with sparklines of their
//! recent history, the latest evaluation, and the doctor's alerts.
//!
//! Rendering is a pure function of what the run directory holds
//! ([`MetricsLog`] and a [`RunInfo`]), so it is testable without a terminal
//! and a frame can be printed once for scripts; the command only re-reads the
//! files and redraws.

use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;

use crate::format::{self, group_thousands};
use crate::metrics::{MetricsLog, MetricsRecord, RunEvent, event_kind, keys};
use crate::run::{
    CONFIG_FILE, MANIFEST_FILE, METRICS_FILE, RunDir, RunError, RunStatus, read_config,
};

/// Sparkline levels, lowest to highest.
pub const SPARK_LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Drawn for a non-finite value, so a NaN in the loss is visible, not hidden.
pub const SPARK_NON_FINITE: char = '×';

/// A run whose metrics file has not changed for this long while its manifest
/// still says `running` is reported as stalled: the trainer writes a record
/// after every update, so a long silence means a very slow evaluation or a
/// process that died without recording a final status.
pub const STALE_AFTER_S: f64 = 60.0;

/// Event kinds shown as alerts.
pub const ALERT_KINDS: &[&str] = &[
    event_kind::DOCTOR,
    event_kind::ROLLBACK,
    event_kind::STOP,
    event_kind::STOPPED,
    event_kind::FAILED,
    event_kind::NONFINITE,
];

/// Alerts shown at most (the newest).
const MAX_ALERTS: usize = 8;

/// The narrowest frame drawn; narrower requests are widened to it.
pub const MIN_WIDTH: usize = 40;

/// A sparkline of `values` (oldest first): the most recent `width` of them,
/// one character each, scaled between their finite minimum and maximum.
/// Non-finite values are drawn as [`SPARK_NON_FINITE`]; a constant series as
/// a flat middle line (no change is not the same as "at the bottom").
pub fn sparkline(values: &[f64], width: usize) -> String {
    let recent = &values[values.len().saturating_sub(width)..];
    let (lo, hi) = recent
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let top = (SPARK_LEVELS.len() - 1) as f64;
    recent
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                SPARK_NON_FINITE
            } else if hi - lo <= 0.0 || !(hi - lo).is_finite() {
                SPARK_LEVELS[SPARK_LEVELS.len() / 2 - 1]
            } else {
                let level = ((v - lo) / (hi - lo) * top).round();
                SPARK_LEVELS[(level.max(0.0) as usize).min(SPARK_LEVELS.len() - 1)]
            }
        })
        .collect()
}

/// What the monitor knows about a run besides its metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    /// Shown in the title (the run directory's name).
    pub name: String,
    /// `total_timesteps` of the resolved config, when present.
    pub total_timesteps: Option<u64>,
    /// The manifest's status (`None` without a manifest).
    pub status: Option<RunStatus>,
    /// The manifest's reason for a failed or interrupted run.
    pub status_message: Option<String>,
    /// Seconds since `metrics.jsonl` last changed (`None`: unknown or no file).
    pub idle_s: Option<f64>,
}

impl RunInfo {
    /// Reads the run's name, step budget and status from `run_dir`, and how
    /// long ago its metrics were last written. A directory without
    /// `config.yaml` is not a run directory; the manifest is optional.
    pub fn read(run_dir: &Path) -> Result<RunInfo, RunError> {
        let config_path = run_dir.join(CONFIG_FILE);
        if !config_path.is_file() {
            return Err(RunError::io(
                run_dir,
                format!("not a run directory: it has no {CONFIG_FILE}"),
            ));
        }
        let config = read_config(&config_path)?;
        // Runs written before `total_timesteps` was a run-level key hold it in `ppo`.
        let total_timesteps = config
            .get("total_timesteps")
            .or_else(|| config.get("ppo").and_then(|p| p.get("total_timesteps")))
            .and_then(Value::as_u64);
        let (status, status_message) = if run_dir.join(MANIFEST_FILE).is_file() {
            let run = RunDir::open(run_dir)?;
            (
                Some(run.manifest().status),
                run.manifest().status_message.clone(),
            )
        } else {
            (None, None)
        };
        let idle_s = std::fs::metadata(run_dir.join(METRICS_FILE))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(|d| d.as_secs_f64());
        let name = run_dir.file_name().map_or_else(
            || run_dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(RunInfo {
            name,
            total_timesteps,
            status,
            status_message,
            idle_s,
        })
    }

    /// Whether the run has a final status (the monitor can stop watching).
    pub fn finished(&self) -> bool {
        self.status.is_some_and(|s| s != RunStatus::Running)
    }
}

/// Where the run stands, as the frame's last line says it.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    /// The manifest has a final status.
    Finished(RunStatus),
    /// Running, but the metrics have not changed for this many seconds.
    Stale(f64),
    /// Running, with no update logged yet.
    Waiting,
    /// Running and writing.
    Live,
}

/// The state of a run from its info and metrics.
pub fn run_state(log: &MetricsLog, info: &RunInfo) -> RunState {
    if let Some(status) = info.status.filter(|s| *s != RunStatus::Running) {
        return RunState::Finished(status);
    }
    match info.idle_s {
        Some(idle) if idle >= STALE_AFTER_S => RunState::Stale(idle),
        _ if log.records.is_empty() => RunState::Waiting,
        _ => RunState::Live,
    }
}

/// The last value of `key`, with its step.
fn latest(log: &MetricsLog, key: &str) -> Option<(u64, f64)> {
    log.records.iter().rev().find_map(|r| match r {
        MetricsRecord::Scalars { step, values, .. } => values.get(key).map(|v| (*step, *v)),
        MetricsRecord::Event { .. } => None,
    })
}

/// Cuts `line` to `width` characters.
fn fit(line: String, width: usize) -> String {
    if line.chars().count() <= width {
        line
    } else {
        let mut cut: String = line.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Label column width of the metric lines.
const LABEL_W: usize = 12;
/// Value column width of the metric lines.
const VALUE_W: usize = 10;

/// One metric line: label, latest value, sparkline of the recent history.
fn metric_line(log: &MetricsLog, label: &str, key: &str, rate: bool, width: usize) -> String {
    let series: Vec<f64> = log.series(key).into_iter().map(|(_, v)| v).collect();
    let Some(&last) = series.last() else {
        return format!("{label:<LABEL_W$}{:>VALUE_W$}", "-");
    };
    let value = if rate {
        format::rate(last)
    } else {
        format::number(last)
    };
    let spark_w = width.saturating_sub(LABEL_W + VALUE_W + 2);
    format!(
        "{label:<LABEL_W$}{value:>VALUE_W$}  {}",
        sparkline(&series, spark_w)
    )
}

/// The text of one event as an alert line.
fn alert_line(step: u64, event: &RunEvent) -> String {
    let text = |k: &str| event.fields.get(k).and_then(Value::as_str);
    let mut tag = event.kind.clone();
    if let Some(severity) = text("severity") {
        tag.push(' ');
        tag.push_str(severity);
    }
    let mut line = format!("step {:>11}  [{tag}] ", group_thousands(step));
    if let Some(rule) = text("rule") {
        line.push_str(rule);
        line.push_str(": ");
    }
    line.push_str(&event.message);
    line
}

/// One frame of the monitor for the run described by `info` with metrics
/// `log`, at most `width` characters wide (at least [`MIN_WIDTH`]). Lines
/// are separated by `\n`; the frame ends with a newline.
pub fn render_frame(log: &MetricsLog, info: &RunInfo, width: usize) -> String {
    let width = width.max(MIN_WIDTH);
    let mut lines: Vec<String> = Vec::new();
    let status = info
        .status
        .map_or_else(|| "no manifest".into(), |s| format!("{s:?}").to_lowercase());
    let title = format!("hlynr monitor: {}", info.name);
    let pad = width.saturating_sub(title.chars().count() + status.chars().count());
    lines.push(format!("{title}{}{status}", " ".repeat(pad.max(1))));
    lines.push("─".repeat(width));

    let step = log
        .records
        .iter()
        .map(MetricsRecord::step)
        .max()
        .unwrap_or(0);
    let elapsed_s = log
        .records
        .iter()
        .map(|r| match r {
            MetricsRecord::Scalars { time_s, .. } | MetricsRecord::Event { time_s, .. } => *time_s,
        })
        .filter(|t| t.is_finite())
        .reduce(f64::max);
    let fps = latest(log, keys::FPS)
        .map(|(_, v)| v)
        .filter(|v| v.is_finite() && *v > 0.0);
    match info.total_timesteps {
        Some(total) => {
            let fraction = if total == 0 {
                1.0
            } else {
                (step as f64 / total as f64).clamp(0.0, 1.0)
            };
            let numbers = format!(
                " {:5.1}%  {} / {} env steps",
                100.0 * fraction,
                group_thousands(step),
                group_thousands(total)
            );
            // The bar takes what the numbers leave, within 10..=40 characters.
            let bar_w = width
                .saturating_sub(LABEL_W + 2 + numbers.chars().count())
                .clamp(10, 40);
            let filled = ((fraction * bar_w as f64).round() as usize).min(bar_w);
            lines.push(format!(
                "{:<LABEL_W$}[{}{}]{numbers}",
                "progress",
                "#".repeat(filled),
                "-".repeat(bar_w - filled),
            ));
        }
        None => lines.push(format!(
            "{:<LABEL_W$}{} env steps (no total_timesteps in the config)",
            "progress",
            group_thousands(step)
        )),
    }
    let eta = match (info.total_timesteps, fps) {
        (Some(total), Some(rate)) if !info.finished() => {
            format::duration(total.saturating_sub(step) as f64 / rate)
        }
        _ => "-".into(),
    };
    lines.push(format!(
        "{:<LABEL_W$}{} steps/s   elapsed {}   ETA {}",
        "speed",
        fps.map_or_else(|| "-".into(), |r| group_thousands(r.round() as u64)),
        elapsed_s.map_or_else(|| "-".into(), format::duration),
        eta
    ));
    lines.push(String::new());
    lines.push(metric_line(log, "success", keys::SUCCESS_RATE, true, width));
    lines.push(metric_line(log, "return", keys::EP_REW_MEAN, false, width));
    lines.push(metric_line(
        log,
        "value loss",
        keys::VALUE_LOSS,
        false,
        width,
    ));
    lines.push(metric_line(log, "approx KL", keys::APPROX_KL, false, width));
    lines.push(String::new());

    match latest(log, keys::EVAL_MEAN_REWARD) {
        Some((eval_step, reward)) => {
            let at_step = |key: &str| {
                log.series(key)
                    .into_iter()
                    .rev()
                    .find(|(s, _)| *s == eval_step)
                    .map(|(_, v)| v)
            };
            let mut line = format!(
                "{:<LABEL_W$}step {}: return {}",
                "last eval",
                group_thousands(eval_step),
                format::number(reward)
            );
            if let Some(s) = at_step(keys::EVAL_SUCCESS_RATE) {
                line.push_str(&format!(", success {}", format::rate(s)));
            }
            if let Some(l) = at_step(keys::EVAL_MEAN_EP_LENGTH) {
                line.push_str(&format!(", episode length {}", format::number(l)));
            }
            lines.push(line);
        }
        None => lines.push(format!("{:<LABEL_W$}none yet", "last eval")),
    }

    let alerts: Vec<(u64, &RunEvent)> = log
        .events()
        .into_iter()
        .filter(|(_, e)| ALERT_KINDS.contains(&e.kind.as_str()))
        .collect();
    lines.push(String::new());
    if alerts.is_empty() {
        lines.push("alerts      none".into());
    } else {
        let shown = &alerts[alerts.len().saturating_sub(MAX_ALERTS)..];
        let earlier = alerts.len() - shown.len();
        let mut head = format!("alerts      {} (newest last", alerts.len());
        if earlier > 0 {
            head.push_str(&format!("; {earlier} earlier not shown"));
        }
        head.push(')');
        lines.push(head);
        for (s, e) in shown {
            lines.push(format!("  {}", alert_line(*s, e)));
        }
    }
    lines.push(String::new());
    lines.push(match run_state(log, info) {
        RunState::Finished(status) => {
            let mut line = format!("run finished: {}", format!("{status:?}").to_lowercase());
            if let Some(m) = &info.status_message {
                line.push_str(&format!(" ({m})"));
            }
            line
        }
        RunState::Stale(idle) => format!(
            "no new data for {idle:.0} s (the process may have died without recording a final status)"
        ),
        RunState::Waiting => "waiting for the first update".into(),
        RunState::Live => {
            // Without a manifest the status is unknown, so do not claim one.
            let state = if info.status.is_some() {
                "running"
            } else {
                "status unknown (no manifest)"
            };
            match info.idle_s {
                Some(idle) => format!("{state}; last update {idle:.0} s ago"),
                None => state.into(),
            }
        }
    });

    let mut out = String::new();
    for line in lines {
        out.push_str(&fit(line, width));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn sparklines_scale_between_min_and_max() {
        assert_eq!(
            sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 8),
            "▁▂▃▄▅▆▇█"
        );
        // Only the most recent `width` values are drawn, scaled among themselves.
        assert_eq!(sparkline(&[100.0, 0.0, 1.0], 2), "▁█");
        assert_eq!(sparkline(&[3.0, 3.0, 3.0], 10), "▄▄▄");
        assert_eq!(sparkline(&[1.0, f64::NAN, 2.0, f64::INFINITY], 10), "▁×█×");
        assert_eq!(sparkline(&[f64::NAN], 5), "×");
        assert_eq!(sparkline(&[], 5), "");
        assert_eq!(sparkline(&[1.0, 2.0], 0), "");
        // Extreme finite values whose range overflows stay drawable.
        assert_eq!(sparkline(&[-f64::MAX, f64::MAX], 2), "▄▄");
    }

    fn record(step: u64, values: &[(&str, f64)]) -> MetricsRecord {
        MetricsRecord::Scalars {
            step,
            time_s: step as f64 / 1000.0,
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<Metrics>(),
        }
    }

    fn training_log() -> MetricsLog {
        let mut records = Vec::new();
        for i in 1..=20u64 {
            records.push(record(
                i * 1000,
                &[
                    (keys::SUCCESS_RATE, i as f64 / 20.0),
                    (keys::EP_REW_MEAN, 10.0 * i as f64),
                    (keys::VALUE_LOSS, if i == 7 { f64::NAN } else { 1.0 }),
                    (keys::APPROX_KL, 0.01),
                    (keys::FPS, 2000.0),
                ],
            ));
        }
        records.push(record(
            20_000,
            &[
                (keys::EVAL_MEAN_REWARD, 250.0),
                (keys::EVAL_SUCCESS_RATE, 0.9),
                (keys::EVAL_MEAN_EP_LENGTH, 310.0),
            ],
        ));
        records.push(MetricsRecord::Event {
            step: 12_000,
            time_s: 12.0,
            event: RunEvent::new("doctor", "value loss is 40x the return variance")
                .with("rule", "value_explosion")
                .with("severity", "warn"),
        });
        records.push(MetricsRecord::Event {
            step: 13_000,
            time_s: 13.0,
            event: RunEvent::new("checkpoint", "saved"),
        });
        records.push(MetricsRecord::Event {
            step: 14_000,
            time_s: 14.0,
            event: RunEvent::new("rollback", "restored checkpoints/step-000010000"),
        });
        MetricsLog {
            records,
            truncated_tail: None,
        }
    }

    fn info(status: RunStatus, idle_s: Option<f64>) -> RunInfo {
        RunInfo {
            name: "demo-20260101-000000".into(),
            total_timesteps: Some(100_000),
            status: Some(status),
            status_message: None,
            idle_s,
        }
    }

    #[test]
    fn a_frame_shows_progress_health_eval_and_alerts() {
        let frame = render_frame(&training_log(), &info(RunStatus::Running, Some(3.0)), 100);
        assert!(
            frame.starts_with("hlynr monitor: demo-20260101-000000"),
            "{frame}"
        );
        assert!(
            frame.contains(" 20.0%  20,000 / 100,000 env steps"),
            "{frame}"
        );
        // 80,000 steps left at 2,000 steps/s.
        assert!(
            frame.contains("2,000 steps/s   elapsed 0:00:20   ETA 0:00:40"),
            "{frame}"
        );
        assert!(frame.contains("success         100.0%  ▁"), "{frame}");
        assert!(frame.contains("return             200  ▁"), "{frame}");
        let value_loss = frame
            .lines()
            .find(|l| l.starts_with("value loss"))
            .expect("line");
        assert!(value_loss.contains('×'), "the NaN shows: {value_loss}");
        assert!(
            frame
                .contains("last eval   step 20,000: return 250, success 90.0%, episode length 310"),
            "{frame}"
        );
        assert!(frame.contains("alerts      2 (newest last)"), "{frame}");
        assert!(
            frame.contains("[doctor warn] value_explosion: value loss is 40x the return variance"),
            "{frame}"
        );
        assert!(frame.contains("[rollback] restored checkpoints/step-000010000"));
        assert!(
            !frame.contains("[checkpoint]"),
            "checkpoints are not alerts"
        );
        assert!(
            frame.trim_end().ends_with("running; last update 3 s ago"),
            "{frame}"
        );
        for line in frame.lines() {
            assert!(line.chars().count() <= 100, "too wide: {line}");
        }
    }

    #[test]
    fn the_state_line_says_finished_stale_or_waiting() {
        let log = training_log();
        let mut finished = info(RunStatus::Failed, Some(1.0));
        finished.status_message = Some("value loss diverged".into());
        assert!(finished.finished());
        let frame = render_frame(&log, &finished, 80);
        assert!(
            frame.contains("run finished: failed (value loss diverged)"),
            "{frame}"
        );
        assert!(frame.contains("ETA -"), "no ETA once finished: {frame}");

        let stale = info(RunStatus::Running, Some(125.0));
        assert!(!stale.finished());
        assert_eq!(run_state(&log, &stale), RunState::Stale(125.0));
        assert!(render_frame(&log, &stale, 80).contains("no new data for 125 s"));

        let empty = MetricsLog::default();
        let waiting = info(RunStatus::Running, None);
        assert_eq!(run_state(&empty, &waiting), RunState::Waiting);
        let frame = render_frame(&empty, &waiting, 80);
        assert!(frame.contains("0.0%  0 / 100,000 env steps"), "{frame}");
        assert!(frame.contains("last eval   none yet") && frame.contains("alerts      none"));
        assert!(frame.trim_end().ends_with("waiting for the first update"));
    }

    #[test]
    fn the_progress_bar_shrinks_to_fit_large_step_counts() {
        let mut wide = info(RunStatus::Running, None);
        wide.total_timesteps = Some(10_000_000_000);
        let frame = render_frame(&training_log(), &wide, 80);
        let progress = frame
            .lines()
            .find(|l| l.starts_with("progress"))
            .expect("line");
        assert!(progress.ends_with("10,000,000,000 env steps"), "{progress}");
        assert!(progress.chars().count() <= 80, "{progress}");
        let mut unknown = wide.clone();
        unknown.status = None;
        let frame = render_frame(&training_log(), &unknown, 80);
        assert!(
            frame.trim_end().ends_with("status unknown (no manifest)"),
            "{frame}"
        );
    }

    #[test]
    fn narrow_frames_are_cut_to_width() {
        let frame = render_frame(&training_log(), &info(RunStatus::Running, None), 10);
        for line in frame.lines() {
            assert!(line.chars().count() <= MIN_WIDTH, "too wide: {line}");
        }
        assert!(frame.lines().any(|l| l.ends_with('…')), "{frame}");
    }

    #[test]
    fn many_alerts_show_the_newest_and_count_the_rest() {
        let records = (0..12u64)
            .map(|i| MetricsRecord::Event {
                step: i,
                time_s: 0.0,
                event: RunEvent::new("doctor", format!("finding {i}")),
            })
            .collect();
        let log = MetricsLog {
            records,
            truncated_tail: None,
        };
        let frame = render_frame(&log, &info(RunStatus::Running, None), 100);
        assert!(
            frame.contains("alerts      12 (newest last; 4 earlier not shown)"),
            "{frame}"
        );
        assert!(frame.contains("finding 11") && frame.contains("finding 4"));
        assert!(!frame.contains("finding 3"), "{frame}");
    }

    #[test]
    fn run_info_reads_budget_and_status_from_the_directory() {
        let dir = std::env::temp_dir().join(format!("hlynr-monitor-info-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let err = RunInfo::read(&dir).expect_err("no config");
        assert!(err.to_string().contains(CONFIG_FILE), "{err}");
        crate::run::write_config(
            &dir.join(CONFIG_FILE),
            &serde_json::json!({"total_timesteps": 5000}),
        )
        .expect("config");
        let info = RunInfo::read(&dir).expect("reads");
        assert_eq!(info.total_timesteps, Some(5000));
        // A run from before the key was run-level.
        crate::run::write_config(
            &dir.join(CONFIG_FILE),
            &serde_json::json!({"ppo": {"total_timesteps": 6000}}),
        )
        .expect("config");
        let info = RunInfo::read(&dir).expect("reads");
        assert_eq!(info.total_timesteps, Some(6000));
        assert_eq!((info.status, info.idle_s), (None, None));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
