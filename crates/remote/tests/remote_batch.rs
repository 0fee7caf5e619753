//! A learner (a `RemoteBatch` stepped by the test) and real WebSocket
//! clients over loopback: episodes in lockstep, held actions while the
//! learner is away, refused garbage, a dropped client, MessagePack frames.

use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use hlynr_env::{BatchEnv, Space};
use hlynr_remote::{RemoteBatch, RemoteConfig, Serving, Spec};
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

fn spec() -> Spec {
    Spec {
        observation_space: Space::uniform_box(-10.0, 10.0, &[2]),
        action_space: Space::Discrete { n: 3 },
    }
}

fn batch(slots: usize, act_timeout_ms: u64, stall_timeout_ms: u64) -> RemoteBatch {
    let mut config = RemoteConfig::listening_on("127.0.0.1:0");
    config.act_timeout_ms = act_timeout_ms;
    config.stall_timeout_ms = stall_timeout_ms;
    config.wait_for_clients_s = 1.0;
    let serving = Serving {
        page: None,
        quiet: true,
    };
    RemoteBatch::new(config, spec(), slots, serving).unwrap()
}

fn connect(batch: &RemoteBatch) -> Socket {
    tungstenite::connect(format!("ws://{}/", batch.addr()))
        .unwrap()
        .0
}

fn call(socket: &mut Socket, request: Value) -> Value {
    socket.send(Message::text(request.to_string())).unwrap();
    loop {
        match socket.read().unwrap() {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Binary(b) => return rmp_serde_value(&b),
            _ => continue,
        }
    }
}

fn rmp_serde_value(bytes: &[u8]) -> Value {
    rmp_serde::from_slice(bytes).unwrap()
}

/// The action a client got for `agent`.
fn action_of(response: &Value, kind: &str, agent: u32) -> (f64, bool) {
    let a = response[kind]["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions in {response}"))
        .iter()
        .find(|a| a["agent"] == agent)
        .unwrap_or_else(|| panic!("no action for agent {agent} in {response}"));
    (a["action"][0].as_f64().unwrap(), a["held"] == true)
}

#[test]
fn episodes_in_lockstep_reach_the_learner_with_their_actions() {
    let mut learner = batch(2, 2_000, 5_000);
    let client = {
        let addr = learner.addr();
        thread::spawn(move || {
            let mut ws = tungstenite::connect(format!("ws://{addr}/")).unwrap().0;
            let joined = call(&mut ws, json!({"id": 1, "join_world": {"spec": spec()}}));
            assert_eq!(joined["id"], 1);
            assert_eq!(joined["join_world"]["max_agents"], 2);
            let mut got = Vec::new();
            for episode in 0..3 {
                let mut r = call(
                    &mut ws,
                    json!({"reset": {"agents": [{"agent": 7, "observation": [episode as f32, 0.0]}]}}),
                );
                got.push(action_of(&r, "reset", 7).0);
                for t in 1..=5 {
                    let step_type = if t == 5 { "terminated" } else { "mid" };
                    r = call(
                        &mut ws,
                        json!({"step": {"agents": [{"agent": 7, "step_type": step_type,
                            "reward": 1.0, "observation": [episode as f32, t as f32],
                            "is_success": true, "metrics": {"laps": 2.0}}]}}),
                    );
                    if t < 5 {
                        got.push(action_of(&r, "step", 7).0);
                    } else {
                        assert_eq!(r["step"]["actions"], json!([]));
                    }
                }
            }
            // A fourth episode begins (the learner stops following here).
            call(
                &mut ws,
                json!({"reset": {"agents": [{"agent": 7, "observation": [3.0, 0.0]}]}}),
            );
            got
        })
    };
    learner.reset(0).unwrap();
    let mut sent = Vec::new();
    let mut ends = Vec::new();
    let mut k = 0;
    while ends.len() < 3 {
        assert_eq!(learner.active().unwrap(), &[true, false]);
        let action = (k % 3) as f32;
        k += 1;
        sent.push(action);
        learner.step(&[action, 0.0]).unwrap();
        assert_eq!(learner.rewards()[0], 1.0);
        if learner.terminated()[0] {
            let info = &learner.infos()[0];
            let stats = info.episode.unwrap();
            assert_eq!((stats.episode_return, stats.episode_length), (5.0, 5));
            assert_eq!(info.is_success, Some(true));
            assert!(info.metrics.contains(&("laps", 2.0)));
            assert!(info.metrics.contains(&("remote_cuts", 0.0)));
            assert_eq!(learner.final_observation(0).unwrap()[1], 5.0);
            ends.push(learner.final_observation(0).unwrap()[0]);
            // The next episode's first observation, in the same step.
            assert_eq!(
                (learner.obs()[0], learner.obs()[1]),
                (ends.len() as f32, 0.0)
            );
        } else {
            assert!(!learner.truncated()[0]);
        }
    }
    assert_eq!(ends, vec![0.0, 1.0, 2.0]);
    let got = client.join().unwrap();
    assert_eq!(got, sent.iter().map(|&a| f64::from(a)).collect::<Vec<_>>());
    // Only the fourth episode's first action, which the learner never gave.
    assert_eq!(learner.counters().held_actions, 1);
}

