//! The metrics stream: `metrics.jsonl`, and [`MetricsSink`], which sends each
//! log interval to TensorBoard, the JSONL file and the progress display.
//!
//! Each line of `metrics.jsonl` is one JSON object:
//!
//! ```text
//! {"step":20480,"time_s":12.5,"rollout/ep_rew_mean":187.2,"train/value_loss":3.1,...}
//! {"step":20480,"time_s":12.6,"event":{"kind":"checkpoint","path":"checkpoints/step-000020480"}}
//! ```
//!
//! `step` is total env steps (never vectorised calls), `time_s` the training
//! wall time including earlier segments of a resumed run. Metric keys use
//! SB3's names ([`keys`]). JSON has no NaN or infinity, and the doctor must see
//! them, so non-finite values are written as the strings `"NaN"`,
//! `"Infinity"` and `"-Infinity"` and read back as numbers. Floats are
//! written in shortest round-trip form, so reading gives the exact `f64`.
//!
//! A crash can leave the last line half-written; the reader reports and skips
//! it. On resume, [`MetricsJsonl::resume`] drops records logged after the
//! checkpoint step (the crashed process's work that is about to be redone), so
//! an interrupted and resumed run has the same lines as an uninterrupted one.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::run::RunError;

/// One log interval's values by key.
pub type Metrics = BTreeMap<String, f64>;

/// The kinds of [`RunEvent`] the trainer logs, named once for the writers
/// (trainer) and the readers (doctor report, monitor, compare).
pub mod event_kind {
    /// A checkpoint was written (`saved`, or `new best evaluation`).
    pub const CHECKPOINT: &str = "checkpoint";
    /// The curriculum promoted the run to its next stage.
    pub const CURRICULUM: &str = "curriculum";
    /// A doctor finding (fields `rule`, `severity`, `action`, ...).
    pub const DOCTOR: &str = "doctor";
    /// Training ended with an error.
    pub const FAILED: &str = "failed";
    /// An update was abandoned by the non-finite guard.
    pub const NONFINITE: &str = "nonfinite";
    /// The doctor restored `best/` (or could not).
    pub const ROLLBACK: &str = "rollback";
    /// The doctor's rollback limit ended the run.
    pub const STOP: &str = "stop";
    /// The run stopped on a doctor finding with `action: stop`.
    pub const STOPPED: &str = "stopped";
}

