//! `hlynr compare`: puts runs side by side: which config keys differ, what
//! each run achieved, and their learning curves. The summaries, tables and
//! plots live in `hlynr_rl::compare`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use hlynr_rl::compare::{
    RunSummary, available_metrics, default_metric, learning_curves_svg, render_table_markdown,
    return_metric, to_json,
};

/// Arguments of `hlynr compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run directories (`runs/<name>-<time>`); two or more show config differences.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub run_dirs: Vec<PathBuf>,
    /// Writes DIR/compare.md, DIR/compare.json and DIR/curves_<metric>.svg
    /// (plus the return curve).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Metric key to plot (default: eval/success_rate, else
    /// rollout/success_rate, else the return).
    #[arg(long, value_name = "KEY")]
    pub metric: Option<String>,
    /// Prints JSON instead of the Markdown tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hlynr compare`.
pub fn run(args: &CompareArgs) -> Result<()> {
    let runs = load_runs(&args.run_dirs)?;
    let metric = match &args.metric {
        Some(m) => {
            let known = available_metrics(&runs);
            if !known.iter().any(|k| k == m) {
                bail!(
                    "--metric `{m}` is not logged by any of the runs; logged keys: {}",
                    known.join(", ")
                );
            }
            m.clone()
        }
        None => default_metric(&runs).to_string(),
    };
    let markdown = render_table_markdown(&runs);
    // `{:#}` is serde_json's pretty form.
    let json = format!("{:#}\n", to_json(&runs));
    if args.json {
        print!("{json}");
    } else {
        print!("{markdown}");
    }
    if let Some(dir) = &args.out {
        let written = write_outputs(dir, &runs, &metric, &markdown, &json)?;
        for path in written {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// Summarises every run; the error names the directory that failed.
fn load_runs(dirs: &[PathBuf]) -> Result<Vec<RunSummary>> {
    dirs.iter()
        .map(|d| RunSummary::load(d).with_context(|| format!("cannot compare run {}", d.display())))
        .collect()
}

/// `curves_<metric>.svg` with `/` and other non-name characters replaced.
fn curves_file_name(metric: &str) -> String {
    let safe: String = metric
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("curves_{safe}.svg")
}

/// Writes the report files into `dir` (created if needed); returns their paths.
fn write_outputs(
    dir: &Path,
    runs: &[RunSummary],
    metric: &str,
    markdown: &str,
    json: &str,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files: Vec<(PathBuf, String)> = vec![
        (
            dir.join("compare.md"),
            format!("# Run comparison\n\n{markdown}"),
        ),
        (dir.join("compare.json"), json.to_string()),
        (
            dir.join(curves_file_name(metric)),
            learning_curves_svg(runs, metric),
        ),
    ];
    let ret = return_metric(runs);
    if ret != metric {
        files.push((
            dir.join(curves_file_name(ret)),
            learning_curves_svg(runs, ret),
        ));
    }
    let mut written = Vec::with_capacity(files.len());
    for (path, text) in files {
        hlynr_nn::io::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_keys_become_safe_file_names() {
        assert_eq!(
            curves_file_name("eval/success_rate"),
            "curves_eval_success_rate.svg"
        );
        assert_eq!(curves_file_name("a b/../c"), "curves_a_b_.._c.svg");
    }
}
