//! Runs one workload in a loop for profiling (`perf record`, callgrind):
//!
//! ```sh
//! cargo build --release -p hlynr-bench --example profile
//! perf record -g target/release/examples/profile w1 2000
//! ```

use hlynr_bench::env::CartPoleVec;
use hlynr_bench::nn::{ConvUpdate, LstmUpdate, PolicyForward, PpoUpdate};
use hlynr_env::Parallelism;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let workload = args.get(1).map(String::as_str).unwrap_or("w1");
    let iters: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    match workload {
        "w1" => {
            let mut w = PpoUpdate::new(0);
            (0..iters).for_each(|_| w.step());
        }
        "w2" | "w2b1" => {
            let batch = if workload == "w2" { 16 } else { 1 };
            let mut w = PolicyForward::new(batch, 0);
            (0..iters).for_each(|_| {
                std::hint::black_box(w.step());
            });
        }
        "w3" => {
            let mut w = LstmUpdate::new(0);
            (0..iters).for_each(|_| w.step());
        }
        "w4" => {
            let mut w = ConvUpdate::new(0);
            (0..iters).for_each(|_| w.step());
        }
        "cartpole" => {
            let mut w = CartPoleVec::new(256, Parallelism::Serial);
            (0..iters).for_each(|_| w.step());
        }
        other => {
            eprintln!("unknown workload `{other}`; use w1, w2, w2b1, w3, w4 or cartpole");
            std::process::exit(2);
        }
    }
}
