//! `hlynr serve`: a run's policy over HTTP/JSON (see docs/serving.md).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use hlynr_serve::ServeOptions;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The run directory (its checkpoints/best, else checkpoints/last) or
    /// one checkpoint (RUN_DIR/checkpoints/NAME).
    pub model: PathBuf,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Address to listen on; 0.0.0.0 serves other machines too.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Threads serving requests.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub workers: Option<u64>,
    /// Sessions without a request for this many seconds end.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub session_idle_s: u64,
    /// Most sessions open at once.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_sessions: u64,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1024..=(1 << 30)))]
    pub max_body_bytes: u64,
}

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let mut options = ServeOptions {
        session_idle: Duration::from_secs(args.session_idle_s),
        max_sessions: args.max_sessions as usize,
        max_body_bytes: args.max_body_bytes as usize,
        ..ServeOptions::default()
    };
    if let Some(w) = args.workers {
        options.workers = w as usize;
    }
    let addr = SocketAddr::new(args.host, args.port);
    hlynr_serve::run(&args.model, addr, options, |bound| {
        eprintln!(
            "serving {} on http://{bound} (POST /v1/act, GET /health, GET /metrics); Ctrl-C stops",
            args.model.display()
        );
    })
    .map_err(|e| anyhow!(e))
}
