//! The wire protocol between env clients and the learner (`docs/remote.md`).
//!
//! Modelled on dm_env_rpc: one WebSocket per client, each request answered
//! by exactly one response, in order; a request is a message with one
//! payload field set (`join_world`, `reset`, `step`, `leave_world`) and an
//! optional `id` echoed in its response; failures come back as a status
//! (`{"error": {"code": "INVALID_ARGUMENT", "message": ...}}`) and change
//! nothing. The roles are those of a game that asks for actions: the client
//! holds the world and its agents and sends observations; the learner
//! answers actions.
//!
//! A text frame is JSON and is answered in JSON; a binary frame is
//! MessagePack (the same fields, as a map) and is answered in MessagePack.

use std::collections::BTreeMap;

use hlynr_env::Space;
use serde::{Deserialize, Serialize};

/// One request from an env client.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Echoed in the response, to match them up.
    #[serde(default)]
    pub id: Option<u64>,
    /// Check the client's spaces against the run's (optional) and learn the
    /// learner's limits.
    #[serde(default)]
    pub join_world: Option<JoinWorld>,
    /// Start new episodes for the listed agents; the client's other agents
    /// leave.
    #[serde(default)]
    pub reset: Option<AgentSteps>,
    /// What happened to each listed agent since its last action.
    #[serde(default)]
    pub step: Option<AgentSteps>,
    /// The client's agents leave; the connection stays open.
    #[serde(default)]
    pub leave_world: Option<Empty>,
}

/// The payload of a [`Request`]: exactly one of its fields.
#[derive(Debug)]
pub enum Payload {
    /// `join_world`.
    Join(JoinWorld),
    /// `reset`.
    Reset(AgentSteps),
    /// `step`.
    Step(AgentSteps),
    /// `leave_world`.
    Leave,
}

impl Request {
    /// The one payload this request carries.
    pub fn payload(self) -> Result<Payload, Status> {
        let mut set = Vec::new();
        if let Some(j) = self.join_world {
            set.push(Payload::Join(j));
        }
        if let Some(r) = self.reset {
            set.push(Payload::Reset(r));
        }
        if let Some(s) = self.step {
            set.push(Payload::Step(s));
        }
        if self.leave_world.is_some() {
            set.push(Payload::Leave);
        }
        match set.len() {
            1 => Ok(set.pop().expect("one payload")),
            0 => Err(Status::invalid(
                "a request carries one of join_world, reset, step or leave_world",
            )),
            _ => Err(Status::invalid(
                "a request carries only one of join_world, reset, step or leave_world",
            )),
        }
    }
}

/// An empty payload (`{}`).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `join_world`: the client may state its spaces, which must be the run's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinWorld {
    /// The client's spaces; refused unless equal to the run's.
    #[serde(default)]
    pub spec: Option<Spec>,
}

/// The spaces of one agent's observations and actions.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// One observation, in hlynr's space notation.
    pub observation_space: Space,
    /// One action.
    pub action_space: Space,
}

/// The agents of a `reset` or `step`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSteps {
    /// One entry per agent; an agent appears at most once.
    pub agents: Vec<AgentStep>,
}

/// Where an agent is in its episode (dm_env's step types, with gymnasium's
/// two kinds of end: `last` with discount 0 is `terminated`, with discount
/// 1 `truncated`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    /// The first observation of an episode (no reward).
    First,
    /// The observation after an action, the episode going on.
    Mid,
    /// The episode ended in a terminal state: nothing follows to bootstrap.
    Terminated,
    /// The episode was cut (a time limit); its value is bootstrapped from
    /// this last observation.
    Truncated,
}

impl StepType {
    /// Whether the episode ends with this step.
    pub fn is_last(self) -> bool {
        matches!(self, StepType::Terminated | StepType::Truncated)
    }
}

/// One agent's part of a `reset` or `step`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentStep {
    /// The client's name for the agent, unique among its agents.
    pub agent: u32,
    /// Defaults to `first` in a `reset` and `mid` in a `step`.
    #[serde(default)]
    pub step_type: Option<StepType>,
    /// The reward of the agent's last action (absent for `first`).
    #[serde(default)]
    pub reward: Option<f64>,
    /// The observation's value lane (every `f32` slot of the observation
    /// space's flat encoding).
    #[serde(default)]
    pub observation: Vec<f32>,
    /// The observation's byte lane (camera frames), when the space has one.
    #[serde(default)]
    pub observation_bytes: Vec<u8>,
    /// On the last step of an episode: the env's one definition of success.
    #[serde(default)]
    pub is_success: Option<bool>,
    /// On the last step: env metrics of the episode (logged as
    /// `episode/<name>` means).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
}

/// The learner's answer to one agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentAction {
    /// The agent it is for.
    pub agent: u32,
    /// The flat action.
    pub action: Vec<f32>,
    /// The learner did not answer in time (it was learning) or has no slot
    /// for the agent: this is the agent's previous action (a neutral one
    /// for its first), as a real-time env repeats it, and what follows from
    /// it is not learned from.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
}

/// One response.
#[derive(Debug, Serialize)]
pub struct Response {
    /// The request's `id`, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// What it says.
    #[serde(flatten)]
    pub body: ResponseBody,
}

/// The payload of a [`Response`], named as its request's.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseBody {
    /// Answer to `join_world`: the run's spaces and the learner's limits.
    JoinWorld {
        /// The run's spaces.
        spec: Spec,
        /// Agents the learner trains on at once (more are answered with
        /// held actions).
        max_agents: usize,
        /// How long the learner may take to answer before a request is
        /// answered with held actions.
        act_timeout_ms: u64,
    },
    /// Answer to `reset`: an action for every agent.
    Reset {
        /// One per agent of the request, in its order.
        actions: Vec<AgentAction>,
    },
    /// Answer to `step`: an action for every agent whose episode goes on.
    Step {
        /// One per agent that did not end, in the request's order.
        actions: Vec<AgentAction>,
    },
    /// Answer to `leave_world`.
    LeaveWorld {},
    /// The request failed and changed nothing.
    Error(Status),
}

