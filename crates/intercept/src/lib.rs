//! hlynr-intercept: a radar-guided interception simulator.
//!
//! A 3-DOF point-mass engagement of one interceptor against one threat over flat
//! Earth in the ENU frame, with ISA atmosphere, wind, maneuvering threats, a
//! ground radar and optional seeker, an EKF tracker fed only by detections, and
//! the classical guidance laws as baselines.

pub mod vec3;

pub use vec3::Vec3;