#[test]
fn a_learner_away_learning_leaves_held_actions_and_a_cut() {
    let mut learner = batch(1, 30, 5_000);
    let mut ws = connect(&learner);
    let client = thread::spawn(move || {
        let mut got = vec![call(
            &mut ws,
            json!({"reset": {"agents": [{"agent": 1, "observation": [0.5, 0.0]}]}}),
        )];
        for x in [1.0, 2.0, 3.0] {
            if x == 3.0 {
                thread::sleep(Duration::from_millis(500));
            }
            got.push(call(
                &mut ws,
                json!({"step": {"agents": [{"agent": 1, "reward": 1.0, "observation": [x, 0.0]}]}}),
            ));
        }
        got
    });
    learner.reset(0).unwrap();
    learner.step(&[2.0]).unwrap();
    assert_eq!((learner.obs()[0], learner.rewards()[0]), (1.0, 1.0));
    // Learning: meanwhile the client is answered with its last action, held.
    thread::sleep(Duration::from_millis(300));
    // Back: the action for observation 1.0 is too late, so the segment is
    // cut there, and the row follows the agent's next fresh observation.
    learner.step(&[1.0]).unwrap();
    assert!(learner.truncated()[0] && !learner.terminated()[0]);
    assert_eq!(learner.rewards()[0], 0.0);
    assert_eq!(learner.final_observation(0).unwrap()[0], 1.0);
    assert_eq!(learner.obs()[0], 3.0);
    assert_eq!(learner.active().unwrap(), &[true]);
    // The client gone, the learner waits for clients and then says so.
    let none = learner.step(&[0.0]).unwrap_err().to_string();
    assert!(none.contains("no env client"), "{none}");
    let got = client.join().unwrap();
    let answers: Vec<(f64, bool)> = got
        .iter()
        .zip(["reset", "step", "step", "step"])
        .map(|(r, kind)| action_of(r, kind, 1))
        .collect();
    assert_eq!(
        answers,
        vec![(2.0, false), (2.0, true), (2.0, true), (0.0, false)]
    );
    assert_eq!(learner.counters().held_actions, 2);
}

#[test]
fn garbage_is_refused_and_the_connection_goes_on() {
    let learner = batch(1, 20, 5_000);
    let mut ws = connect(&learner);
    let code = |r: &Value| r["error"]["code"].as_str().unwrap_or("").to_string();
    for (bad, want) in [
        (json!("not an object"), "INVALID_ARGUMENT"),
        (json!({"id": 3, "stepp": {}}), "INVALID_ARGUMENT"),
        (
            json!({"join_world": {"spec": {"observation_space": {"discrete": {"n": 2}},
            "action_space": {"discrete": {"n": 3}}}}}),
            "INVALID_ARGUMENT",
        ),
        (
            json!({"reset": {"agents": [{"agent": 1, "observation": [0.5]}]}}),
            "INVALID_ARGUMENT",
        ),
        (
            json!({"reset": {"agents": [{"agent": 1, "observation": [0.5, 99.0]}]}}),
            "INVALID_ARGUMENT",
        ),
        (
            json!({"reset": {"agents": [{"agent": 1, "observation": [0.5, 0.0], "reward": 1.0}]}}),
            "INVALID_ARGUMENT",
        ),
        (
            json!({"step": {"agents": [{"agent": 4, "reward": 1.0, "observation": [0.5, 0.0]}]}}),
            "FAILED_PRECONDITION",
        ),
        (
            json!({"reset": {"agents": [{"agent": 1, "observation": [0.5, 0.0]},
            {"agent": 1, "observation": [0.5, 0.0]}]}}),
            "INVALID_ARGUMENT",
        ),
    ] {
        let r = call(&mut ws, bad.clone());
        assert_eq!(code(&r), want, "{bad} -> {r}");
        assert!(!r["error"]["message"].as_str().unwrap().is_empty());
    }
    ws.send(Message::text("{\"step\": [1, 2")).unwrap();
    let Message::Text(t) = ws.read().unwrap() else {
        panic!()
    };
    assert!(t.contains("INVALID_ARGUMENT"), "{t}");
    // NaN cannot be written in JSON; in MessagePack it can.
    let nan = rmp_serde::to_vec_named(&json!({"reset": {"agents": [{"agent": 1,
        "observation": [f32::NAN, 0.0]}]}}))
    .unwrap();
    ws.send(Message::binary(nan)).unwrap();
    let Message::Binary(b) = ws.read().unwrap() else {
        panic!("binary in, binary out")
    };
    let r = rmp_serde_value(&b);
    assert_eq!(code(&r), "INVALID_ARGUMENT", "{r}");
    // And a good request still works (held, the learner is not stepping).
    let r = call(
        &mut ws,
        json!({"id": 9, "reset": {"agents": [{"agent": 1, "observation": [0.5, 0.0]}]}}),
    );
    assert_eq!(r["id"], 9);
    assert_eq!(action_of(&r, "reset", 1), (0.0, true));
    assert_eq!(learner.counters().refused, 10);
}

