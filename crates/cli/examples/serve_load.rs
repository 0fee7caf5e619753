//! Load on `hlynr serve` over loopback: N clients, each on its own
//! keep-alive connection, send `POST /v1/act` with one observation as fast
//! as answers come back, for a fixed time; prints throughput, latency
//! percentiles, errors and the server's resident memory before and after.
//!
//! ```text
//! cargo run --release -p hlynr --example serve_load -- RUN_DIR [CLIENTS] [SECONDS]
//! ```
//!
//! The server runs in this process on its own threads (as `hlynr serve`
//! does, with the same options), so both share the machine's cores.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let run = PathBuf::from(
        args.next()
            .expect("usage: serve_load RUN_DIR [CLIENTS] [SECONDS]"),
    );
    let clients: usize = args.next().map_or(16, |s| s.parse().expect("CLIENTS"));
    let seconds: u64 = args.next().map_or(60, |s| s.parse().expect("SECONDS"));
    let options = hlynr_serve::ServeOptions::default();
    let workers = options.workers;
    let server = hlynr_serve::spawn(&run, "127.0.0.1:0".parse().unwrap(), options).unwrap();
    let model = server.app.slot.current();
    let dim = model.observation_space.flat_dim();
    let url = format!("http://{}/v1/act", server.addr);
    let body = serde_json::json!({ "observations": [vec![0.1f32; dim]] }).to_string();
    let stop = Arc::new(AtomicBool::new(false));
    // Warm up, then measure memory at the start of the timed part.
    let warm = ureq::Agent::new_with_config(ureq::Agent::config_builder().build());
    for _ in 0..1000 {
        warm.post(&url).send(&body).unwrap();
    }
    let rss_before = resident_kib();
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (url, body, stop) = (url.clone(), body.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_config(
                    ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build(),
                );
                let (mut lat, mut errors) = (Vec::new(), 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match agent.post(&url).send(&body) {
                        Ok(mut r) if r.status() == 200 => {
                            let _ = r.body_mut().read_to_string();
                            lat.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t.join().unwrap();
        lat.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rss_after = resident_kib();
    lat.sort();
    println!("{clients} clients, {seconds} s, server workers {workers}, observation {dim} values");
    println!(
        "requests {} ({:.0}/s), errors {errors}",
        lat.len(),
        lat.len() as f64 / elapsed
    );
    println!(
        "latency p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    println!("resident memory {rss_before:?} KiB before, {rss_after:?} KiB after");
    server.stop();
}
