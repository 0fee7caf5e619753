//! Interception's engagement plot: one engagement seen from above (east/north,
//! equal scales so geometry is not distorted) and from the side (ground range
//! from the launch point against altitude), the interceptors of every policy
//! against the threat, with the closest approach marked. Drawn with the SVG
//! primitives of `hlynr_rl::eval::plot`.

use std::fmt::Write as _;

use hlynr_rl::eval::plot::{
    Axis, Frame, LegendEntry, MARKER_COLOUR, Scale, axes, colour, legend_rows, nice_ticks,
    polyline, svg_titled, text,
};

/// Colour of threat trajectories.
pub const THREAT_COLOUR: &str = MARKER_COLOUR;

/// One vehicle pair's path through an engagement.
#[derive(Clone, Debug, PartialEq)]
pub struct TrajectorySeries {
    /// Legend label of the interceptor path (usually the policy name).
    pub label: String,
    /// Interceptor positions, east/north/up (m), one per recorded step.
    pub interceptor_m: Vec<[f64; 3]>,
    /// Threat positions at the same instants (m).
    pub threat_m: Vec<[f64; 3]>,
    /// The env's reported miss distance (m), for the closest-approach label.
    pub miss_distance_m: Option<f64>,
    /// The env's success flag, for the legend.
    pub success: Option<bool>,
}

impl TrajectorySeries {
    /// Index of the recorded instant where the vehicles are closest. The
    /// recording is at decision steps, so the true closest approach (inside a
    /// physics step) may lie between this sample and its neighbours.
    pub fn closest_index(&self) -> Option<usize> {
        self.interceptor_m
            .iter()
            .zip(&self.threat_m)
            .map(|(m, t)| {
                let d = [m[0] - t[0], m[1] - t[1], m[2] - t[2]];
                d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
            })
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }
}

/// Limits of the data with a margin, widened to at least `min_span`.
fn padded(lo: f64, hi: f64, min_span: f64) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let centre = 0.5 * (lo + hi);
    let span = (hi - lo).max(min_span) * 1.08;
    (centre - span / 2.0, centre + span / 2.0)
}

