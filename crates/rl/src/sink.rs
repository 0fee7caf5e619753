//! Where a run's logged values go: TensorBoard, `metrics.jsonl` and the
//! progress display, each optional.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use crate::metrics::{Metrics, MetricsJsonl, MetricsRecord, RESERVED, RunEvent};
use crate::progress::Progress;
use crate::run::{METRICS_FILE, RunError};
use crate::tensorboard::EventWriter;

/// Sends each log interval to TensorBoard, `metrics.jsonl` and the progress
/// display; any of the three may be absent.
#[derive(Debug)]
pub struct MetricsSink {
    tensorboard: Option<EventWriter>,
    jsonl: Option<MetricsJsonl>,
    progress: Option<Progress>,
    started: Instant,
    /// Training time of earlier segments of a resumed run.
    time_offset_s: f64,
}

impl MetricsSink {
    /// A sink writing to the given outputs; `time_offset_s` is the training
    /// time already spent before this process (0 for a new run).
    pub fn new(
        tensorboard: Option<EventWriter>,
        jsonl: Option<MetricsJsonl>,
        progress: Option<Progress>,
        time_offset_s: f64,
    ) -> Self {
        MetricsSink {
            tensorboard,
            jsonl,
            progress,
            started: Instant::now(),
            time_offset_s,
        }
    }

    /// The standard outputs of a new run in `run_dir`: a TensorBoard file
    /// and `metrics.jsonl` there.
    pub fn create_in(run_dir: &Path, progress: Option<Progress>) -> Result<Self, RunError> {
        let tb = EventWriter::create(run_dir)?;
        let jsonl = MetricsJsonl::create(&run_dir.join(METRICS_FILE))?;
        Ok(Self::new(Some(tb), Some(jsonl), progress, 0.0))
    }

    /// The outputs of a run in `run_dir` resumed at `resume_step` after
    /// `time_offset_s` seconds of training from `checkpoint_path`: a new
    /// TensorBoard file that supersedes points after the checkpoint, and
    /// `metrics.jsonl` cut back to `resume_step` (see [`MetricsJsonl::resume`]).
    pub fn resume_in(
        run_dir: &Path,
        resume_step: u64,
        checkpoint_path: &str,
        time_offset_s: f64,
        progress: Option<Progress>,
    ) -> Result<Self, RunError> {
        let tb = EventWriter::resume(run_dir, resume_step, checkpoint_path)?;
        let (jsonl, _) = MetricsJsonl::resume(&run_dir.join(METRICS_FILE), resume_step)?;
        Ok(Self::new(Some(tb), Some(jsonl), progress, time_offset_s))
    }

    /// Training wall time so far, including earlier segments; store it in
    /// checkpoints so a resumed run continues the clock.
    pub fn elapsed_s(&self) -> f64 {
        self.time_offset_s + self.started.elapsed().as_secs_f64()
    }

    /// The progress display, for updates between log intervals.
    pub fn progress_mut(&mut self) -> Option<&mut Progress> {
        self.progress.as_mut()
    }

    /// Logs one interval's values at `step` (total env steps) everywhere, and
    /// flushes the files so a crash loses at most the current interval.
    pub fn log(&mut self, step: u64, values: &Metrics) -> Result<(), RunError> {
        if let Some(bad) = values
            .keys()
            .find(|k| RESERVED.contains(&k.as_str()) || k.is_empty())
        {
            return Err(RunError::invalid(
                "MetricsSink::log",
                format!("`{bad}` cannot be a metric key (reserved: {RESERVED:?})"),
            ));
        }
        let time_s = self.elapsed_s();
        if let Some(tb) = &mut self.tensorboard {
            tb.add_scalars(step, values.iter().map(|(k, v)| (k.as_str(), *v)))?;
            tb.flush()?;
        }
        if let Some(j) = &mut self.jsonl {
            j.write(&MetricsRecord::Scalars {
                step,
                time_s,
                values: values.clone(),
            })?;
            j.flush()?;
        }
        if let Some(p) = &mut self.progress {
            p.update(step, values);
        }
        Ok(())
    }

    /// Logs an event: a JSONL `event` record, and a TensorBoard text entry
    /// under `events/<kind>`. Events other than informational findings are
    /// also shown by the progress display.
    pub fn event(&mut self, step: u64, event: &RunEvent) -> Result<(), RunError> {
        let time_s = self.elapsed_s();
        if let Some(tb) = &mut self.tensorboard {
            let mut text = event.message.clone();
            if !event.fields.is_empty() {
                text.push_str("\n\n");
                text.push_str(&Value::Object(event.fields.clone()).to_string());
            }
            tb.add_text(step, &format!("events/{}", event.kind), &text)?;
            tb.flush()?;
        }
        if let Some(j) = &mut self.jsonl {
            j.write(&MetricsRecord::Event {
                step,
                time_s,
                event: event.clone(),
            })?;
            j.flush()?;
        }
        // Informational findings stay in the files and `hlynr doctor`; the
        // live display shows what may need action.
        let informational = event.fields.get("severity").and_then(Value::as_str) == Some("info");
        if let Some(p) = &mut self.progress
            && !informational
        {
            p.note(&format!("[{}] {}", event.kind, event.message));
        }
        Ok(())
    }

    /// Flushes all outputs and completes the progress display.
    pub fn finish(&mut self) -> Result<(), RunError> {
        if let Some(p) = &mut self.progress {
            p.finish();
        }
        self.flush()
    }

    /// Flushes the files.
    pub fn flush(&mut self) -> Result<(), RunError> {
        if let Some(tb) = &mut self.tensorboard {
            tb.flush()?;
        }
        if let Some(j) = &mut self.jsonl {
            j.flush()?;
        }
        Ok(())
    }
}
