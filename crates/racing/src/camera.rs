//! The camera that rides with the car: a pinhole camera a little behind and
//! above the car, looking along its heading and pitched down, rendering the
//! painted ground (see [`crate::raster`]) as greyscale pixels.
//!
//! The ground is a plane, so every image row below the horizon meets it on a
//! straight line whose points are evenly spaced across the row: a row is
//! rendered by stepping through the grid from its first pixel's ground point
//! (the classic floor-casting renderer). Rows above the horizon, and ground
//! farther than `range_m`, are sky.

use serde::{Deserialize, Serialize};

use crate::raster::{TrackRaster, shade};

/// Camera placement and image size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    /// Image width and height (pixels).
    pub width: usize,
    pub height: usize,
    /// Horizontal field of view (degrees).
    pub fov_deg: f64,
    /// Height above the ground (m).
    pub height_m: f64,
    /// How far behind the car's centre the camera rides (m).
    pub behind_m: f64,
    /// Pitch below the horizon (degrees).
    pub pitch_deg: f64,
    /// Ground beyond this forward distance is drawn as sky (m).
    pub range_m: f64,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            width: 64,
            height: 64,
            fov_deg: 90.0,
            height_m: 3.0,
            behind_m: 5.0,
            pitch_deg: 12.0,
            range_m: 150.0,
        }
    }
}

impl CameraConfig {
    /// Checks the values, naming the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1024).contains(&self.width) || !(1..=1024).contains(&self.height) {
            return Err(format!(
                "camera width and height must lie in [1, 1024], got {}x{}",
                self.width, self.height
            ));
        }
        for (k, v, lo, hi) in [
            ("fov_deg", self.fov_deg, 1.0, 170.0),
            ("height_m", self.height_m, 0.1, 100.0),
            ("behind_m", self.behind_m, 0.0, 100.0),
            ("pitch_deg", self.pitch_deg, 0.0, 89.0),
            ("range_m", self.range_m, 1.0, 10_000.0),
        ] {
            if !(v >= lo && v <= hi) {
                return Err(format!("camera.{k} must lie in [{lo}, {hi}], got {v}"));
            }
        }
        Ok(())
    }
}

/// Where one image row meets the ground, relative to the camera.
#[derive(Clone, Copy, Debug)]
struct RowRay {
    /// Forward distance of the row's ground line (m); `None` for sky.
    forward_m: Option<f64>,
    /// Lateral metres per unit of normalised image x.
    lateral_per_x: f64,
}

/// A camera with its per-row geometry precomputed.
#[derive(Clone, Debug)]
pub struct Camera {
    config: CameraConfig,
    rows: Vec<RowRay>,
    /// Normalised image x of the first column's centre, and per column.
    x0: f64,
    dx: f64,
}

impl Camera {
    /// A camera of `config` (validated).
    pub fn new(config: &CameraConfig) -> Result<Self, String> {
        config.validate()?;
        let (w, h) = (config.width as f64, config.height as f64);
        let focal = (w / 2.0) / (config.fov_deg.to_radians() / 2.0).tan();
        let (sp, cp) = config.pitch_deg.to_radians().sin_cos();
        let rows = (0..config.height)
            .map(|v| {
                // Normalised image y, positive downwards.
                let y = (v as f64 + 0.5 - h / 2.0) / focal;
                let down = sp + y * cp;
                if down <= 1e-6 {
                    return RowRay {
                        forward_m: None,
                        lateral_per_x: 0.0,
                    };
                }
                let t = config.height_m / down;
                let forward = t * (cp - y * sp);
                RowRay {
                    forward_m: (forward <= config.range_m).then_some(forward),
                    lateral_per_x: t,
                }
            })
            .collect();
        Ok(Self {
            config: config.clone(),
            rows,
            x0: (0.5 - w / 2.0) / focal,
            dx: 1.0 / focal,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CameraConfig {
        &self.config
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.config.width * self.config.height
    }

    /// Renders the view of a car at `(x, y)` heading `heading_rad` into
    /// `out` (`width * height` bytes, row 0 at the top).
    pub fn render(&self, raster: &TrackRaster, x: f64, y: f64, heading_rad: f64, out: &mut [u8]) {
        let (s, c) = heading_rad.sin_cos();
        let (fwd, right) = ([c, s], [s, -c]);
        let cam = [
            x - self.config.behind_m * fwd[0],
            y - self.config.behind_m * fwd[1],
        ];
        for (row, pixels) in self
            .rows
            .iter()
            .zip(out.chunks_exact_mut(self.config.width))
        {
            let Some(forward) = row.forward_m else {
                pixels.fill(shade::SKY);
                continue;
            };
            let lat0 = self.x0 * row.lateral_per_x;
            let step = self.dx * row.lateral_per_x;
            raster.sample_row(
                cam[0] + forward * fwd[0] + lat0 * right[0],
                cam[1] + forward * fwd[1] + lat0 * right[1],
                step * right[0],
                step * right[1],
                pixels,
            );
        }
    }
}
