//! The HTTP/JSON API (documented in `docs/serving.md`).
//!
//! Every error is a JSON body `{"error": {"code": ..., "message": ...}}` with
//! a 4xx status (5xx only for a policy that fails on valid input); nothing a
//! client sends can stop the server.

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use hlynr_env::PolicyInput;
use serde::Deserialize;
use serde_json::json;

use crate::App;
use crate::sessions::{OpenError, Session};

/// A request that failed: its status, a stable code and a message for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

/// A JSON error response.
pub fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    ApiError::new(status, code, message).into_response()
}

/// Every route, as matched and as counted in `/metrics`.
const ROUTES: [&str; 9] = [
    "/v1/act",
    "/v1/sessions",
    "/v1/sessions/{id}",
    "/v1/intercept/sessions",
    "/v1/intercept/sessions/{id}/step",
    "/v1/model",
    "/health",
    "/metrics",
    "/arena",
];

/// The router of `app`.
pub fn router(app: Arc<App>) -> Router {
    let [
        act_route,
        open_route,
        end_route,
        intercept_open_route,
        intercept_step_route,
        model_route,
        health_route,
        metrics_route,
        arena_route,
    ] = ROUTES;
    Router::new()
        .route(act_route, post(act))
        .route(open_route, post(open_session))
        .route(end_route, delete(end_session))
        .route(intercept_open_route, post(crate::intercept::open))
        .route(intercept_step_route, post(crate::intercept::step))
        .route(model_route, get(model))
        .route(health_route, get(health))
        .route(metrics_route, get(metrics))
        .route(arena_route, get(arena_page))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "the route does not take this method",
            )
        })
        .layer(axum::middleware::from_fn_with_state(app.clone(), track))
        .layer(DefaultBodyLimit::max(app.options.max_body_bytes))
        .with_state(app)
}

/// Times every request, cuts those that take longer than the limit (a client
/// sending its body too slowly) and counts them by route and status.
async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    // The route's own name (no allocation per request); "unmatched" otherwise.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| ROUTES.into_iter().find(|r| *r == p.as_str()))
        .unwrap_or("unmatched");
    let start = Instant::now();
    // A declared length over the limit is refused before any of the body is
    // read (a chunked body is cut at the limit while it is read).
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = app.options.max_body_bytes;
    if declared.is_some_and(|n| n > limit as u64) {
        let response = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is over the limit of {limit} bytes"),
        );
        app.metrics
            .record(route, response.status().as_u16(), start.elapsed());
        return response;
    }
    let response = match tokio::time::timeout(app.options.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request took longer than {:?} (a body sent too slowly?)",
                app.options.request_timeout
            ),
        ),
    };
    app.metrics
        .record(route, response.status().as_u16(), start.elapsed());
    response
}

/// The body, or the JSON error for one that is too large or unreadable.
pub(crate) fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        let status = e.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "bad_body"
        };
        ApiError::new(status, code, e.body_text())
    })
}

/// Parses a JSON body (an empty body is `{}`).
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActRequest {
    /// One row per env: the observation's values in the flat encoding of its
    /// space (before any frame stack: the server stacks).
    observations: Vec<Vec<f64>>,
    /// The byte lane of each row (camera frames), when the space has one.
    #[serde(default)]
    observation_bytes: Option<Vec<Vec<u8>>>,
    /// One session per row, for models that keep state per episode.
    #[serde(default)]
    session_ids: Option<Vec<String>>,
    /// The distribution's mode (default) or a sample.
    #[serde(default = "yes")]
    deterministic: bool,
}

fn yes() -> bool {
    true
}

pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

async fn act(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    act_inner(&app, body).unwrap_or_else(IntoResponse::into_response)
}

