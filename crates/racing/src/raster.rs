//! The track painted onto a grid once, so that the camera and the LIDAR read
//! a cell per pixel or per probe instead of searching the reference line.
//!
//! Two grids of bytes share one geometry: `shade` (what the camera sees:
//! tarmac, a dashed centre line, a chequered start line, striped kerbs at
//! the walls, chequered grass beyond) and `clearance` (distance from the
//! cell to the nearest wall in [`CLEARANCE_UNIT_M`] units, 0 on and beyond
//! the walls), a lower bound of the free distance in every direction that the
//! LIDAR's probes step by.

use crate::track::{P2, Track};

/// Grid cell size (m).
pub const CELL_M: f64 = 0.5;
/// Unit of the clearance grid (m).
pub const CLEARANCE_UNIT_M: f64 = 0.25;
/// Width of the kerb painted on each wall (m).
const KERB_M: f64 = 1.5;
/// Room painted around the road (m).
const MARGIN_M: f64 = 40.0;

/// Shades of the painted surfaces.
pub mod shade {
    pub const TARMAC: u8 = 105;
    pub const CENTRE_LINE: u8 = 200;
    pub const KERB_LIGHT: u8 = 235;
    pub const KERB_DARK: u8 = 45;
    pub const GRASS_LIGHT: u8 = 80;
    pub const GRASS_DARK: u8 = 62;
    pub const START_LIGHT: u8 = 245;
    pub const START_DARK: u8 = 15;
    /// Sky and fog beyond the camera's range.
    pub const SKY: u8 = 190;
}

/// A track painted on a grid.
#[derive(Clone, Debug)]
pub struct TrackRaster {
    origin: P2,
    width: usize,
    height: usize,
    shade: Vec<u8>,
    clearance: Vec<u8>,
}

impl TrackRaster {
    /// Paints `track`.
    pub fn new(track: &Track) -> Self {
        let (lo, hi) = track.bounds(MARGIN_M);
        let width = ((hi[0] - lo[0]) / CELL_M).ceil() as usize + 1;
        let height = ((hi[1] - lo[1]) / CELL_M).ceil() as usize + 1;
        let mut shade = vec![0u8; width * height];
        for (iy, row) in shade.chunks_exact_mut(width).enumerate() {
            for (ix, c) in row.iter_mut().enumerate() {
                // 5 m grass squares.
                let (gx, gy) = (ix / 10, iy / 10);
                *c = if (gx + gy) % 2 == 0 {
                    shade::GRASS_LIGHT
                } else {
                    shade::GRASS_DARK
                };
            }
        }
        // Distance to the line and arc length of the nearest point, for the
        // cells near the road.
        let mut best = vec![(f32::INFINITY, 0.0f32, 0.0f32); width * height];
        let points = track.points();
        let m = points.len();
        let spacing = track.spacing_m();
        let reach = track.half_width_m() + KERB_M + 1.0;
        let r_cells = (reach / CELL_M).ceil() as isize + 2;
        for i in 0..m {
            let (a, b) = (points[i], points[(i + 1) % m]);
            let seg = [b[0] - a[0], b[1] - a[1]];
            let len2 = (seg[0] * seg[0] + seg[1] * seg[1]).max(1e-12);
            let cx = ((a[0] - lo[0]) / CELL_M) as isize;
            let cy = ((a[1] - lo[1]) / CELL_M) as isize;
            for iy in (cy - r_cells).max(0)..(cy + r_cells).min(height as isize) {
                for ix in (cx - r_cells).max(0)..(cx + r_cells).min(width as isize) {
                    let p = [
                        lo[0] + (ix as f64 + 0.5) * CELL_M,
                        lo[1] + (iy as f64 + 0.5) * CELL_M,
                    ];
                    let rel = [p[0] - a[0], p[1] - a[1]];
                    let f = ((rel[0] * seg[0] + rel[1] * seg[1]) / len2).clamp(0.0, 1.0);
                    let d = [rel[0] - f * seg[0], rel[1] - f * seg[1]];
                    let dist = (d[0] * d[0] + d[1] * d[1]).sqrt();
                    let lateral = seg[0] * rel[1] - seg[1] * rel[0];
                    let cell = &mut best[iy as usize * width + ix as usize];
                    if (dist as f32) < cell.0 {
                        *cell = (
                            dist as f32,
                            ((i as f64 + f) * spacing) as f32,
                            lateral.signum() as f32,
                        );
                    }
                }
            }
        }
        let hw = track.half_width_m();
        let mut clearance = vec![0u8; width * height];
        for (k, &(dist, s, side)) in best.iter().enumerate() {
            let (dist, s) = (f64::from(dist), f64::from(s));
            if dist > hw + KERB_M {
                continue;
            }
            clearance[k] = ((hw - dist) / CLEARANCE_UNIT_M).clamp(0.0, 255.0) as u8;
            shade[k] = if dist > hw {
                if (s / 3.0).floor() as i64 % 2 == 0 {
                    shade::KERB_LIGHT
                } else {
                    shade::KERB_DARK
                }
            } else if s < 3.0 {
                let across = ((dist * f64::from(side) + hw) / 1.5).floor() as i64;
                if (across + (s / 1.5).floor() as i64) % 2 == 0 {
                    shade::START_LIGHT
                } else {
                    shade::START_DARK
                }
            } else if dist < 0.3 && (s / 8.0).floor() as i64 % 2 == 0 {
                shade::CENTRE_LINE
            } else {
                shade::TARMAC
            };
        }
        Self {
            origin: lo,
            width,
            height,
            shade,
            clearance,
        }
    }

