//! The WebSocket server env clients connect to: one task per connection
//! reading requests in order and answering each (`protocol.rs`), on a
//! tokio runtime of its own thread so that answering clients never waits
//! for the learner's thread.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response as HttpResponse};
use axum::routing::get;
use hlynr_env::EnvError;
use tokio::sync::oneshot;

use crate::config::RemoteConfig;
use crate::hub::{ConnId, Hub};
use crate::protocol::{
    Code, Encoding, Payload, Request, Response, ResponseBody, Status, decode, encode,
};

/// The hub and the signal the learner waits on.
#[derive(Debug)]
pub struct Shared {
    hub: Mutex<Hub>,
    changed: Condvar,
    /// The server's log lines go to standard error unless quiet.
    quiet: bool,
}

impl Shared {
    /// A hub shared between the server and the learner.
    pub fn new(hub: Hub, quiet: bool) -> Arc<Self> {
        Arc::new(Self {
            hub: Mutex::new(hub),
            changed: Condvar::new(),
            quiet,
        })
    }

    /// The hub, locked.
    pub fn lock(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a change to the hub, at most `timeout`.
    pub fn wait<'a>(&self, hub: MutexGuard<'a, Hub>, timeout: Duration) -> MutexGuard<'a, Hub> {
        self.changed
            .wait_timeout(hub, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// Wakes the learner after a change.
    fn notify(&self) {
        self.changed.notify_all();
    }

    /// One line of the server's log.
    pub fn log(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("remote env: {line}");
        }
    }
}

/// Refusals logged one by one; after that only counted (a client sending
/// garbage in a loop must not flood the log).
const REFUSALS_LOGGED: u64 = 20;

/// The running server; stopping it closes every connection.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `config.listen` and serves on a thread of its own; a plain
    /// `GET /` (not a WebSocket) gets `page` when there is one.
    pub fn start(
        shared: Arc<Shared>,
        config: &RemoteConfig,
        page: Option<String>,
    ) -> hlynr_env::Result<Self> {
        let listener = std::net::TcpListener::bind(&config.listen).map_err(|e| {
            EnvError::invalid(
                "env.remote.listen",
                format!("cannot listen on {}: {e}", config.listen),
            )
        })?;
        let addr = listener
            .local_addr()
            .and_then(|a| listener.set_nonblocking(true).map(|()| a))
            .map_err(|e| EnvError::failed("remote env server", e))?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| EnvError::failed("remote env server", e))?;
        let options = Options {
            act_timeout: Duration::from_millis(config.act_timeout_ms),
            max_message_bytes: config.max_message_bytes,
            page: page.map(Arc::from),
        };
        let thread = std::thread::Builder::new()
            .name("hlynr-remote".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return shared.log(format!("cannot serve: {e}")),
                    };
                    let app = Router::new()
                        .route("/", get(upgrade))
                        .with_state((shared.clone(), options));
                    let served = axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
                    if let Err(e) = served {
                        shared.log(format!("server stopped: {e}"));
                    }
                });
            })
            .map_err(|e| EnvError::failed("remote env server", e))?;
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address clients connect to (`ws://ADDR/`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Clone, Debug)]
struct Options {
    act_timeout: Duration,
    max_message_bytes: usize,
    page: Option<Arc<str>>,
}

/// `GET /`: a WebSocket for an env client, else the page (if any).
async fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State((shared, options)): State<(Arc<Shared>, Options)>,
) -> HttpResponse {
    let ws = match (ws, &options.page) {
        (Ok(ws), _) => ws,
        (Err(_), Some(page)) => return Html(page.to_string()).into_response(),
        (Err(rejection), None) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("an hlynr env endpoint: connect a WebSocket ({rejection})"),
            )
                .into_response();
        }
    };
    ws.max_message_size(options.max_message_bytes)
        .max_frame_size(options.max_message_bytes)
        .on_upgrade(move |socket| connection(socket, peer, shared, options))
}

