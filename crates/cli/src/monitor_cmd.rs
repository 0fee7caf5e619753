//! `hlynr monitor`: watches a run from another terminal. Every interval it
//! re-reads the run directory and redraws the frame of
//! `hlynr_rl::monitor::render_frame`; it exits when the run records a final
//! status, on Ctrl-C, or after one frame with `--once`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use hlynr_rl::metrics::{MetricsLog, read_metrics};
use hlynr_rl::monitor::{RunInfo, render_frame};
use hlynr_rl::run::METRICS_FILE;
use hlynr_rl::signals::StopSignal;

/// ANSI: cursor to the top-left corner, then clear the screen.
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

/// Frame width when neither `--width` nor `$COLUMNS` gives one.
const DEFAULT_WIDTH: usize = 100;

/// Arguments of `hlynr monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The run directory (`runs/<name>-<time>`).
    pub run_dir: PathBuf,
    /// Seconds between redraws.
    #[arg(long, default_value_t = 2.0, value_name = "SECS", value_parser = parse_interval)]
    pub interval: f64,
    /// Prints one frame (without clearing the screen) and exits.
    #[arg(long)]
    pub once: bool,
    /// Frame width in characters (default: $COLUMNS, else 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(40..=1000))]
    pub width: Option<u64>,
}

fn parse_interval(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.1..=3600.0).contains(&v) {
        return Err(format!("{v} s is outside 0.1..=3600 s"));
    }
    Ok(v)
}

/// Runs `hlynr monitor`.
pub fn run(args: &MonitorArgs) -> Result<()> {
    if !args.run_dir.is_dir() {
        bail!(
            "{}: not a directory (expected a run directory)",
            args.run_dir.display()
        );
    }
    let width = args.width.map_or_else(terminal_width, |w| w as usize);
    if args.once {
        let (log, info) = read_run(&args.run_dir)?;
        print!("{}", render_frame(&log, &info, width));
        return Ok(());
    }
    let stop = StopSignal::install()?;
    let clear = std::io::stdout().is_terminal();
    let interval = Duration::from_secs_f64(args.interval);
    loop {
        let (log, info) = read_run(&args.run_dir)?;
        let frame = render_frame(&log, &info, width);
        let mut out = std::io::stdout().lock();
        if clear {
            out.write_all(CLEAR_SCREEN.as_bytes())?;
        }
        out.write_all(frame.as_bytes())?;
        if !clear {
            out.write_all(b"\n")?;
        }
        out.flush()?;
        drop(out);
        if info.finished() {
            return Ok(());
        }
        let until = Instant::now() + interval;
        while Instant::now() < until {
            if stop.stop_requested() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The run's info and metrics. A run that has not written `metrics.jsonl`
/// yet shows as waiting rather than failing.
fn read_run(run_dir: &Path) -> Result<(MetricsLog, RunInfo)> {
    let info =
        RunInfo::read(run_dir).with_context(|| format!("cannot monitor {}", run_dir.display()))?;
    let path = run_dir.join(METRICS_FILE);
    let log = if path.is_file() {
        read_metrics(&path).with_context(|| format!("cannot monitor {}", run_dir.display()))?
    } else {
        MetricsLog::default()
    };
    Ok((log, info))
}

/// `$COLUMNS` when set to a usable width, else [`DEFAULT_WIDTH`].
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| (40..=1000).contains(w))
        .unwrap_or(DEFAULT_WIDTH)
}