/// Why a request failed (google.rpc status codes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The class of failure.
    pub code: Code,
    /// What was wrong, naming the field or agent.
    pub message: String,
}

/// google.rpc codes used by the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// Malformed, wrong shape, non-finite or outside the space.
    InvalidArgument,
    /// Not allowed in the agent's or client's present state (a `mid` step
    /// for an agent with no episode).
    FailedPrecondition,
    /// The learner has stopped.
    Unavailable,
}

impl Code {
    /// The code as it is written on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Unavailable => "UNAVAILABLE",
        }
    }
}

impl Status {
    /// An `INVALID_ARGUMENT` status.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: Code::InvalidArgument,
            message: message.into(),
        }
    }

    /// A `FAILED_PRECONDITION` status.
    pub fn precondition(message: impl Into<String>) -> Self {
        Self {
            code: Code::FailedPrecondition,
            message: message.into(),
        }
    }
}

/// How a message travelled, so its answer travels the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// A text frame of JSON.
    Json,
    /// A binary frame of MessagePack.
    MessagePack,
}

/// Reads a request; a message that is not one is an `INVALID_ARGUMENT`
/// naming what is wrong (the id is then unknown).
pub fn decode(bytes: &[u8], encoding: Encoding) -> Result<Request, Status> {
    let parsed = match encoding {
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Encoding::MessagePack => rmp_serde::from_slice(bytes).map_err(|e| e.to_string()),
    };
    parsed.map_err(|e| Status::invalid(format!("not a request: {}", clip(&e, 300))))
}

/// Writes a response (MessagePack as a map with field names).
pub fn encode(response: &Response, encoding: Encoding) -> Vec<u8> {
    let out = match encoding {
        Encoding::Json => serde_json::to_vec(response).map_err(|e| e.to_string()),
        Encoding::MessagePack => rmp_serde::to_vec_named(response).map_err(|e| e.to_string()),
    };
    // Responses hold only finite numbers and plain strings; should encoding
    // still fail, the client gets a status rather than nothing.
    out.unwrap_or_else(|e| {
        let fallback = Response {
            id: response.id,
            body: ResponseBody::Error(Status {
                code: Code::Unavailable,
                message: format!("the response could not be encoded: {e}"),
            }),
        };
        serde_json::to_vec(&fallback).unwrap_or_default()
    })
}

/// `text` cut to at most `max` characters (client input echoed in errors).
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_carries_exactly_one_payload() {
        let req = decode(br#"{"id": 4, "leave_world": {}}"#, Encoding::Json).unwrap();
        assert_eq!(req.id, Some(4));
        assert!(matches!(req.payload(), Ok(Payload::Leave)));
        let none = decode(br#"{"id": 4}"#, Encoding::Json).unwrap();
        assert_eq!(none.payload().unwrap_err().code, Code::InvalidArgument);
        let two = decode(
            br#"{"leave_world": {}, "step": {"agents": []}}"#,
            Encoding::Json,
        );
        assert!(two.unwrap().payload().is_err());
    }

    #[test]
    fn unknown_fields_and_garbage_are_invalid_arguments() {
        let typo = decode(br#"{"stepp": {"agents": []}}"#, Encoding::Json).unwrap_err();
        assert!(typo.message.contains("stepp"), "{}", typo.message);
        let junk = decode(&[0xc1, 0xff, 0x00], Encoding::MessagePack).unwrap_err();
        assert_eq!(junk.code, Code::InvalidArgument);
    }

    #[test]
    fn responses_travel_in_the_requests_encoding() {
        let response = Response {
            id: Some(7),
            body: ResponseBody::Step {
                actions: vec![AgentAction {
                    agent: 2,
                    action: vec![0.5, -1.0],
                    held: false,
                }],
            },
        };
        let json: serde_json::Value =
            serde_json::from_slice(&encode(&response, Encoding::Json)).unwrap();
        assert_eq!(json["id"], 7);
        assert_eq!(json["step"]["actions"][0]["action"][1], -1.0);
        assert!(json["step"]["actions"][0].get("held").is_none());
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::Unavailable,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.name());
        }
        let packed: serde_json::Value =
            rmp_serde::from_slice(&encode(&response, Encoding::MessagePack)).unwrap();
        assert_eq!(packed, json);
    }

    #[test]
    fn a_step_reads_back_from_messagepack() {
        #[derive(Serialize)]
        struct Out<'a> {
            id: u64,
            step: BTreeMap<&'a str, Vec<BTreeMap<&'a str, serde_json::Value>>>,
        }
        let agent = BTreeMap::from([
            ("agent", serde_json::json!(3)),
            ("reward", serde_json::json!(1.5)),
            ("observation", serde_json::json!([0.25, 1.0])),
        ]);
        let bytes = rmp_serde::to_vec_named(&Out {
            id: 1,
            step: BTreeMap::from([("agents", vec![agent])]),
        })
        .unwrap();
        let Payload::Step(steps) = decode(&bytes, Encoding::MessagePack)
            .unwrap()
            .payload()
            .unwrap()
        else {
            panic!("not a step");
        };
        assert_eq!(steps.agents[0].agent, 3);
        assert_eq!(steps.agents[0].reward, Some(1.5));
        assert_eq!(steps.agents[0].observation, vec![0.25, 1.0]);
    }
}