#[test]
fn a_dropped_client_cuts_its_rows_and_a_new_one_takes_them() {
    let mut learner = batch(2, 5_000, 300);
    let addr = learner.addr();
    let dropper = thread::spawn(move || {
        let mut ws = tungstenite::connect(format!("ws://{addr}/")).unwrap().0;
        call(
            &mut ws,
            json!({"reset": {"agents": [{"agent": 0, "observation": [1.0, 0.0]},
                {"agent": 1, "observation": [2.0, 0.0]}]}}),
        );
        // Gone without a word.
        drop(ws);
    });
    learner.reset(0).unwrap();
    assert_eq!(learner.active().unwrap(), &[true, true]);
    let newcomer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        let mut ws = tungstenite::connect(format!("ws://{addr}/")).unwrap().0;
        let r = call(
            &mut ws,
            json!({"reset": {"agents": [{"agent": 5, "observation": [3.0, 0.0]}]}}),
        );
        (ws, r)
    });
    learner.step(&[1.0, 1.0]).unwrap();
    dropper.join().unwrap();
    // Both rows cut at the observations acted on; the newcomer followed.
    assert_eq!(learner.truncated(), &[true, true]);
    assert_eq!(learner.final_observation(0).unwrap()[0], 1.0);
    assert_eq!(learner.final_observation(1).unwrap()[0], 2.0);
    assert_eq!(learner.active().unwrap().iter().filter(|&&a| a).count(), 1);
    assert_eq!(learner.obs()[0], 3.0);
    let _ = learner.step(&[2.0, 0.0]);
    let (_ws, r) = newcomer.join().unwrap();
    assert_eq!(action_of(&r, "reset", 5), (2.0, false));
    assert_eq!(learner.counters().disconnects, 1);
}

#[test]
fn a_stalled_agent_is_cut_and_picked_up_again() {
    let mut learner = batch(1, 5_000, 100);
    let mut ws = connect(&learner);
    let client = thread::spawn(move || {
        call(
            &mut ws,
            json!({"reset": {"agents": [{"agent": 0, "observation": [1.0, 0.0]}]}}),
        );
        thread::sleep(Duration::from_millis(400));
        let r = call(
            &mut ws,
            json!({"step": {"agents": [{"agent": 0, "reward": 1.0, "observation": [2.0, 0.0]}]}}),
        );
        (ws, r)
    });
    learner.reset(0).unwrap();
    // The outcome comes after the stall timeout: the segment is cut, and
    // the learner waits for the agent's late observation as a new one.
    learner.step(&[1.0]).unwrap();
    assert!(learner.truncated()[0]);
    assert_eq!(learner.obs()[0], 2.0);
    assert_eq!(learner.counters().stalls, 1);
    let _ = learner.step(&[2.0]);
    let (_ws, r) = client.join().unwrap();
    assert_eq!(action_of(&r, "step", 0), (2.0, false));
}

#[test]
fn a_client_cannot_grow_the_learners_memory_without_bound() {
    let learner = batch(1, 5, 5_000);
    let mut ws = connect(&learner);
    let firsts = |from: u32| -> Value {
        let agents: Vec<Value> = (from..from + 4096)
            .map(|a| json!({"agent": a, "step_type": "first", "observation": [0.0, 0.0]}))
            .collect();
        json!({"step": {"agents": agents}})
    };
    // 4096 agents are allowed (all but one held: one slot).
    let r = call(&mut ws, firsts(0));
    assert_eq!(
        r["step"]["actions"].as_array().unwrap().len(),
        4096,
        "{}",
        &r.to_string()[..200]
    );
    // 4096 more, while those play, are not.
    let r = call(&mut ws, firsts(4096));
    assert_eq!(r["error"]["code"], "INVALID_ARGUMENT");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 4096"),
        "{r}"
    );
}
