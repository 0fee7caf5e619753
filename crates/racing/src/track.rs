//! Tracks: a closed reference line (the centre of the road) sampled every
//! [`SAMPLE_SPACING_M`], with a constant road width and walls at its edges.
//!
//! A track is built from control points through a closed Catmull-Rom spline,
//! resampled at equal arc length. The shipped tracks have names; procedural
//! ones come from a seed, and seeds are split into a training set and a
//! held-out set that never overlap ([`TrackSet`]).

use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

/// Distance between reference-line samples (m).
pub const SAMPLE_SPACING_M: f64 = 1.0;

/// A point or vector in the track plane (m).
pub type P2 = [f64; 2];

/// A closed track.
#[derive(Clone, Debug)]
pub struct Track {
    name: String,
    /// Reference-line samples, `SAMPLE_SPACING_M` apart; the last joins the first.
    points: Vec<P2>,
    /// Unit tangents (direction of travel).
    tangents: Vec<P2>,
    /// Signed curvature (1/m, positive turning left).
    curvature: Vec<f64>,
    half_width_m: f64,
    /// Mean distance between consecutive samples (m).
    spacing_m: f64,
}

/// Where a point lies relative to the reference line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Projection {
    /// Index of the sample the point projects past.
    pub index: usize,
    /// Arc length along the line, in `[0, length)` (m).
    pub s_m: f64,
    /// Signed distance from the line, positive to the left (m).
    pub lateral_m: f64,
}

