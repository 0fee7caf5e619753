//! hlynr-racing: a top-down racing simulator modelled on what tmrl exposes
//! for TrackMania, fast enough to train camera-frame agents on a laptop.
//!
//! - [`track`]: shipped and procedural closed tracks (train and held-out
//!   sets), projection onto the reference line;
//! - [`car`]: a dynamic bicycle with engine, gears, rpm and saturating tyres;
//! - [`raster`], [`camera`], [`lidar`]: the track painted once on a grid,
//!   an egocentric greyscale camera and a wall-distance LIDAR reading it;
//! - [`env`]: the task at 20 Hz with tmrl's reward (progress, step penalty,
//!   failure countdown, lap bonus);
//! - [`driver`]: the scripted pure-pursuit driver, the baseline.

pub mod camera;
pub mod car;
pub mod driver;
pub mod env;
pub mod lidar;
pub mod raster;
pub mod recording;
pub mod track;

pub use driver::{PURE_PURSUIT, PurePursuit};
pub use env::{ActionMode, ObservationMode, RacingConfig, RacingEnv};
