//! Load on a running `hlynr serve` over loopback: N clients, each on its own
//! keep-alive connection, send `POST /v1/act` with one observation, for a
//! fixed time; prints throughput, latency percentiles, errors and (given the
//! server's PID) its resident memory before and after. Without a rate the
//! clients send as fast as answers come back (the server saturated); with
//! one, together they send that many requests per second on a fixed
//! schedule, and each latency counts from the request's scheduled time, so
//! a stalled server cannot hide its delay by slowing the clients down.
//!
//! ```text
//! hlynr serve RUN_DIR --port 8000 &
//! cargo run --release -p hlynr --example serve_load -- 127.0.0.1:8000 OBS_DIM 16 60 $! [RATE]
//! ```
//!
//! The clients write prebuilt HTTP/1.1 requests on plain sockets and read
//! the answers by their `Content-Length`, so that on a small machine the
//! load generator takes as little of the CPU the server shares with it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Latency histogram in microseconds (1 us bins up to 100 ms), so the
/// client's own memory stays flat however long it runs.
const BINS: usize = 100_000;

fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One request and its answer; `Err` on a non-200 status or a broken connection.
fn exchange(
    writer: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    request: &[u8],
    body: &mut Vec<u8>,
) -> Result<(), String> {
    writer.write_all(request).map_err(|e| e.to_string())?;
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let ok = line.starts_with("HTTP/1.1 200");
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v
                .trim()
                .parse()
                .map_err(|_| "bad content-length".to_string())?;
        }
    }
    body.resize(length, 0);
    reader.read_exact(body).map_err(|e| e.to_string())?;
    if ok { Ok(()) } else { Err(line) }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: serve_load HOST:PORT OBS_DIM [CLIENTS] [SECONDS] [SERVER_PID] [RATE]";
    let addr = args.next().expect(usage);
    let dim: usize = args.next().expect(usage).parse().expect("OBS_DIM");
    let clients: usize = args.next().map_or(16, |s| s.parse().expect("CLIENTS"));
    let seconds: u64 = args.next().map_or(60, |s| s.parse().expect("SECONDS"));
    let pid: Option<u32> = args.next().map(|s| s.parse().expect("SERVER_PID"));
    let rate: Option<f64> = args.next().map(|s| s.parse().expect("RATE"));
    // Each client's interval between scheduled requests.
    let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
    let body = serde_json::json!({ "observations": [vec![0.1f32; dim]] }).to_string();
    let request = format!(
        "POST /v1/act HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();
    let stop = Arc::new(AtomicBool::new(false));
    let rss_before = pid.and_then(resident_kib);
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, request, stop) = (addr.clone(), request.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut writer = TcpStream::connect(&addr).expect("connect");
                writer.set_nodelay(true).unwrap();
                let mut reader = BufReader::new(writer.try_clone().unwrap());
                // From the scheduled time, and from the moment of sending.
                let mut hist = vec![0u64; BINS + 1];
                let mut sent_hist = vec![0u64; BINS + 1];
                let (mut errors, mut body) = (0u64, Vec::new());
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let t = match interval {
                        Some(every) => {
                            next += every;
                            std::thread::sleep(next.saturating_duration_since(Instant::now()));
                            next
                        }
                        None => Instant::now(),
                    };
                    let sent = Instant::now();
                    match exchange(&mut writer, &mut reader, &request, &mut body) {
                        Ok(()) => {
                            hist[(t.elapsed().as_micros() as usize).min(BINS)] += 1;
                            sent_hist[(sent.elapsed().as_micros() as usize).min(BINS)] += 1;
                        }
                        Err(_) => errors += 1,
                    }
                }
                (hist, sent_hist, errors)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut hist = vec![0u64; BINS + 1];
    let mut sent_hist = vec![0u64; BINS + 1];
    let mut errors = 0;
    for t in threads {
        let (h, sh, e) = t.join().unwrap();
        hist.iter_mut().zip(h).for_each(|(a, b)| *a += b);
        sent_hist.iter_mut().zip(sh).for_each(|(a, b)| *a += b);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total: u64 = hist.iter().sum();
    let quantile = |hist: &[u64], q: f64| {
        let target = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        hist.iter()
            .position(|&n| {
                seen += n;
                seen >= target
            })
            .map_or("over 100 ms".to_string(), |us| format!("{us} us"))
    };
    let schedule = rate.map_or("as fast as answered".to_string(), |r| {
        format!("{r:.0} requests/s scheduled")
    });
    println!("{clients} clients, {seconds} s, observation {dim} values, {schedule}");
    println!(
        "requests {total} ({:.0}/s), errors {errors}",
        total as f64 / elapsed
    );
    for (label, h) in [("from schedule", &hist), ("from sending", &sent_hist)] {
        println!(
            "latency {label}: p50 {}  p90 {}  p99 {}  p99.9 {}",
            quantile(h, 0.5),
            quantile(h, 0.9),
            quantile(h, 0.99),
            quantile(h, 0.999)
        );
    }
    if let Some(pid) = pid {
        println!(
            "server resident memory {rss_before:?} KiB before, {:?} KiB after",
            resident_kib(pid)
        );
    }
}