impl Track {
    /// The track through the closed loop of `control` points (at least 4),
    /// driven in their order, with a road `width_m` wide.
    pub fn from_control_points(name: &str, control: &[P2], width_m: f64) -> Result<Self, String> {
        if control.len() < 4 {
            return Err(format!("track `{name}` needs at least 4 control points"));
        }
        if !(width_m > 2.0 && width_m < 100.0) {
            return Err(format!(
                "track `{name}`: width {width_m} m is outside (2, 100)"
            ));
        }
        // Dense spline samples, then equal-arc-length resampling.
        const PER_SEGMENT: usize = 64;
        let n = control.len();
        let mut dense = Vec::with_capacity(n * PER_SEGMENT);
        for i in 0..n {
            let p = |k: usize| control[(i + k + n - 1) % n];
            let (p0, p1, p2, p3) = (p(0), p(1), p(2), p(3));
            for j in 0..PER_SEGMENT {
                let t = j as f64 / PER_SEGMENT as f64;
                dense.push(catmull_rom(p0, p1, p2, p3, t));
            }
        }
        let mut cumulative = vec![0.0; dense.len() + 1];
        for i in 0..dense.len() {
            cumulative[i + 1] = cumulative[i] + dist(dense[i], dense[(i + 1) % dense.len()]);
        }
        let total = cumulative[dense.len()];
        let samples = (total / SAMPLE_SPACING_M).round().max(8.0) as usize;
        let mut points = Vec::with_capacity(samples);
        let mut seg = 0;
        for k in 0..samples {
            let s = k as f64 * total / samples as f64;
            while cumulative[seg + 1] < s {
                seg += 1;
            }
            let f = (s - cumulative[seg]) / (cumulative[seg + 1] - cumulative[seg]).max(1e-12);
            let (a, b) = (dense[seg], dense[(seg + 1) % dense.len()]);
            points.push([a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])]);
        }
        let m = points.len();
        let tangents: Vec<P2> = (0..m)
            .map(|i| {
                let (a, b) = (points[(i + m - 1) % m], points[(i + 1) % m]);
                normalize([b[0] - a[0], b[1] - a[1]])
            })
            .collect();
        let curvature = (0..m)
            .map(|i| {
                let (a, b) = (tangents[(i + m - 1) % m], tangents[(i + 1) % m]);
                let cross = a[0] * b[1] - a[1] * b[0];
                let dot = a[0] * b[0] + a[1] * b[1];
                cross.atan2(dot) / (2.0 * SAMPLE_SPACING_M * total / samples as f64)
            })
            .collect();
        let spacing_m = (0..m)
            .map(|i| dist(points[i], points[(i + 1) % m]))
            .sum::<f64>()
            / m as f64;
        let track = Self {
            name: name.to_string(),
            points,
            tangents,
            curvature,
            half_width_m: width_m / 2.0,
            spacing_m,
        };
        track.check_drivable()?;
        Ok(track)
    }

    /// Refuses tracks whose road overlaps itself or turns tighter than its
    /// own half width (the inner edge would fold).
    fn check_drivable(&self) -> Result<(), String> {
        let max_k = self.curvature.iter().fold(0.0f64, |a, k| a.max(k.abs()));
        if max_k * self.half_width_m >= 0.9 {
            return Err(format!(
                "track `{}` turns with a radius of {:.1} m, too tight for its {:.1} m half width",
                self.name,
                1.0 / max_k,
                self.half_width_m
            ));
        }
        // Samples far apart along the line must be more than a road width
        // (plus wall room) apart in the plane.
        let m = self.points.len();
        let clearance = 2.0 * self.half_width_m + 6.0;
        let skip = (std::f64::consts::PI * clearance / SAMPLE_SPACING_M).ceil() as usize;
        for i in (0..m).step_by(2) {
            for j in (i + skip..m).step_by(2) {
                if m - j + i < skip {
                    break;
                }
                if dist(self.points[i], self.points[j]) < clearance {
                    return Err(format!(
                        "track `{}` comes within {:.1} m of itself at {:.0} m and {:.0} m",
                        self.name,
                        dist(self.points[i], self.points[j]),
                        i as f64 * self.spacing_m(),
                        j as f64 * self.spacing_m()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The track's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Length of one lap along the reference line (m).
    pub fn length_m(&self) -> f64 {
        self.points.len() as f64 * self.spacing_m()
    }

    /// Exact spacing of the samples (m), within a fraction of a percent of
    /// [`SAMPLE_SPACING_M`].
    pub fn spacing_m(&self) -> f64 {
        self.spacing_m
    }

    /// Half the road width (m): the walls stand this far from the line.
    pub fn half_width_m(&self) -> f64 {
        self.half_width_m
    }

    /// Reference-line samples.
    pub fn points(&self) -> &[P2] {
        &self.points
    }

    /// Unit tangents of the samples.
    pub fn tangents(&self) -> &[P2] {
        &self.tangents
    }

    /// Signed curvature of the samples (1/m, positive left).
    pub fn curvature(&self) -> &[f64] {
        &self.curvature
    }

    /// The sample `k` places after `index`, wrapping.
    pub fn wrap(&self, index: usize, k: isize) -> usize {
        let m = self.points.len() as isize;
        (index as isize + k).rem_euclid(m) as usize
    }

    /// The projection of `p` onto the reference line, searched within
    /// `window` samples of `hint` (a point that moved less than that since
    /// the hint was computed), or over the whole line without a hint.
    pub fn project(&self, p: P2, hint: Option<usize>, window: usize) -> Projection {
        let m = self.points.len();
        let mut best = (f64::INFINITY, 0);
        let mut consider = |i: usize| {
            let d = dist2(p, self.points[i]);
            if d < best.0 {
                best = (d, i);
            }
        };
        match hint {
            Some(h) if 2 * window + 1 < m => {
                for k in -(window as isize)..=window as isize {
                    consider(self.wrap(h, k));
                }
            }
            _ => (0..m).for_each(consider),
        }
        // The nearest sample's segment before or after it.
        let i = best.1;
        let spacing = self.spacing_m;
        let t = self.tangents[i];
        let rel = [p[0] - self.points[i][0], p[1] - self.points[i][1]];
        let along = rel[0] * t[0] + rel[1] * t[1];
        let lateral = -rel[0] * t[1] + rel[1] * t[0];
        let s = (i as f64 * spacing + along).rem_euclid(m as f64 * spacing);
        let index = if along >= 0.0 { i } else { self.wrap(i, -1) };
        Projection {
            index,
            s_m: s,
            lateral_m: lateral,
        }
    }

    /// The reference-line point at arc length `s_m` (wrapping), linearly
    /// interpolated, with the tangent of the sample before it.
    pub fn at(&self, s_m: f64) -> (P2, P2) {
        let m = self.points.len();
        let spacing = self.spacing_m;
        let x = s_m.rem_euclid(self.length_m()) / spacing;
        let i = (x.floor() as usize).min(m - 1);
        let f = x - i as f64;
        let (a, b) = (self.points[i], self.points[(i + 1) % m]);
        (
            [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])],
            self.tangents[i],
        )
    }

    /// The axis-aligned box of the road and its walls, grown by `margin_m`.
    pub fn bounds(&self, margin_m: f64) -> (P2, P2) {
        let grow = self.half_width_m + margin_m;
        let mut lo = [f64::INFINITY; 2];
        let mut hi = [f64::NEG_INFINITY; 2];
        for p in &self.points {
            for k in 0..2 {
                lo[k] = lo[k].min(p[k] - grow);
                hi[k] = hi[k].max(p[k] + grow);
            }
        }
        (lo, hi)
    }
}

fn catmull_rom(p0: P2, p1: P2, p2: P2, p3: P2, t: f64) -> P2 {
    let (t2, t3) = (t * t, t * t * t);
    let mut out = [0.0; 2];
    for k in 0..2 {
        out[k] = 0.5
            * (2.0 * p1[k]
                + (-p0[k] + p2[k]) * t
                + (2.0 * p0[k] - 5.0 * p1[k] + 4.0 * p2[k] - p3[k]) * t2
                + (-p0[k] + 3.0 * p1[k] - 3.0 * p2[k] + p3[k]) * t3);
    }
    out
}

fn dist2(a: P2, b: P2) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

fn dist(a: P2, b: P2) -> f64 {
    dist2(a, b).sqrt()
}

fn normalize(v: P2) -> P2 {
    let n = (v[0] * v[0] + v[1] * v[1]).sqrt().max(1e-12);
    [v[0] / n, v[1] / n]
}

/// One piece of a track drawn as a path: a straight (m) or an arc of a
/// radius (m) through an angle (degrees, positive to the left).
#[derive(Clone, Copy, Debug)]
enum Piece {
    Straight(f64),
    Arc(f64, f64),
}

/// The control points of a closed path drawn from `pieces` (which must
/// turn through +360 degrees in all), every 4 m. The few metres by which a
/// hand-drawn path misses its start are spread evenly along it.
fn drawn(pieces: &[Piece]) -> Vec<P2> {
    const STEP_M: f64 = 4.0;
    let (mut p, mut heading) = ([0.0f64, 0.0], 0.0f64);
    let mut points = vec![p];
    for piece in pieces {
        let (length, turn) = match *piece {
            Piece::Straight(l) => (l, 0.0),
            Piece::Arc(r, deg) => (r * deg.to_radians().abs(), deg.to_radians()),
        };
        let n = (length / STEP_M).ceil().max(1.0) as usize;
        for _ in 0..n {
            // Midpoint heading over each step: exact for arcs up to the chord.
            let dh = turn / n as f64;
            let ds = length / n as f64;
            let mid = heading + dh / 2.0;
            let chord = if dh == 0.0 {
                ds
            } else {
                ds * (dh / 2.0).sin() / (dh / 2.0)
            };
            p = [p[0] + chord * mid.cos(), p[1] + chord * mid.sin()];
            heading += dh;
            points.push(p);
        }
    }
    // The last point should be the first: spread the miss along the path.
    let miss = points.pop().map_or([0.0; 2], |last| last);
    let n = points.len() as f64;
    points
        .iter()
        .enumerate()
        .map(|(i, q)| [q[0] - miss[0] * i as f64 / n, q[1] - miss[1] * i as f64 / n])
        .collect()
}

/// The shipped tracks, by name.
pub const SHIPPED: [&str; 3] = ["oval", "technical", "flow"];

/// A shipped track by name.
pub fn shipped(name: &str) -> Result<Track, String> {
    use Piece::{Arc, Straight as S};
    let (pieces, width): (&[Piece], f64) = match name {
        // Two long straights and two constant-radius ends: speed and braking.
        "oval" => (
            &[S(250.0), Arc(60.0, 180.0), S(250.0), Arc(60.0, 180.0)],
            14.0,
        ),
        // Hairpins, quick direction changes and short straights: braking
        // points and tight turns both ways.
        "technical" => (
            &[
                S(120.0),
                Arc(20.0, 180.0),
                S(40.0),
                Arc(20.0, -90.0),
                S(40.0),
                Arc(25.0, -90.0),
                S(60.0),
                Arc(30.0, 180.0),
                S(95.0),
                Arc(30.0, 90.0),
                S(40.0),
                Arc(20.0, -90.0),
                Arc(20.0, 90.0),
                S(55.0),
                Arc(20.0, 90.0),
            ],
            12.0,
        ),
        // Long sweeping bends of varying radius: carrying speed.
        "flow" => (
            &[
                S(180.0),
                Arc(90.0, 100.0),
                S(60.0),
                Arc(70.0, -60.0),
                Arc(110.0, 140.0),
                S(100.0),
                Arc(60.0, 120.0),
                Arc(90.0, -50.0),
                Arc(80.0, 110.0),
            ],
            14.0,
        ),
        _ => {
            let hint = SHIPPED
                .iter()
                .find(|k| k.starts_with(&name[..name.len().min(2)]))
                .map_or(String::new(), |k| format!("did you mean `{k}`? "));
            return Err(format!(
                "unknown track `{name}`; {hint}(shipped: {})",
                SHIPPED.join(", ")
            ));
        }
    };
    Track::from_control_points(name, &drawn(pieces), width)
}

/// Which procedural tracks a run draws from. Training and held-out seeds
/// come from disjoint ranges, so a policy evaluated on `held_out` has never
/// seen those tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSet {
    /// Seeds `0 .. count`.
    Train,
    /// Seeds `HELD_OUT_BASE .. HELD_OUT_BASE + count`.
    HeldOut,
}

/// First seed of the held-out procedural tracks.
pub const HELD_OUT_BASE: u64 = 1 << 40;

impl TrackSet {
    /// The seed of the `k`-th track of the set.
    pub fn seed(self, k: u64) -> u64 {
        match self {
            TrackSet::Train => k,
            TrackSet::HeldOut => HELD_OUT_BASE + k,
        }
    }
}

/// The procedural track of `seed`: control points around a loop at
/// irregular angles and radii, redrawn (from the same seed's generator)
/// until the track is drivable.
pub fn procedural(seed: u64) -> Track {
    let mut rng = Rng::from_stream(seed, 0x7AC);
    let name = if seed >= HELD_OUT_BASE {
        format!("procedural-heldout-{}", seed - HELD_OUT_BASE)
    } else {
        format!("procedural-{seed}")
    };
    loop {
        let n = 8 + rng.below(7) as usize;
        let radius = rng.uniform_range(110.0, 200.0);
        let width = rng.uniform_range(11.0, 15.0);
        let control: Vec<P2> = (0..n)
            .map(|i| {
                let angle =
                    (i as f64 + rng.uniform_range(-0.3, 0.3)) / n as f64 * std::f64::consts::TAU;
                let r = radius * rng.uniform_range(0.55, 1.0);
                [r * angle.cos() * 1.3, r * angle.sin()]
            })
            .collect();
        if let Ok(track) = Track::from_control_points(&name, &control, width) {
            return track;
        }
    }
}

/// A track by the name it reports: shipped, `procedural-K` or
/// `procedural-heldout-K`.
pub fn named(name: &str) -> Result<Track, String> {
    let parse = |k: &str| {
        k.parse::<u64>()
            .map_err(|_| format!("track `{name}`: procedural tracks are named procedural-<number>"))
    };
    if let Some(k) = name.strip_prefix("procedural-heldout-") {
        return Ok(procedural(TrackSet::HeldOut.seed(parse(k)?)));
    }
    if let Some(k) = name.strip_prefix("procedural-") {
        return Ok(procedural(TrackSet::Train.seed(parse(k)?)));
    }
    shipped(name)
}
