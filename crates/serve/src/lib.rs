//! `hlynr serve`: a trained policy behind an HTTP/JSON API.
//!
//! `POST /v1/act` answers a batch of observations with a batch of actions;
//! sessions (`POST /v1/sessions`, `DELETE /v1/sessions/{id}`) give each
//! episode its own policy instance for models that keep state (a frame
//! stack, a recurrent network), and end when idle; `GET /health`,
//! `GET /metrics` (Prometheus text) and `GET /v1/model` describe the server.
//! The model reloads when its checkpoint changes on disk (a new `best/`),
//! without dropping requests: requests in flight finish on the version they
//! started with. The observation normaliser is the checkpoint's, frozen.
//! The API is described in `docs/serving.md`.

pub mod api;
pub mod intercept;
pub mod metrics;
pub mod model;
pub mod sessions;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::model::ModelSlot;
use crate::sessions::Sessions;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Most observation rows in one request.
    pub max_batch: usize,
    /// A request (headers and body) that takes longer is cut with 408.
    pub request_timeout: Duration,
    /// Sessions without a request for this long end.
    pub session_idle: Duration,
    /// Most sessions open at once.
    pub max_sessions: usize,
    /// How often the checkpoint is checked for a new version.
    pub reload_every: Duration,
    /// Threads serving requests (and policy instances for stateless batches).
    pub workers: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_batch: 1024,
            request_timeout: Duration::from_secs(10),
            session_idle: Duration::from_secs(300),
            max_sessions: 4096,
            reload_every: Duration::from_secs(1),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub struct App {
    pub options: ServeOptions,
    pub slot: ModelSlot,
    pub sessions: Sessions,
    pub metrics: Metrics,
}

impl App {
    /// The app serving the model of `target` (`RUN_DIR` or
    /// `RUN_DIR/checkpoints/NAME`).
    pub fn open(target: &Path, options: ServeOptions) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            slot: ModelSlot::open(target, options.workers)?,
            sessions: Sessions::new(options.session_idle, options.max_sessions),
            metrics: Metrics::default(),
            options,
        }))
    }
}

/// Serves `app` on `listener` until `shutdown` completes, with the reload
/// and session-expiry tasks running beside it.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let background = tokio::spawn(maintain(app.clone()));
    let router = api::router(app);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or a connection reset before
                // accept: wait a moment instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .keep_alive(true);
            // A client that misbehaves only ends its own connection.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    background.abort();
}

/// Reloads the model when its checkpoint changes and ends idle sessions.
async fn maintain(app: Arc<App>) {
    let mut tick = tokio::time::interval(app.options.reload_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let expired = app.sessions.expire();
        app.metrics
            .sessions_expired
            .fetch_add(expired as u64, Ordering::Relaxed);
        let reloading = app.clone();
        let reloaded = tokio::task::spawn_blocking(move || reloading.slot.reload_if_changed())
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match reloaded {
            Ok(Some(version)) => {
                app.metrics.reloads.fetch_add(1, Ordering::Relaxed);
                eprintln!("model reloaded: version {version}");
            }
            Ok(None) => {}
            Err(e) => {
                app.metrics.reload_failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("model reload failed, the previous version keeps serving: {e}");
            }
        }
    }
}

/// A server running on its own thread (see [`spawn`]).
#[derive(Debug)]
pub struct Handle {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// What it serves.
    pub app: Arc<App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    /// Stops accepting connections and waits for the server thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The app of `target`, a runtime with `options.workers` threads and a
/// listener bound to `addr`: what both ways of running the server start from.
fn start(
    target: &Path,
    addr: SocketAddr,
    options: ServeOptions,
) -> Result<(Arc<App>, tokio::runtime::Runtime, TcpListener), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server runtime: {e}"))?;
    let app = App::open(target, options)?;
    let listener = runtime
        .block_on(TcpListener::bind(addr))
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    Ok((app, runtime, listener))
}

/// Starts serving `target` on `addr` on a thread of its own (for programs
/// and tests that embed the server); returns once it listens.
pub fn spawn(target: &Path, addr: SocketAddr, options: ServeOptions) -> Result<Handle, String> {
    let (app, runtime, listener) = start(target, addr, options)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = app.clone();
    let thread = std::thread::spawn(move || {
        runtime.block_on(serve(served, listener, async {
            let _ = stopped.await;
        }));
    });
    Ok(Handle {
        addr,
        app,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Runs the server on `addr` until Ctrl-C: the command's entry point.
/// `ready` is told the bound address (port 0 picks a free one).
pub fn run(
    target: &Path,
    addr: SocketAddr,
    options: ServeOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let (app, runtime, listener) = start(target, addr, options)?;
    ready(listener.local_addr().map_err(|e| e.to_string())?);
    runtime.block_on(serve(app, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    }));
    Ok(())
}
