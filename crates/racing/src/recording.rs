//! Recording an episode for people to watch: the car's path, the camera
//! frames the policy saw, and top-down views that follow the car.

use hlynr_env::{Env, EnvError, Info, ObsMut, Policy, PolicyInput};

use crate::env::{ObservationMode, RacingConfig, RacingEnv};
use crate::raster::TrackRaster;

/// One recorded episode.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// The track's name.
    pub track: String,
    /// Car position (m) and heading (rad) after the reset and every step.
    pub path: Vec<[f64; 3]>,
    /// The camera image at the same instants (`width * height` bytes each).
    pub camera: Vec<Vec<u8>>,
    /// Camera image size (pixels).
    pub camera_size: (usize, usize),
    /// The final step's `info` (success, lap time, wall hits, ...).
    pub final_info: Info,
    /// Sum of rewards.
    pub episode_return: f64,
}

impl Recording {
    /// The episode completed its lap.
    pub fn lap(&self) -> bool {
        self.final_info.is_success == Some(true)
    }

    /// Lap time (s), when it did.
    pub fn lap_time_s(&self) -> Option<f64> {
        self.final_info.get("lap_time_s")
    }
}

/// Runs `policy` (acting on the env's own observations, one frame at a
/// time) for one episode of `config` reset with `seed`, recording it.
pub fn record(
    config: &RacingConfig,
    policy: &mut dyn Policy,
    seed: u64,
) -> Result<Recording, EnvError> {
    let mut env = RacingEnv::new(config)?;
    let space = env.observation_space().clone();
    let (mut values, mut bytes) = (vec![0.0f32; space.flat_dim()], vec![0u8; space.byte_dim()]);
    let mut view = vec![0.0; RacingEnv::VIEW_DIM];
    let mut action = vec![0.0f32; env.action_space().flat_dim()];
    let mut info = Info::default();
    env.reset(Some(seed), ObsMut::new(&mut values, &mut bytes), &mut info)?;
    let c = &config.camera;
    let mut rec = Recording {
        track: env.track().name().to_string(),
        camera_size: (c.width, c.height),
        ..Recording::default()
    };
    let mut frame = vec![0u8; c.width * c.height];
    let mut snap = |env: &RacingEnv, rec: &mut Recording, bytes: &[u8]| {
        let car = env.car();
        rec.path.push([car.x_m, car.y_m, car.heading_rad]);
        if config.observation == ObservationMode::Camera {
            rec.camera.push(bytes.to_vec());
        } else {
            env.render_camera(&mut frame);
            rec.camera.push(frame.clone());
        }
    };
    snap(&env, &mut rec, &bytes);
    loop {
        env.write_controller_view(&mut view);
        let input = PolicyInput {
            n: 1,
            obs: &values,
            obs_bytes: &bytes,
            controller_view: &view,
        };
        policy
            .act(&input, true, &mut action)
            .map_err(|e| EnvError::invalid("recording", e))?;
        let step = env.step(&action, ObsMut::new(&mut values, &mut bytes), &mut info)?;
        rec.episode_return += step.reward;
        snap(&env, &mut rec, &bytes);
        if step.terminated || step.truncated {
            rec.final_info = info;
            return Ok(rec);
        }
    }
}

/// A north-up view `size` pixels square, `m_per_px` metres a pixel,
/// centred on the car at `(x, y)`, with the car drawn as a white box (4.4 m
/// by 2 m) with a black rim, turned to `heading_rad`. Row 0 is the top
/// (north).
pub fn top_down(
    raster: &TrackRaster,
    x: f64,
    y: f64,
    heading_rad: f64,
    size: usize,
    m_per_px: f64,
    out: &mut [u8],
) {
    let half = size as f64 / 2.0;
    let (s, c) = heading_rad.sin_cos();
    for (row, pixels) in out.chunks_exact_mut(size).enumerate() {
        let wy = y + (half - row as f64 - 0.5) * m_per_px;
        raster.sample_row(x + (0.5 - half) * m_per_px, wy, m_per_px, 0.0, pixels);
        for (col, p) in pixels.iter_mut().enumerate() {
            let (dx, dy) = ((col as f64 + 0.5 - half) * m_per_px, wy - y);
            let (along, across) = ((dx * c + dy * s).abs(), (-dx * s + dy * c).abs());
            if along <= 2.2 && across <= 1.0 {
                *p = 255;
            } else if along <= 2.2 + m_per_px && across <= 1.0 + m_per_px {
                *p = 0;
            }
        }
    }
}