/// SB3-compatible metric names, plus hlynr's additions.
pub mod keys {
    /// Mean episode return over the recent-episode window.
    pub const EP_REW_MEAN: &str = "rollout/ep_rew_mean";
    /// Mean episode length over the recent-episode window.
    pub const EP_LEN_MEAN: &str = "rollout/ep_len_mean";
    /// Fraction of recent episodes whose `is_success` was true (all envs).
    pub const SUCCESS_RATE: &str = "rollout/success_rate";
    /// Steps per second.
    pub const FPS: &str = "time/fps";
    /// Number of rollout/update iterations.
    pub const ITERATIONS: &str = "time/iterations";
    /// Training wall time in seconds.
    pub const TIME_ELAPSED: &str = "time/time_elapsed";
    /// Total env steps.
    pub const TOTAL_TIMESTEPS: &str = "time/total_timesteps";
    /// Completed episodes.
    pub const EPISODES: &str = "time/episodes";
    /// Value-function loss.
    pub const VALUE_LOSS: &str = "train/value_loss";
    /// Clipped surrogate policy loss.
    pub const POLICY_GRADIENT_LOSS: &str = "train/policy_gradient_loss";
    /// Negative mean entropy.
    pub const ENTROPY_LOSS: &str = "train/entropy_loss";
    /// Approximate KL divergence between old and new policy.
    pub const APPROX_KL: &str = "train/approx_kl";
    /// Fraction of samples whose ratio was clipped.
    pub const CLIP_FRACTION: &str = "train/clip_fraction";
    /// Current clip range.
    pub const CLIP_RANGE: &str = "train/clip_range";
    /// Current value clip range.
    pub const CLIP_RANGE_VF: &str = "train/clip_range_vf";
    /// Explained variance of the value predictions.
    pub const EXPLAINED_VARIANCE: &str = "train/explained_variance";
    /// Current learning rate.
    pub const LEARNING_RATE: &str = "train/learning_rate";
    /// Current entropy coefficient.
    pub const ENT_COEF: &str = "train/ent_coef";
    /// Gradient steps taken so far.
    pub const N_UPDATES: &str = "train/n_updates";
    /// Mean action standard deviation (continuous actions).
    pub const STD: &str = "train/std";
    /// Total loss.
    pub const LOSS: &str = "train/loss";
    /// Mean deterministic-eval return.
    pub const EVAL_MEAN_REWARD: &str = "eval/mean_reward";
    /// Mean deterministic-eval episode length.
    pub const EVAL_MEAN_EP_LENGTH: &str = "eval/mean_ep_length";
    /// Deterministic-eval success rate.
    pub const EVAL_SUCCESS_RATE: &str = "eval/success_rate";
    /// Prefix of a baseline's evaluation on the same episodes:
    /// `eval/baseline/<name>/success_rate` (or `/mean_reward` where the env
    /// defines no success).
    pub const EVAL_BASELINE: &str = "eval/baseline";
    /// The policy's success rate minus the best baseline's, same episodes.
    pub const EVAL_SUCCESS_GAP: &str = "eval/success_gap";
    /// Current curriculum stage index.
    pub const CURRICULUM_STAGE: &str = "curriculum/stage";
}

/// Keys a record may not use for metrics because the line format uses them.
pub(crate) const RESERVED: [&str; 3] = ["step", "time_s", "event"];

/// A notable happening (checkpoint, doctor finding, curriculum promotion,
/// skipped update), logged alongside the metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEvent {
    /// What happened: `checkpoint`, `doctor`, `curriculum`, `nonfinite`, ...
    pub kind: String,
    /// Human-readable summary.
    pub message: String,
    /// Structured details.
    pub fields: Map<String, Value>,
}