    /// World coordinates (m) of the grid's corner.
    pub fn origin(&self) -> P2 {
        self.origin
    }

    /// Grid columns and rows.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The painted shades, row-major, row 0 at the lowest `y`.
    pub fn shades(&self) -> &[u8] {
        &self.shade
    }

    /// The cell index of world point `p`, if on the grid.
    #[inline]
    pub fn cell(&self, x: f64, y: f64) -> Option<usize> {
        let gx = (x - self.origin[0]) / CELL_M;
        let gy = (y - self.origin[1]) / CELL_M;
        if gx >= 0.0 && gy >= 0.0 && (gx as usize) < self.width && (gy as usize) < self.height {
            Some(gy as usize * self.width + gx as usize)
        } else {
            None
        }
    }

    /// The shade at a world point (grass off the grid).
    #[inline]
    pub fn shade_at(&self, x: f64, y: f64) -> u8 {
        self.cell(x, y).map_or(shade::GRASS_DARK, |k| self.shade[k])
    }

    /// The distance to the nearest wall (m) from a world point, rounded
    /// down to [`CLEARANCE_UNIT_M`]; 0 on and beyond the walls.
    #[inline]
    pub fn clearance_m(&self, x: f64, y: f64) -> f64 {
        self.cell(x, y)
            .map_or(0.0, |k| f64::from(self.clearance[k]) * CLEARANCE_UNIT_M)
    }

    /// Fills one image row: `n` shades sampled from `(x, y)` in steps of
    /// `(dx, dy)` (m), nearest cell, grass off the grid. The walk through the
    /// grid is in 32.32 fixed point: integer adds and shifts per pixel.
    #[inline]
    pub fn sample_row(&self, x: f64, y: f64, dx: f64, dy: f64, out: &mut [u8]) {
        const ONE: f64 = (1u64 << 32) as f64;
        let to_fixed = |v: f64| (v / CELL_M * ONE) as i64;
        let (mut fx, mut fy) = (to_fixed(x - self.origin[0]), to_fixed(y - self.origin[1]));
        let (sx, sy) = (to_fixed(dx), to_fixed(dy));
        let (w, h) = (self.width as u64, self.height as u64);
        for o in out {
            // Negative coordinates wrap to huge unsigned ones: one compare each.
            let (ix, iy) = ((fx >> 32) as u64, (fy >> 32) as u64);
            *o = if ix < w && iy < h {
                self.shade[(iy * w + ix) as usize]
            } else {
                shade::GRASS_DARK
            };
            fx += sx;
            fy += sy;
        }
    }
}