fn act_inner(app: &App, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let body = body_or_error(body)?;
    let req: ActRequest = parse(&body)?;
    let model = app.slot.current();
    let space = &model.observation_space;
    let (vd, bd) = (space.flat_dim(), space.byte_dim());
    let n = req.observations.len();
    if n == 0 || n > app.options.max_batch {
        return Err(bad(
            "bad_batch",
            format!(
                "observations must hold 1 to {} rows, got {n}",
                app.options.max_batch
            ),
        ));
    }
    let mut obs = Vec::with_capacity(n * vd);
    for (i, row) in req.observations.iter().enumerate() {
        if row.len() != vd {
            return Err(bad(
                "bad_shape",
                format!(
                    "observation {i} has {} values; the model takes {vd}",
                    row.len()
                ),
            ));
        }
        for (j, &v) in row.iter().enumerate() {
            let v32 = v as f32;
            if !v32.is_finite() {
                return Err(bad(
                    "not_finite",
                    format!("observation {i} value {j} is {v}, not a finite f32"),
                ));
            }
            obs.push(v32);
        }
    }
    let bytes: Vec<u8> = match (&req.observation_bytes, bd) {
        (None, 0) => Vec::new(),
        (Some(rows), bd) if rows.len() == n && rows.iter().all(|r| r.len() == bd) && bd > 0 => {
            rows.concat()
        }
        _ => {
            return Err(bad(
                "bad_shape",
                format!(
                    "the model takes {bd} observation bytes per row in observation_bytes (one row per observation)"
                ),
            ));
        }
    };
    let ad = model.action_space.flat_dim();
    let mut actions = vec![0.0f32; n * ad];
    let mut versions = Vec::new();
    match &req.session_ids {
        None if model.keeps_state => {
            return Err(bad(
                "session_required",
                "this model keeps state from step to step (a frame stack or a recurrent \
                 network): open a session per episode (POST /v1/sessions) and pass session_ids",
            ));
        }
        None => {
            let input = PolicyInput {
                n,
                obs: &obs,
                obs_bytes: &bytes,
                controller_view: &[],
            };
            model
                .act(&input, req.deterministic, &mut actions)
                .map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "policy_failed", e)
                })?;
            versions.push(model.version);
        }
        Some(ids) => {
            if ids.len() != n {
                return Err(bad(
                    "bad_shape",
                    format!("{} session_ids for {n} observations", ids.len()),
                ));
            }
            for (i, id) in ids.iter().enumerate() {
                let session = session_of(app, id)?;
                let mut s = session.lock().unwrap_or_else(PoisonError::into_inner);
                let input = PolicyInput {
                    n: 1,
                    obs: &obs[i * vd..(i + 1) * vd],
                    obs_bytes: &bytes[i * bd..(i + 1) * bd],
                    controller_view: &[],
                };
                s.policy
                    .act(
                        &input,
                        req.deterministic,
                        &mut actions[i * ad..(i + 1) * ad],
                    )
                    .map_err(|e| {
                        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "policy_failed", e)
                    })?;
                s.steps += 1;
                versions.push(s.model.version);
            }
        }
    }
    app.metrics
        .actions
        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    let rows: Vec<&[f32]> = actions.chunks_exact(ad.max(1)).collect();
    // One number when one model served every row; else each row's version
    // (sessions opened before a reload keep their model).
    let version = match versions.first() {
        Some(&v) if versions.iter().all(|&x| x == v) => json!(v),
        _ => json!(versions),
    };
    Ok(axum::Json(json!({"actions": rows, "model_version": version})).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OpenRequest {
    /// The episode's id (chosen by the server when absent).
    #[serde(default)]
    session_id: Option<String>,
}

async fn open_session(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let req: OpenRequest = match body_or_error(body).and_then(|b| parse(&b)) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let model = app.slot.current();
    let policy = match model.instance() {
        Ok(p) => p,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "policy_failed", e),
    };
    let version = model.version;
    match app.sessions.open(req.session_id, model, policy, None) {
        Ok(id) => (
            StatusCode::CREATED,
            axum::Json(json!({"session_id": id, "model_version": version})),
        )
            .into_response(),
        Err(e) => open_error(e).into_response(),
    }
}

/// The response to a session that could not be opened.
pub(crate) fn open_error(e: OpenError) -> ApiError {
    match e {
        OpenError::Taken => ApiError::new(
            StatusCode::CONFLICT,
            "session_exists",
            "a session with this id is open; end it first",
        ),
        OpenError::Full(max) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sessions",
            format!("all {max} sessions are open; end some or wait for idle ones to expire"),
        ),
        OpenError::BadId => bad(
            "bad_session_id",
            format!(
                "a session id is 1 to {} printable ASCII characters",
                crate::sessions::MAX_ID_LEN
            ),
        ),
    }
}

async fn end_session(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    if app.sessions.end(&id) {
        axum::Json(json!({"ended": id})).into_response()
    } else {
        unknown_session(&id).into_response()
    }
}

/// The open session `id`, or the 404 saying there is none.
pub fn session_of(app: &App, id: &str) -> Result<Arc<std::sync::Mutex<Session>>, ApiError> {
    app.sessions.get(id).ok_or_else(|| unknown_session(id))
}

/// The 404 of a session id that names no open session.
fn unknown_session(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_session",
        format!("no open session `{id}` (ended, expired or never opened)"),
    )
}

async fn model(State(app): State<Arc<App>>) -> Response {
    let m = app.slot.current();
    axum::Json(json!({
        "model_version": m.version,
        "env_steps": m.env_steps,
        "checkpoint": m.checkpoint.display().to_string(),
        "observation_space": m.observation_space,
        "action_space": m.action_space,
        "keeps_state": m.keeps_state,
    }))
    .into_response()
}

/// `GET /arena`: the browser game with its prey played by the model (an
/// arena run's only).
async fn arena_page(State(app): State<Arc<App>>) -> Response {
    match &app.slot.current().arena_page {
        Some(page) => axum::response::Html(page.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_arena",
            "the browser game is served for arena runs only",
        ),
    }
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let m = app.slot.current();
    axum::Json(json!({
        "status": "ok",
        "model_version": m.version,
        "env_steps": m.env_steps,
        "sessions": app.sessions.len(),
    }))
    .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let m = app.slot.current();
    let text = app
        .metrics
        .render(app.sessions.len(), m.version, m.env_steps);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