impl RunEvent {
    /// An event of `kind` with a message and no details.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        RunEvent {
            kind: kind.into(),
            message: message.into(),
            fields: Map::new(),
        }
    }

    /// Adds a detail.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// The event as one JSON object: its fields with `kind` and `message`
    /// (how the metrics log writes it).
    pub fn to_json(&self) -> Value {
        let mut m = self.fields.clone();
        m.insert("kind".into(), Value::String(self.kind.clone()));
        m.insert("message".into(), Value::String(self.message.clone()));
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Option<Self> {
        let mut m = v.as_object()?.clone();
        let kind = m.remove("kind")?.as_str()?.to_string();
        let message = match m.remove("message") {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        Some(RunEvent {
            kind,
            message,
            fields: m,
        })
    }
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricsRecord {
    /// Metric values for one log interval.
    Scalars {
        /// Total env steps.
        step: u64,
        /// Training wall time, seconds.
        time_s: f64,
        /// Values by key.
        values: Metrics,
    },
    /// An event.
    Event {
        /// Total env steps.
        step: u64,
        /// Training wall time, seconds.
        time_s: f64,
        /// The event.
        event: RunEvent,
    },
}

impl MetricsRecord {
    /// The record's step.
    pub fn step(&self) -> u64 {
        match self {
            MetricsRecord::Scalars { step, .. } | MetricsRecord::Event { step, .. } => *step,
        }
    }

    /// One JSON line (without the newline).
    pub fn to_line(&self) -> String {
        let mut line = String::with_capacity(256);
        let (step, time_s) = match self {
            MetricsRecord::Scalars { step, time_s, .. }
            | MetricsRecord::Event { step, time_s, .. } => (*step, *time_s),
        };
        line.push_str("{\"step\":");
        line.push_str(&step.to_string());
        line.push_str(",\"time_s\":");
        line.push_str(&number_json(time_s).to_string());
        match self {
            MetricsRecord::Scalars { values, .. } => {
                for (k, v) in values {
                    line.push(',');
                    line.push_str(&Value::String(k.clone()).to_string());
                    line.push(':');
                    line.push_str(&number_json(*v).to_string());
                }
            }
            MetricsRecord::Event { event, .. } => {
                line.push_str(",\"event\":");
                line.push_str(&event.to_json().to_string());
            }
        }
        line.push('}');
        line
    }

    /// Parses one line; the error says what is wrong.
    pub fn from_line(line: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let obj = v.as_object().ok_or("not a JSON object")?;
        let step = obj
            .get("step")
            .and_then(Value::as_u64)
            .ok_or("missing or non-integer `step`")?;
        let time_s = obj
            .get("time_s")
            .and_then(json_number)
            .ok_or("missing or non-numeric `time_s`")?;
        if let Some(event) = obj.get("event") {
            let event =
                RunEvent::from_json(event).ok_or("`event` is not an object with a `kind`")?;
            return Ok(MetricsRecord::Event {
                step,
                time_s,
                event,
            });
        }
        let mut values = Metrics::new();
        for (k, v) in obj {
            if RESERVED.contains(&k.as_str()) {
                continue;
            }
            let x = json_number(v).ok_or_else(|| format!("`{k}` is not a number: {v}"))?;
            values.insert(k.clone(), x);
        }
        Ok(MetricsRecord::Scalars {
            step,
            time_s,
            values,
        })
    }
}

/// A finite number as a JSON number, a non-finite one as a string.
pub(crate) fn number_json(x: f64) -> Value {
    if x.is_nan() {
        Value::String("NaN".into())
    } else if x == f64::INFINITY {
        Value::String("Infinity".into())
    } else if x == f64::NEG_INFINITY {
        Value::String("-Infinity".into())
    } else {
        // Finite, so `from_f64` cannot fail; the fallback keeps this total.
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// Inverse of [`number_json`]: a JSON number, or one of its non-finite strings.
pub(crate) fn json_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// The contents of a `metrics.jsonl`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsLog {
    /// Records in file order.
    pub records: Vec<MetricsRecord>,
    /// An unterminated, unparsable last line (a write cut short by a crash),
    /// skipped.
    pub truncated_tail: Option<String>,
}

impl MetricsLog {
    /// Every (step, value) of `key`, in file order.
    pub fn series(&self, key: &str) -> Vec<(u64, f64)> {
        self.records
            .iter()
            .filter_map(|r| match r {
                MetricsRecord::Scalars { step, values, .. } => values.get(key).map(|v| (*step, *v)),
                MetricsRecord::Event { .. } => None,
            })
            .collect()
    }

    /// Every event, with its step.
    pub fn events(&self) -> Vec<(u64, &RunEvent)> {
        self.records
            .iter()
            .filter_map(|r| match r {
                MetricsRecord::Event { step, event, .. } => Some((*step, event)),
                MetricsRecord::Scalars { .. } => None,
            })
            .collect()
    }
}

/// Reads `metrics.jsonl`. A bad line is an error naming its line number,
/// except an unterminated last line, which a crash mid-write leaves behind
/// and which is reported in [`MetricsLog::truncated_tail`].
pub fn read_metrics(path: &Path) -> Result<MetricsLog, RunError> {
    let text = fs::read(path).map_err(|e| RunError::io(path, format!("cannot read: {e}")))?;
    parse_metrics(&text, path)
}

fn parse_metrics(bytes: &[u8], path: &Path) -> Result<MetricsLog, RunError> {
    let mut log = MetricsLog::default();
    let ends_with_newline = bytes.last() == Some(&b'\n');
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if ends_with_newline || bytes.is_empty() {
        lines.pop(); // the empty piece after the final newline
    }
    let n = lines.len();
    for (i, raw) in lines.into_iter().enumerate() {
        let is_unterminated_last = i + 1 == n && !ends_with_newline;
        let parsed = std::str::from_utf8(raw)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|line| {
                if line.trim().is_empty() {
                    Err("empty line".to_string())
                } else {
                    MetricsRecord::from_line(line)
                }
            });
        match parsed {
            Ok(r) => log.records.push(r),
            Err(_) if is_unterminated_last => {
                log.truncated_tail = Some(String::from_utf8_lossy(raw).into_owned());
            }
            Err(e) => {
                return Err(RunError::corrupt(path, format!("line {}: {e}", i + 1)));
            }
        }
    }
    Ok(log)
}

/// Appends records to `metrics.jsonl`.
#[derive(Debug)]
pub struct MetricsJsonl {
    path: PathBuf,
    out: BufWriter<File>,
}

impl MetricsJsonl {
    /// Creates (or truncates) the file for a new run.
    pub fn create(path: &Path) -> Result<Self, RunError> {
        let file =
            File::create(path).map_err(|e| RunError::io(path, format!("cannot create: {e}")))?;
        Ok(MetricsJsonl {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Reopens the file of a run resumed at `resume_step`: records with a
    /// larger step, and a truncated last line, are removed (atomically), then
    /// writing continues after the rest. Returns the writer and how many
    /// records were dropped. A missing file starts empty.
    pub fn resume(path: &Path, resume_step: u64) -> Result<(Self, usize), RunError> {
        let mut dropped = 0;
        if path.exists() {
            let log = read_metrics(path)?;
            let keep: Vec<&MetricsRecord> = log
                .records
                .iter()
                .filter(|r| r.step() <= resume_step)
                .collect();
            dropped = log.records.len() - keep.len();
            if dropped > 0 || log.truncated_tail.is_some() {
                let mut text = String::new();
                for r in keep {
                    text.push_str(&r.to_line());
                    text.push('\n');
                }
                hlynr_nn::io::write_atomic(path, text.as_bytes())
                    .map_err(|e| RunError::io(path, e.to_string()))?;
            }
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| RunError::io(path, format!("cannot open for appending: {e}")))?;
        Ok((
            MetricsJsonl {
                path: path.to_path_buf(),
                out: BufWriter::new(file),
            },
            dropped,
        ))
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record.
    pub fn write(&mut self, record: &MetricsRecord) -> Result<(), RunError> {
        let mut line = record.to_line();
        line.push('\n');
        self.out
            .write_all(line.as_bytes())
            .map_err(|e| RunError::io(&self.path, format!("cannot write: {e}")))
    }

    /// Pushes buffered lines to the file.
    pub fn flush(&mut self) -> Result<(), RunError> {
        self.out
            .flush()
            .map_err(|e| RunError::io(&self.path, format!("cannot flush: {e}")))
    }
}

impl Drop for MetricsJsonl {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_survive_a_round_trip() {
        let mut values = Metrics::new();
        values.insert("a".into(), f64::NAN);
        values.insert("b".into(), f64::INFINITY);
        values.insert("c".into(), f64::NEG_INFINITY);
        values.insert("d".into(), 0.1 + 0.2);
        let r = MetricsRecord::Scalars {
            step: 7,
            time_s: 1.5,
            values,
        };
        let back = MetricsRecord::from_line(&r.to_line()).expect("parses");
        let MetricsRecord::Scalars { values, .. } = back else {
            panic!("not scalars")
        };
        assert!(values["a"].is_nan());
        assert_eq!(values["b"], f64::INFINITY);
        assert_eq!(values["c"], f64::NEG_INFINITY);
        assert_eq!(values["d"].to_bits(), (0.1f64 + 0.2).to_bits());
    }

    #[test]
    fn a_bad_middle_line_is_an_error_with_its_number() {
        let text = b"{\"step\":1,\"time_s\":0}\n{bad\n{\"step\":2,\"time_s\":0}\n";
        let err = parse_metrics(text, Path::new("m.jsonl")).expect_err("must fail");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
