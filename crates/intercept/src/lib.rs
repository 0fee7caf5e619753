//! hlynr-intercept: a radar-guided interception simulator.
//!
//! A 3-DOF point-mass engagement of one interceptor against one threat over flat
//! Earth in the ENU frame, with ISA atmosphere, wind, maneuvering threats, a
//! ground radar and optional seeker, an EKF tracker fed only by detections, and
//! the classical guidance laws as baselines.
//!
//! Comments cite "model section N": the numbered sections of
//! `docs/intercept-model.md`, which describes the model as implemented and
//! which module implements each part.

pub mod atmosphere;
pub mod cpa;
pub mod detection_feed;
pub mod engagement;
pub mod env;
pub mod guidance;
pub mod integrate;
pub mod interceptor;
pub mod linalg;
pub mod observation;
pub mod physics_config;
pub mod policies;
pub mod radar;
pub mod reward;
pub mod scenario;
pub mod seeker;
pub mod sensor_config;
pub mod threat;
pub mod tracker;
pub mod units;
pub mod vec3;
pub mod wind;

pub use env::{EpisodeSeeds, InterceptEnv};
pub use policies::make_policy;
pub use scenario::ScenarioConfig;
pub use vec3::Vec3;