/// One client, from its first message to its last.
async fn connection(
    mut socket: WebSocket,
    peer: SocketAddr,
    shared: Arc<Shared>,
    options: Options,
) {
    let conn = shared.lock().connect();
    shared.log(format!("client {conn} connected from {peer}"));
    let why = loop {
        let (bytes, encoding) = match socket.recv().await {
            Some(Ok(Message::Text(text))) => (text.as_bytes().to_vec(), Encoding::Json),
            Some(Ok(Message::Binary(bytes))) => (bytes.to_vec(), Encoding::MessagePack),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => break "closed".to_string(),
            Some(Err(e)) => break format!("dropped ({e})"),
        };
        let response = answer(&shared, conn, &bytes, encoding, &options).await;
        if let ResponseBody::Error(status) = &response.body {
            let refused = shared.lock().counters.refused;
            if refused <= REFUSALS_LOGGED {
                shared.log(format!(
                    "client {conn}: refused ({}): {}",
                    status.code.name(),
                    status.message
                ));
            }
        }
        let frame = match encoding {
            Encoding::Json => Message::Text(
                String::from_utf8(encode(&response, encoding))
                    .unwrap_or_default()
                    .into(),
            ),
            Encoding::MessagePack => Message::Binary(encode(&response, encoding).into()),
        };
        if let Err(e) = socket.send(frame).await {
            break format!("dropped ({e})");
        }
    };
    let cut = {
        let mut hub = shared.lock();
        let agents = hub.agents.keys().filter(|(c, _)| *c == conn).count();
        hub.disconnect(conn);
        agents
    };
    shared.notify();
    shared.log(format!("client {conn} {why}; {cut} agents left with it"));
}

/// The response to one message.
async fn answer(
    shared: &Shared,
    conn: ConnId,
    bytes: &[u8],
    encoding: Encoding,
    options: &Options,
) -> Response {
    let refuse = |id, status: Status| {
        shared.lock().refuse(conn);
        shared.notify();
        Response {
            id,
            body: ResponseBody::Error(status),
        }
    };
    let request: Request = match decode(bytes, encoding) {
        Ok(r) => r,
        Err(status) => return refuse(None, status),
    };
    let id = request.id;
    let payload = match request.payload() {
        Ok(p) => p,
        Err(status) => return refuse(id, status),
    };
    let (entries, is_reset) = match payload {
        Payload::Join(join) => {
            let (spec, max_agents) = {
                let hub = shared.lock();
                (hub.spec.clone(), hub.max_agents)
            };
            if let Some(theirs) = join.spec
                && theirs != spec
            {
                return refuse(
                    id,
                    Status::invalid(format!(
                        "the client's spec {} is not the run's {}",
                        crate::protocol::clip(
                            &serde_json::to_string(&theirs).unwrap_or_default(),
                            400
                        ),
                        crate::protocol::clip(
                            &serde_json::to_string(&spec).unwrap_or_default(),
                            400
                        )
                    )),
                );
            }
            return Response {
                id,
                body: ResponseBody::JoinWorld {
                    spec,
                    max_agents,
                    act_timeout_ms: options.act_timeout.as_millis() as u64,
                },
            };
        }
        Payload::Leave => {
            shared.lock().leave(conn);
            shared.notify();
            return Response {
                id,
                body: ResponseBody::LeaveWorld {},
            };
        }
        Payload::Reset(steps) => (steps.agents, true),
        Payload::Step(steps) => (steps.agents, false),
    };
    let submitted = shared.lock().submit(conn, entries, is_reset);
    let mut reply = match submitted {
        Ok(rx) => rx,
        Err(status) => return refuse(id, status),
    };
    shared.notify();
    let actions = match tokio::time::timeout(options.act_timeout, &mut reply).await {
        Ok(answered) => answered,
        Err(_) => {
            shared.lock().answer_held(conn);
            reply.await
        }
    };
    let body = match actions {
        Ok(actions) if is_reset => ResponseBody::Reset { actions },
        Ok(actions) => ResponseBody::Step { actions },
        Err(_) => ResponseBody::Error(Status {
            code: Code::Unavailable,
            message: "the learner has stopped".into(),
        }),
    };
    Response { id, body }
}
