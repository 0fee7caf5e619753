//! SVG plots for evaluation reports, written by hand (SVG is a short text
//! format and a plotting dependency would dwarf this module).
//!
//! - [`miss_histogram_svg`]: the distribution of a distance metric per policy on
//!   logarithmic bins (misses span centimetres to kilometres), as step outlines
//!   so several policies stay readable on one chart, with the kill radius
//!   marked.
//!
//! The primitives (scales, frames, axes, legends) are public so an
//! environment's crate can draw its own plots with them (interception's
//! engagement plots live in `hlynr-envs`).

use std::fmt::Write as _;

/// Colours for policies (colour-blind-friendly Tableau hues; red is kept for
/// markers).
pub const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
    "#bab0ac",
];

/// Colour of markers (a kill radius) and of whatever a plot shows as the
/// opponent (an interception threat); kept out of the policy palette.
pub const MARKER_COLOUR: &str = "#c0392b";

/// Font attributes of every text element.
const FONT: &str = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";

/// The colour of series `i`.
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Escapes text for SVG element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// "Nice" tick positions (1, 2 or 5 times a power of ten) covering `[lo, hi]`,
/// about `target` of them.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    // The round step whose interval count is closest to the target.
    let intervals = |s: f64| ((hi - lo) / s - target as f64).abs();
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .min_by(|a, b| intervals(*a).total_cmp(&intervals(*b)))
        .unwrap_or(magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A tick label without float noise (`0.30000000000000004` -> `0.3`).
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.0e}");
    }
    let text = format!("{v:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

/// Linear or logarithmic map from data to pixels.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Data range.
    pub lo: f64,
    /// Data range's upper end.
    pub hi: f64,
    /// Pixel position of `lo`.
    pub px_lo: f64,
    /// Pixel position of `hi`.
    pub px_hi: f64,
    /// Logarithmic (positive data) rather than linear.
    pub log: bool,
}

impl Scale {
    /// Pixel position of `v`.
    pub fn map(&self, v: f64) -> f64 {
        let (v, lo, hi) = if self.log {
            (v.max(1e-300).log10(), self.lo.log10(), self.hi.log10())
        } else {
            (v, self.lo, self.hi)
        };
        self.px_lo + (v - lo) / (hi - lo) * (self.px_hi - self.px_lo)
    }
}

/// Rectangle of a plot area in pixels.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

impl Frame {
    /// Right edge.
    pub fn right(&self) -> f64 {
        self.left + self.width
    }
    /// Bottom edge.
    pub fn bottom(&self) -> f64 {
        self.top + self.height
    }
}

/// Opens an SVG document of `width` x `height` pixels on a white background.
pub fn svg_open(out: &mut String, width: f64, height: f64) {
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\">"
    );
    let _ = writeln!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"white\"/>"
    );
}

/// Opens an SVG document with `title` centred at its top, in bold.
pub fn svg_titled(out: &mut String, width: f64, height: f64, title: &str) {
    svg_open(out, width, height);
    text(
        out,
        width / 2.0,
        28.0,
        16.0,
        "middle",
        "font-weight=\"bold\"",
        title,
    );
}

/// A text element at `(x, y)`; `extra` holds further attributes.
pub fn text(out: &mut String, x: f64, y: f64, size: f64, anchor: &str, extra: &str, content: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" {FONT} {extra}>{}</text>",
        escape(content)
    );
}

/// A polyline through `points`; `extra` holds further attributes.
pub fn polyline(out: &mut String, points: &[(f64, f64)], stroke: &str, width: f64, extra: &str) {
    if points.is_empty() {
        return;
    }
    let mut d = String::new();
    for (x, y) in points {
        let _ = write!(d, "{x:.1},{y:.1} ");
    }
    let _ = writeln!(
        out,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{width}\" \
         stroke-linejoin=\"round\" {extra}/>",
        d.trim_end()
    );
}

/// One axis of a panel: its data-to-pixel map, tick positions and label.
#[derive(Clone, Copy, Debug)]
pub struct Axis<'a> {
    /// Data-to-pixel map.
    pub scale: &'a Scale,
    /// Tick positions in data units.
    pub ticks: &'a [f64],
    /// Axis label.
    pub label: &'a str,
}

