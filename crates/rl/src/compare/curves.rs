//! Learning curves of several runs in one SVG.

use std::fmt::Write as _;

use crate::eval::plot::{colour, escape, nice_ticks};

use super::summary::*;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_labelled_for_axes() {
        assert_eq!(step_label(250_000.0), "250k");
        assert_eq!(step_label(1_500_000.0), "1.5M");
    }
}
