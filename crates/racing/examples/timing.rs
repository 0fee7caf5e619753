//! Times the parts of a racing step (`cargo run --release -p hlynr-racing --example timing`).
use std::time::Instant;

use hlynr_racing::camera::{Camera, CameraConfig};
use hlynr_racing::car::{CarParams, CarState, Controls, advance};
use hlynr_racing::raster::TrackRaster;
use hlynr_racing::track;

fn main() {
    let t = track::shipped("technical").unwrap();
    let raster = TrackRaster::new(&t);
    let cam = Camera::new(&CameraConfig::default()).unwrap();
    let mut img = vec![0u8; 4096];
    let n = 200_000;
    let (p, tan) = t.at(100.0);
    let h = tan[1].atan2(tan[0]);
    let start = Instant::now();
    for i in 0..n {
        cam.render(&raster, p[0] + (i % 7) as f64 * 0.1, p[1], h, &mut img);
    }
    println!(
        "render: {:.2} us",
        start.elapsed().as_secs_f64() / n as f64 * 1e6
    );
    let mut beams = [0.0; 19];
    let start = Instant::now();
    for i in 0..n {
        hlynr_racing::lidar::scan(
            &raster,
            p[0] + (i % 7) as f64 * 0.1,
            p[1],
            h,
            100.0,
            &mut beams,
        );
    }
    println!(
        "lidar: {:.2} us",
        start.elapsed().as_secs_f64() / n as f64 * 1e6
    );
    let params = CarParams::default();
    let mut s = CarState {
        vx_mps: 20.0,
        ..CarState::default()
    };
    let start = Instant::now();
    for i in 0..n * 10 {
        advance(
            &params,
            &mut s,
            Controls {
                gas: 0.5,
                brake: 0.0,
                steer: ((i / 100) % 3) as f64 - 1.0,
            },
            0.005,
        );
    }
    println!(
        "advance: {:.3} us",
        start.elapsed().as_secs_f64() / n as f64 / 10.0 * 1e6
    );
    let start = Instant::now();
    let mut idx = 0;
    for i in 0..n * 10 {
        let (q, _) = t.at((i % 1000) as f64 * 0.4);
        idx = t.project(q, Some(idx), 12).index;
    }
    println!(
        "project: {:.3} us {idx}",
        start.elapsed().as_secs_f64() / n as f64 / 10.0 * 1e6
    );
}