/// Two panels for one engagement: top view (east/north, equal scales) and side
/// view (ground range from the first interceptor's launch point vs altitude).
/// Interceptors are drawn in policy colours, threats in red (dashed); circles
/// mark the start, crosses the closest approach, joined by a thin line.
pub fn trajectory_svg(title: &str, series: &[TrajectorySeries]) -> String {
    let origin = series
        .iter()
        .find_map(|s| s.interceptor_m.first().copied())
        .unwrap_or([0.0; 3]);
    let ground_range =
        |p: &[f64; 3]| ((p[0] - origin[0]).powi(2) + (p[1] - origin[1]).powi(2)).sqrt();
    let all = || {
        series
            .iter()
            .flat_map(|s| s.interceptor_m.iter().chain(&s.threat_m))
    };
    let fold = |f: &dyn Fn(&[f64; 3]) -> f64| {
        all()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (east_lo, east_hi) = fold(&|p| p[0] / 1000.0);
    let (north_lo, north_hi) = fold(&|p| p[1] / 1000.0);
    let (range_lo, range_hi) = fold(&|p| ground_range(p) / 1000.0);
    let (alt_lo, alt_hi) = fold(&|p| p[2] / 1000.0);

    let (width, height) = (1240.0, 640.0);
    let top_frame = Frame {
        left: 80.0,
        top: 60.0,
        width: 520.0,
        height: 440.0,
    };
    let side_frame = Frame {
        left: 700.0,
        top: 60.0,
        width: 510.0,
        height: 440.0,
    };
    // Equal scales in the top view: widen the shorter axis to the frame's aspect.
    let (mut e_lo, mut e_hi) = padded(east_lo, east_hi, 0.1);
    let (mut n_lo, mut n_hi) = padded(north_lo, north_hi, 0.1);
    let km_per_px = ((e_hi - e_lo) / top_frame.width).max((n_hi - n_lo) / top_frame.height);
    let (ec, nc) = (0.5 * (e_lo + e_hi), 0.5 * (n_lo + n_hi));
    e_lo = ec - km_per_px * top_frame.width / 2.0;
    e_hi = ec + km_per_px * top_frame.width / 2.0;
    n_lo = nc - km_per_px * top_frame.height / 2.0;
    n_hi = nc + km_per_px * top_frame.height / 2.0;
    let (r_lo, r_hi) = padded(range_lo.min(0.0), range_hi, 0.1);
    let (a_lo, a_hi) = padded(alt_lo.min(0.0), alt_hi, 0.1);

    let top_x = Scale {
        lo: e_lo,
        hi: e_hi,
        px_lo: top_frame.left,
        px_hi: top_frame.right(),
        log: false,
    };
    let top_y = Scale {
        lo: n_lo,
        hi: n_hi,
        px_lo: top_frame.bottom(),
        px_hi: top_frame.top,
        log: false,
    };
    let side_x = Scale {
        lo: r_lo,
        hi: r_hi,
        px_lo: side_frame.left,
        px_hi: side_frame.right(),
        log: false,
    };
    let side_y = Scale {
        lo: a_lo,
        hi: a_hi,
        px_lo: side_frame.bottom(),
        px_hi: side_frame.top,
        log: false,
    };

    let mut out = String::new();
    svg_titled(&mut out, width, height, title);
    text(
        &mut out,
        top_frame.left + top_frame.width / 2.0,
        50.0,
        13.0,
        "middle",
        "",
        "top view (equal scales)",
    );
    text(
        &mut out,
        side_frame.left + side_frame.width / 2.0,
        50.0,
        13.0,
        "middle",
        "",
        "side view",
    );
    axes(
        &mut out,
        top_frame,
        Axis {
            scale: &top_x,
            ticks: &nice_ticks(e_lo, e_hi, 6),
            label: "east (km)",
        },
        Axis {
            scale: &top_y,
            ticks: &nice_ticks(n_lo, n_hi, 6),
            label: "north (km)",
        },
    );
    axes(
        &mut out,
        side_frame,
        Axis {
            scale: &side_x,
            ticks: &nice_ticks(r_lo, r_hi, 6),
            label: "ground range from launch point (km)",
        },
        Axis {
            scale: &side_y,
            ticks: &nice_ticks(a_lo, a_hi, 6),
            label: "altitude (km)",
        },
    );
    // Ground line in the side view.
    if a_lo < 0.0 {
        let py = side_y.map(0.0);
        let _ = writeln!(
            out,
            "<line x1=\"{:.1}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#8d6e63\" stroke-width=\"1.5\"/>",
            side_frame.left,
            side_frame.right()
        );
    }

    type Project<'a> = (&'a Scale, &'a Scale, &'a dyn Fn(&[f64; 3]) -> (f64, f64));
    let top_project = |p: &[f64; 3]| (p[0] / 1000.0, p[1] / 1000.0);
    let side_project = |p: &[f64; 3]| (ground_range(p) / 1000.0, p[2] / 1000.0);
    let panels: [Project; 2] = [
        (&top_x, &top_y, &top_project),
        (&side_x, &side_y, &side_project),
    ];
    for (sx, sy, project) in panels {
        let to_px = |p: &[f64; 3]| {
            let (a, b) = project(p);
            (sx.map(a), sy.map(b))
        };
        for s in series {
            let threat: Vec<(f64, f64)> = s.threat_m.iter().map(to_px).collect();
            polyline(
                &mut out,
                &threat,
                THREAT_COLOUR,
                2.0,
                "stroke-dasharray=\"7 4\"",
            );
        }
        for (i, s) in series.iter().enumerate() {
            let path: Vec<(f64, f64)> = s.interceptor_m.iter().map(to_px).collect();
            polyline(&mut out, &path, colour(i), 2.2, "");
            for (start, stroke) in [
                (path.first(), colour(i)),
                (threat_first(s, &to_px).as_ref(), THREAT_COLOUR),
            ] {
                if let Some(&(x, y)) = start {
                    let _ = writeln!(
                        out,
                        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4.5\" fill=\"white\" stroke=\"{stroke}\" stroke-width=\"2\"/>"
                    );
                }
            }
            if let Some(k) = s.closest_index() {
                let (mx, my) = to_px(&s.interceptor_m[k]);
                let (tx, ty) = to_px(&s.threat_m[k]);
                let _ = writeln!(
                    out,
                    "<line x1=\"{mx:.1}\" y1=\"{my:.1}\" x2=\"{tx:.1}\" y2=\"{ty:.1}\" stroke=\"#222\" stroke-width=\"1\"/>"
                );
                cross(&mut out, mx, my, colour(i));
            }
        }
    }
    // Legend in rows under both panels, so it never hides a trajectory.
    let mut entries: Vec<LegendEntry> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let outcome = match s.success {
            Some(true) => ", hit",
            Some(false) => ", miss",
            None => "",
        };
        let miss = s.miss_distance_m.map_or(String::new(), |m| {
            format!(" ({} m{outcome})", hlynr_rl::format::number(m))
        });
        entries.push((colour(i), false, format!("{}{}", s.label, miss)));
    }
    entries.push((THREAT_COLOUR, true, "threat".to_string()));
    let last_row = legend_rows(
        &mut out,
        top_frame.left,
        top_frame.bottom() + 72.0,
        width - 20.0,
        &entries,
    );
    text(
        &mut out,
        top_frame.left,
        last_row + 24.0,
        12.0,
        "start",
        "fill=\"#444\"",
        "o start   x closest recorded approach (thin line joins interceptor and threat there); \
         the miss distance is the env's exact closest approach",
    );
    out.push_str("</svg>\n");
    out
}

fn threat_first(
    s: &TrajectorySeries,
    to_px: &dyn Fn(&[f64; 3]) -> (f64, f64),
) -> Option<(f64, f64)> {
    s.threat_m.first().map(to_px)
}

fn cross(out: &mut String, x: f64, y: f64, stroke: &str) {
    let r = 6.0;
    let _ = writeln!(
        out,
        "<path d=\"M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}\" stroke=\"{stroke}\" stroke-width=\"3\"/>",
        x - r,
        y - r,
        x + r,
        y + r,
        x - r,
        y + r,
        x + r,
        y - r
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_index_finds_the_nearest_recorded_pair() {
        let s = TrajectorySeries {
            label: "p".into(),
            interceptor_m: vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]],
            threat_m: vec![[5.0, 0.0, 0.0], [2.0, 0.5, 0.0], [0.0, 0.0, 0.0]],
            miss_distance_m: Some(0.4),
            success: Some(true),
        };
        assert_eq!(s.closest_index(), Some(1));
        let svg = trajectory_svg("engagement", &[s]);
        assert!(svg.contains("east (km)") && svg.contains("altitude (km)"));
        assert!(svg.contains("p (0.4 m, hit)"));
        // Two panels, each with one threat and one interceptor path.
        assert_eq!(svg.matches("<polyline").count(), 4);
    }
}