/// Frame, grid, ticks and axis labels of one panel.
pub fn axes(out: &mut String, frame: Frame, x: Axis<'_>, y: Axis<'_>) {
    let Axis {
        scale: x,
        ticks: x_ticks,
        label: x_label,
    } = x;
    let Axis {
        scale: y,
        ticks: y_ticks,
        label: y_label,
    } = y;
    for &t in x_ticks {
        let px = x.map(t);
        let _ = writeln!(
            out,
            "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#e4e4e4\"/>",
            frame.top,
            frame.bottom()
        );
        text(
            out,
            px,
            frame.bottom() + 18.0,
            12.0,
            "middle",
            "",
            &tick_label(t),
        );
    }
    for &t in y_ticks {
        let py = y.map(t);
        let _ = writeln!(
            out,
            "<line x1=\"{:.1}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#e4e4e4\"/>",
            frame.left,
            frame.right()
        );
        text(
            out,
            frame.left - 6.0,
            py + 4.0,
            12.0,
            "end",
            "",
            &tick_label(t),
        );
    }
    let _ = writeln!(
        out,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#555\"/>",
        frame.left, frame.top, frame.width, frame.height
    );
    text(
        out,
        frame.left + frame.width / 2.0,
        frame.bottom() + 40.0,
        13.0,
        "middle",
        "",
        x_label,
    );
    let cx = frame.left - 52.0;
    let cy = frame.top + frame.height / 2.0;
    text(
        out,
        cx,
        cy,
        13.0,
        "middle",
        &format!("transform=\"rotate(-90 {cx:.1} {cy:.1})\""),
        y_label,
    );
}

/// Approximate rendered width of `label` at 12 px (for laying out legends).
fn label_width(label: &str) -> f64 {
    7.0 * label.chars().count() as f64
}

/// One legend entry: a line sample (colour, dashed) and its label.
pub type LegendEntry = (&'static str, bool, String);

fn legend_sample(out: &mut String, x: f64, y: f64, entry: &LegendEntry) {
    let (stroke, dashed, label) = entry;
    let dash = if *dashed {
        "stroke-dasharray=\"6 3\""
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\" \
         stroke-width=\"3\" {dash}/>",
        x,
        y - 4.0,
        x + 24.0,
        y - 4.0
    );
    text(out, x + 30.0, y, 12.0, "start", "", label);
}

/// A vertical legend box with its top-left corner at (`x0`, `y0`), drawn
/// outside the plot area so it never hides data.
fn legend_column(out: &mut String, x0: f64, y0: f64, entries: &[LegendEntry]) {
    if entries.is_empty() {
        return;
    }
    let longest = entries
        .iter()
        .map(|e| label_width(&e.2))
        .fold(0.0, f64::max);
    let width = 44.0 + longest;
    let height = 8.0 + 18.0 * entries.len() as f64;
    let _ = writeln!(
        out,
        "<rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" \
         fill=\"white\" stroke=\"#999\"/>"
    );
    for (i, entry) in entries.iter().enumerate() {
        legend_sample(out, x0 + 6.0, y0 + 16.0 + 18.0 * i as f64, entry);
    }
}

/// A legend laid out in rows from (`x0`, `y0`), wrapping at `max_x`; returns
/// the y of the last row.
pub fn legend_rows(out: &mut String, x0: f64, y0: f64, max_x: f64, entries: &[LegendEntry]) -> f64 {
    let (mut x, mut y) = (x0, y0);
    for entry in entries {
        let w = 30.0 + label_width(&entry.2) + 24.0;
        if x > x0 && x + w > max_x {
            x = x0;
            y += 20.0;
        }
        legend_sample(out, x, y, entry);
        x += w;
    }
    y
}

/// One policy's values for a histogram.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSeries {
    /// Legend label.
    pub label: String,
    /// Values (non-finite ones are skipped; values at or below the lowest
    /// bin edge fall into the first bin).
    pub values: Vec<f64>,
}

