//! The progress display of a training run: env steps, steps per second, time
//! left, and the recent success rate and mean return.
//!
//! Three modes. `Bar` redraws one line on stderr with `\r` when stderr is a
//! terminal, and prints a plain line every few seconds otherwise (log files
//! stay readable). `Quiet` prints nothing. `JsonLines` prints one JSON object
//! per update on stdout, for scripts. Steps per second are measured over this
//! process only, so a resumed run does not count steps it did not take.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::metrics::{Metrics, keys};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar on stderr (plain periodic lines when stderr is not a terminal).
    Bar,
    /// Nothing.
    Quiet,
    /// One JSON object per update on stdout.
    JsonLines,
}

impl std::str::FromStr for ProgressMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bar" => Ok(ProgressMode::Bar),
            "quiet" => Ok(ProgressMode::Quiet),
            "json" | "jsonl" | "json-lines" => Ok(ProgressMode::JsonLines),
            other => Err(format!(
                "unknown progress mode `{other}` (expected bar, quiet or json)"
            )),
        }
    }
}

/// The numbers one update shows.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressSnapshot {
    /// Total env steps so far.
    pub step: u64,
    /// Env steps the run will stop at.
    pub total_steps: u64,
    /// Steps per second measured in this process (`None` before any time passed).
    pub steps_per_s: Option<f64>,
    /// Seconds left at the current rate.
    pub eta_s: Option<f64>,
    /// Latest `rollout/success_rate`.
    pub success_rate: Option<f64>,
    /// Latest `rollout/ep_rew_mean`.
    pub ep_rew_mean: Option<f64>,
}

impl ProgressSnapshot {
    /// Fraction done, in [0, 1].
    pub fn fraction(&self) -> f64 {
        if self.total_steps == 0 {
            1.0
        } else {
            (self.step as f64 / self.total_steps as f64).clamp(0.0, 1.0)
        }
    }

    /// The human-readable line, e.g.
    /// `[########------------]  40.0% 40,960/102,400 steps | 8,211 steps/s | ETA 0:00:07 | success 87.5% | return 123.40`.
    pub fn format_line(&self, bar_width: usize) -> String {
        let filled = (self.fraction() * bar_width as f64).round() as usize;
        let mut s = String::with_capacity(128);
        s.push('[');
        s.push_str(&"#".repeat(filled.min(bar_width)));
        s.push_str(&"-".repeat(bar_width - filled.min(bar_width)));
        s.push_str(&format!(
            "] {:5.1}% {}/{} steps",
            self.fraction() * 100.0,
            crate::format::group_thousands(self.step),
            crate::format::group_thousands(self.total_steps)
        ));
        match self.steps_per_s {
            Some(r) => s.push_str(&format!(
                " | {} steps/s",
                crate::format::group_thousands(r.round() as u64)
            )),
            None => s.push_str(" | - steps/s"),
        }
        match self.eta_s {
            Some(e) => s.push_str(&format!(" | ETA {}", crate::format::duration(e))),
            None => s.push_str(" | ETA -"),
        }
        if let Some(sr) = self.success_rate {
            s.push_str(&format!(" | success {:.1}%", sr * 100.0));
        }
        if let Some(r) = self.ep_rew_mean {
            s.push_str(&format!(" | return {r:.2}"));
        }
        s
    }

    /// The JSON-lines form.
    pub fn to_json(&self) -> serde_json::Value {
        let finite = |x: Option<f64>| x.filter(|v| v.is_finite());
        json!({
            "step": self.step,
            "total_steps": self.total_steps,
            "fraction": self.fraction(),
            "steps_per_s": finite(self.steps_per_s),
            "eta_s": finite(self.eta_s),
            "success_rate": finite(self.success_rate),
            "ep_rew_mean": finite(self.ep_rew_mean),
        })
    }
}

