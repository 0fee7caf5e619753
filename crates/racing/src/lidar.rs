//! The LIDAR: beams fanned across the half-plane ahead of the car (19 from
//! hard left to hard right by default, as tmrl's LIDAR environment), each
//! measuring the distance to the first wall. A beam advances by the
//! clearance grid's free distance at its tip (sphere tracing), which never
//! steps through a wall; it stops within [`crate::raster::CLEARANCE_UNIT_M`]
//! of one.

use crate::raster::{CLEARANCE_UNIT_M, TrackRaster};

/// Probes per beam at most.
const MAX_PROBES: usize = 256;

/// Distances to the walls along `beams` directions spread evenly from
/// `+90` to `-90` degrees off `heading_rad` (left to right), each capped at
/// `range_m`, written into `out`.
pub fn scan(raster: &TrackRaster, x: f64, y: f64, heading_rad: f64, range_m: f64, out: &mut [f64]) {
    let n = out.len();
    for (k, o) in out.iter_mut().enumerate() {
        let offset = if n > 1 {
            std::f64::consts::FRAC_PI_2 - std::f64::consts::PI * k as f64 / (n - 1) as f64
        } else {
            0.0
        };
        let (s, c) = (heading_rad + offset).sin_cos();
        let mut t = 0.0;
        for _ in 0..MAX_PROBES {
            let free = raster.clearance_m(x + t * c, y + t * s);
            if free < CLEARANCE_UNIT_M || t >= range_m {
                break;
            }
            t += free;
        }
        *o = t.min(range_m);
    }
}