/// Histogram of a positive quantity (a miss distance) on logarithmic bins,
/// `bins_per_decade` per power of ten, one step outline per series, the y axis
/// in percent of each series' episodes so policies with different episode
/// counts compare. `marker` draws a labelled vertical line (the kill radius).
pub fn miss_histogram_svg(
    title: &str,
    x_label: &str,
    series: &[HistogramSeries],
    marker: Option<(f64, &str)>,
    bins_per_decade: usize,
) -> String {
    let bins_per_decade = bins_per_decade.max(1);
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
    };
    let smallest_positive = finite().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let largest = finite().fold(f64::NEG_INFINITY, f64::max);
    let marker_value = marker.map(|m| m.0).filter(|v| v.is_finite() && *v > 0.0);
    let (mut lo_decade, mut hi_decade) = if smallest_positive.is_finite() {
        (
            smallest_positive.log10().floor() as i32,
            largest.max(smallest_positive).log10().floor() as i32 + 1,
        )
    } else {
        (-1, 2)
    };
    if let Some(m) = marker_value {
        lo_decade = lo_decade.min(m.log10().floor() as i32);
        hi_decade = hi_decade.max(m.log10().floor() as i32 + 1);
    }
    let n_bins = (hi_decade - lo_decade) as usize * bins_per_decade;
    let edge = |i: usize| 10f64.powf(lo_decade as f64 + i as f64 / bins_per_decade as f64);
    let lo_edge = edge(0);
    let hi_edge = edge(n_bins);

    let mut percentages: Vec<Vec<f64>> = Vec::with_capacity(series.len());
    for s in series {
        let mut counts = vec![0u64; n_bins];
        let mut total = 0u64;
        for v in s.values.iter().copied().filter(|v| v.is_finite()) {
            let bin = if v <= lo_edge {
                0
            } else {
                let b = ((v.log10() - lo_decade as f64) * bins_per_decade as f64).floor();
                (b.max(0.0) as usize).min(n_bins - 1)
            };
            counts[bin] += 1;
            total += 1;
        }
        percentages.push(
            counts
                .iter()
                .map(|&c| {
                    if total == 0 {
                        0.0
                    } else {
                        100.0 * c as f64 / total as f64
                    }
                })
                .collect(),
        );
    }
    let y_max_data = percentages
        .iter()
        .flatten()
        .copied()
        .fold(0.0f64, f64::max)
        .max(1.0);
    let y_ticks = nice_ticks(0.0, y_max_data * 1.08, 5);
    let y_max = y_ticks
        .last()
        .copied()
        .unwrap_or(100.0)
        .max(y_max_data * 1.08);

    let entries: Vec<LegendEntry> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (colour(i), false, s.label.clone()))
        .collect();
    let legend_width = 60.0
        + entries
            .iter()
            .map(|e| label_width(&e.2))
            .fold(0.0, f64::max);
    let frame = Frame {
        left: 80.0,
        top: 50.0,
        width: 740.0,
        height: 400.0,
    };
    let (width, height) = (frame.right() + 16.0 + legend_width, 520.0);
    let x = Scale {
        lo: lo_edge,
        hi: hi_edge,
        px_lo: frame.left,
        px_hi: frame.right(),
        log: true,
    };
    let y = Scale {
        lo: 0.0,
        hi: y_max,
        px_lo: frame.bottom(),
        px_hi: frame.top,
        log: false,
    };
    let x_ticks: Vec<f64> = (lo_decade..=hi_decade).map(|d| 10f64.powi(d)).collect();

    let mut out = String::new();
    svg_titled(&mut out, width, height, title);
    axes(
        &mut out,
        frame,
        Axis {
            scale: &x,
            ticks: &x_ticks,
            label: x_label,
        },
        Axis {
            scale: &y,
            ticks: &y_ticks,
            label: "episodes (%)",
        },
    );
    // Minor ticks at 2..9 times each decade help read a log axis.
    for d in lo_decade..hi_decade {
        for m in 2..10 {
            let px = x.map(m as f64 * 10f64.powi(d));
            let _ = writeln!(
                out,
                "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#555\"/>",
                frame.bottom(),
                frame.bottom() - 5.0
            );
        }
    }
    for (i, pct) in percentages.iter().enumerate() {
        let mut points = vec![(x.map(edge(0)), y.map(0.0))];
        for (b, &p) in pct.iter().enumerate() {
            points.push((x.map(edge(b)), y.map(p)));
            points.push((x.map(edge(b + 1)), y.map(p)));
        }
        points.push((x.map(edge(n_bins)), y.map(0.0)));
        let mut d = String::new();
        for (px, py) in &points {
            let _ = write!(d, "{px:.1},{py:.1} ");
        }
        let _ = writeln!(
            out,
            "<polygon points=\"{}\" fill=\"{}\" fill-opacity=\"0.12\" stroke=\"none\"/>",
            d.trim_end(),
            colour(i)
        );
        polyline(&mut out, &points, colour(i), 2.2, "");
    }
    if let (Some(value), Some((_, label))) = (marker_value, marker) {
        let px = x.map(value);
        let _ = writeln!(
            out,
            "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"{MARKER_COLOUR}\" \
             stroke-width=\"2\" stroke-dasharray=\"7 4\"/>",
            frame.top,
            frame.bottom()
        );
        text(
            &mut out,
            px + 5.0,
            frame.top + 16.0,
            12.0,
            "start",
            &format!("fill=\"{MARKER_COLOUR}\""),
            label,
        );
    }
    legend_column(&mut out, frame.right() + 16.0, frame.top, &entries);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks_are_round_and_cover_the_range() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        let t = nice_ticks(-3.2, 7.9, 5);
        assert_eq!(t.first(), Some(&-2.0));
        assert_eq!(t.last(), Some(&6.0));
        assert_eq!(
            nice_ticks(0.0, 0.5, 5),
            vec![0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5]
        );
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(tick_label(2000.0), "2000");
    }

    #[test]
    fn escape_handles_markup_characters() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }

    #[test]
    fn histogram_bins_every_value_once_per_series() {
        let svg = miss_histogram_svg(
            "miss <distance>",
            "miss distance (m)",
            &[
                HistogramSeries {
                    label: "a".into(),
                    values: vec![0.5, 0.5, 5.0, 50.0],
                },
                HistogramSeries {
                    label: "b".into(),
                    values: vec![f64::NAN, 2.0],
                },
            ],
            Some((10.0, "kill radius 10 m")),
            5,
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("miss &lt;distance&gt;"));
        assert!(svg.contains("kill radius 10 m"));
        // One outline per series, plus the legend.
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<polygon").count(), 2);
        // Decade ticks from 0.1 to 100 m.
        for label in [">0.1<", ">1<", ">10<", ">100<"] {
            assert!(svg.contains(label), "{label}");
        }
    }
}
