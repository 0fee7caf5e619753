//! Interception sessions for a client that simulates the engagement itself
//! (a game engine, the users' Unity simulator): the client sends the true
//! states of the interceptor and the threat, the server runs the run's own
//! radar, seeker, tracker and observation pipeline on them (drawn from the
//! episode's seed as the env draws them), the policy acts, and the answer
//! is the action and the acceleration command it becomes. A session replaying
//! an episode of the env gets the env's actions bit for bit.
//!
//! - `POST /v1/intercept/sessions` `{"seed": S, "initial": TRUTH,
//!   "session_id"?: ID}`: a session at launch (`TRUTH.time_s = 0`); answers
//!   the first decision.
//! - `POST /v1/intercept/sessions/{id}/step` `{"truth": [TRUTH, ...]}`: the
//!   truth of every physics step since the last decision; answers the next
//!   decision, or the end of the episode.
//! - `DELETE /v1/sessions/{id}` ends it, as any session.
//!
//! `TRUTH` is [`hlynr_intercept::env::TruthSample`] (ENU world frame, SI
//! units; see docs/serving.md).

use std::sync::{Arc, PoisonError};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hlynr_env::{Env, Policy, PolicyInput};
use hlynr_intercept::env::{DrivenStatus, TruthSample};
use hlynr_intercept::reward::TerminationReason;
use hlynr_intercept::{EpisodeSeeds, InterceptEnv};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::api::{ApiError, bad, body_or_error, open_error, parse};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenRequest {
    /// The episode's seed: the sensors' noise, latency and link draws.
    seed: u64,
    /// The vehicles at launch.
    initial: TruthSample,
    #[serde(default)]
    session_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepRequest {
    /// Every physics step since the last decision, in time order.
    truth: Vec<TruthSample>,
}

fn bad_truth(e: impl std::fmt::Display) -> ApiError {
    bad("bad_truth", e.to_string())
}

/// One decision: the policy on the observation `obs`, and the command.
fn decide(
    env: &mut InterceptEnv,
    policy: &mut dyn Policy,
    obs: &[f32],
    deterministic: bool,
) -> Result<(Vec<f32>, [f64; 3]), ApiError> {
    let mut action = vec![0.0f32; env.action_space().flat_dim()];
    let input = PolicyInput {
        n: 1,
        obs,
        obs_bytes: &[],
        controller_view: &[],
    };
    policy
        .act(&input, deterministic, &mut action)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "policy_failed", e))?;
    let command = env.command_of(&action).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "policy_failed",
            e.to_string(),
        )
    })?;
    Ok((action, command.to_array()))
}

pub async fn open(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    open_inner(&app, body).unwrap_or_else(IntoResponse::into_response)
}

fn open_inner(app: &App, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let req: OpenRequest = parse(&body_or_error(body)?)?;
    let model = app.slot.current();
    let Some(scenario) = &model.intercept else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_interception",
            "this model was not trained on the interception env; use /v1/sessions",
        ));
    };
    let mut env = InterceptEnv::new(scenario).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "env_failed",
            e.to_string(),
        )
    })?;
    let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
    env.reset_driven(EpisodeSeeds::from_seed(req.seed), &req.initial, &mut obs)
        .map_err(bad_truth)?;
    let mut policy = model
        .instance()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "policy_failed", e))?;
    let (action, command) = decide(&mut env, policy.as_mut(), &obs, true)?;
    let version = model.version;
    let id = app
        .sessions
        .open(req.session_id, model, policy, Some(Box::new(env)))
        .map_err(open_error)?;
    let body = json!({
        "session_id": id,
        "model_version": version,
        "action": action,
        "accel_command_mps2": command,
        "done": false,
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

pub async fn step(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    step_inner(&app, &id, body).unwrap_or_else(IntoResponse::into_response)
}

fn step_inner(
    app: &App,
    id: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: StepRequest = parse(&body_or_error(body)?)?;
    if req.truth.is_empty() {
        return Err(bad_truth("`truth` holds no physics step"));
    }
    let session = crate::api::session_of(app, id)?;
    let mut guard = session.lock().unwrap_or_else(PoisonError::into_inner);
    let s = &mut *guard;
    let Some(env) = s.intercept.as_mut() else {
        return Err(bad(
            "not_interception",
            format!("session `{id}` is not an interception session"),
        ));
    };
    let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
    let status: DrivenStatus = env.drive(&req.truth, &mut obs).map_err(|e| {
        if env.is_done() {
            ApiError::new(StatusCode::CONFLICT, "episode_over", e.to_string())
        } else {
            bad_truth(e)
        }
    })?;
    s.steps += 1;
    let mut body = json!({"model_version": s.model.version});
    if status.reason == TerminationReason::None {
        let (action, command) = decide(env, s.policy.as_mut(), &obs, true)?;
        body["action"] = json!(action);
        body["accel_command_mps2"] = json!(command);
        body["done"] = json!(false);
    } else {
        body["done"] = json!(true);
        body["termination_reason"] = json!(status.reason.name());
        body["miss_distance_m"] = miss(status.miss_distance_m);
    }
    Ok(axum::Json(body).into_response())
}

/// A miss distance in JSON (no infinity there: `null` before any approach).
fn miss(m: f64) -> Value {
    if m.is_finite() { json!(m) } else { Value::Null }
}