/// The progress display.
pub struct Progress {
    mode: ProgressMode,
    out: Box<dyn Write + Send>,
    /// Whether `out` is a terminal (enables `\r` redraws).
    terminal: bool,
    total_steps: u64,
    start_step: u64,
    started: Instant,
    last_shown: Option<Instant>,
    /// Minimum time between redraws (terminal) or lines (otherwise).
    interval: Duration,
    step: u64,
    success_rate: Option<f64>,
    ep_rew_mean: Option<f64>,
    /// Whether a `\r` line is on screen and must be ended before other output.
    line_open: bool,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("mode", &self.mode)
            .field("terminal", &self.terminal)
            .field("total_steps", &self.total_steps)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// Redraw period on a terminal.
const TERMINAL_INTERVAL: Duration = Duration::from_millis(200);
/// Line period when stderr is a file or pipe.
const PLAIN_INTERVAL: Duration = Duration::from_secs(10);

impl Progress {
    /// A display for a run going from `start_step` (non-zero when resumed) to
    /// `total_steps`, on stderr (`Bar`) or stdout (`JsonLines`).
    pub fn new(mode: ProgressMode, start_step: u64, total_steps: u64) -> Self {
        let (out, terminal): (Box<dyn Write + Send>, bool) = match mode {
            ProgressMode::JsonLines => (Box::new(std::io::stdout()), false),
            _ => {
                let terminal = std::io::stderr().is_terminal();
                (Box::new(std::io::stderr()), terminal)
            }
        };
        let interval = if terminal {
            TERMINAL_INTERVAL
        } else {
            PLAIN_INTERVAL
        };
        Self::with_writer(mode, start_step, total_steps, out, terminal, interval)
    }

    /// A display writing to `out`; `terminal` selects `\r` redraws, and
    /// `interval` is the least time between outputs (JSON lines are never
    /// throttled).
    pub fn with_writer(
        mode: ProgressMode,
        start_step: u64,
        total_steps: u64,
        out: Box<dyn Write + Send>,
        terminal: bool,
        interval: Duration,
    ) -> Self {
        Progress {
            mode,
            out,
            terminal,
            total_steps,
            start_step,
            started: Instant::now(),
            last_shown: None,
            interval,
            step: start_step,
            success_rate: None,
            ep_rew_mean: None,
            line_open: false,
        }
    }

    /// The current numbers.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let elapsed = self.started.elapsed().as_secs_f64();
        let done_here = self.step.saturating_sub(self.start_step);
        let steps_per_s = (elapsed > 0.0 && done_here > 0).then(|| done_here as f64 / elapsed);
        let eta_s = steps_per_s.map(|r| self.total_steps.saturating_sub(self.step) as f64 / r);
        ProgressSnapshot {
            step: self.step,
            total_steps: self.total_steps,
            steps_per_s,
            eta_s,
            success_rate: self.success_rate,
            ep_rew_mean: self.ep_rew_mean,
        }
    }

    /// Records the step and any of `rollout/success_rate` and
    /// `rollout/ep_rew_mean` in `metrics`, and shows them if due.
    pub fn update(&mut self, step: u64, metrics: &Metrics) {
        self.step = step;
        if let Some(&v) = metrics.get(keys::SUCCESS_RATE) {
            self.success_rate = Some(v);
        }
        if let Some(&v) = metrics.get(keys::EP_REW_MEAN) {
            self.ep_rew_mean = Some(v);
        }
        let due = match self.last_shown {
            None => true,
            Some(t) => self.mode == ProgressMode::JsonLines || t.elapsed() >= self.interval,
        };
        if due {
            self.show();
        }
    }

    /// Prints a message on its own line without garbling the bar.
    pub fn note(&mut self, message: &str) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::JsonLines => {
                let line = json!({"step": self.step, "note": message});
                let _ = writeln!(self.out, "{line}");
                let _ = self.out.flush();
            }
            ProgressMode::Bar => {
                self.end_line();
                let _ = writeln!(self.out, "{message}");
                let _ = self.out.flush();
            }
        }
    }

    /// Shows the final numbers and ends the line.
    pub fn finish(&mut self) {
        self.show();
        self.end_line();
    }

    fn end_line(&mut self) {
        if self.line_open {
            let _ = writeln!(self.out);
            self.line_open = false;
        }
    }

    /// Writes the current numbers. Display errors (a closed pipe) are ignored
    /// on purpose: progress must never stop training.
    fn show(&mut self) {
        self.last_shown = Some(Instant::now());
        let snap = self.snapshot();
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::JsonLines => {
                let _ = writeln!(self.out, "{}", snap.to_json());
            }
            ProgressMode::Bar if self.terminal => {
                // `\x1b[K` clears what a longer previous line left behind.
                let _ = write!(self.out, "\r{}\x1b[K", snap.format_line(24));
                self.line_open = true;
            }
            ProgressMode::Bar => {
                let _ = writeln!(self.out, "{}", snap.format_line(24));
            }
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_every_number() {
        let snap = ProgressSnapshot {
            step: 40_960,
            total_steps: 102_400,
            steps_per_s: Some(8211.4),
            eta_s: Some(7.48),
            success_rate: Some(0.875),
            ep_rew_mean: Some(123.4),
        };
        assert_eq!(
            snap.format_line(20),
            "[########------------]  40.0% 40,960/102,400 steps | 8,211 steps/s | ETA 0:00:07 | success 87.5% | return 123.40"
        );
    }
}
