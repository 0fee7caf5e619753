//! `hlynr train` on env clients over WebSocket (`env.remote`), the clients
//! misbehaving at random: dropping the connection, reconnecting in the
//! middle of an episode, stalling past the learner's patience, sending
//! garbage. Two test clients play CartPole (two agents each) for at least
//! 100 episodes; the run must finish, log its losses, keep valid
//! checkpoints, and answer every bad message with a status.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hlynr_env::{Env, ObsMut};
use hlynr_rng::Rng;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// Episodes are cut by the client at this length, so that a policy that
/// learns still ends episodes often.
const EPISODE_LIMIT: u32 = 60;

#[derive(Debug, Default)]
struct Tally {
    episodes: u64,
    drops: u64,
    reconnects_mid_episode: u64,
    stalls: u64,
    garbage: u64,
    refused_as_expected: u64,
    held: u64,
}

/// Sends `request` (JSON text, or MessagePack when `packed`) and reads its
/// response; `None` when the connection is gone.
fn call(ws: &mut Socket, request: &Value, packed: bool) -> Option<Value> {
    let frame = if packed {
        Message::binary(rmp_serde::to_vec_named(request).unwrap())
    } else {
        Message::text(request.to_string())
    };
    ws.send(frame).ok()?;
    loop {
        match ws.read().ok()? {
            Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
            Message::Binary(b) => return Some(rmp_serde::from_slice(&b).unwrap()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

struct Agent {
    env: Box<dyn Env>,
    obs: Vec<f32>,
    t: u32,
}

impl Agent {
    fn reset(&mut self, seed: u64) -> Value {
        let mut bytes = [];
        self.env
            .reset(
                Some(seed),
                ObsMut::new(&mut self.obs, &mut bytes),
                &mut Default::default(),
            )
            .unwrap();
        self.t = 0;
        json!(self.obs)
    }
}

/// One client: connects (again and again), plays its agents, misbehaves.
fn client(port: u16, seed: u64, stop: Arc<AtomicBool>) -> Tally {
    let mut rng = Rng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let mut agents: Vec<Agent> = (0..2)
        .map(|_| Agent {
            env: hlynr_env::classic::make("CartPole-v1").unwrap(),
            obs: vec![0.0; 4],
            t: 0,
        })
        .collect();
    let mut episode_seed = seed * 1000;
    'connect: while !stop.load(Ordering::Relaxed) {
        let Ok((mut ws, _)) = tungstenite::connect(format!("ws://127.0.0.1:{port}/")) else {
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        let packed = rng.uniform() < 0.5;
        let joined = call(&mut ws, &json!({"join_world": {}}), packed);
        let Some(joined) = joined else { continue };
        assert_eq!(
            joined["join_world"]["spec"]["action_space"]["discrete"]["n"],
            2
        );
        // A reconnect in the middle of an episode: the learner does not
        // know these agents on this connection and says so.
        if agents[0].t > 0 {
            let r = call(
                &mut ws,
                &json!({"step": {"agents": [{"agent": 0, "reward": 1.0, "observation": agents[0].obs}]}}),
                packed,
            );
            let Some(r) = r else { continue };
            assert_eq!(r["error"]["code"], "FAILED_PRECONDITION", "{r}");
            tally.refused_as_expected += 1;
        }
        let first: Vec<Value> = agents
            .iter_mut()
            .enumerate()
            .map(|(i, a)| {
                episode_seed += 1;
                json!({"agent": i, "observation": a.reset(episode_seed)})
            })
            .collect();
        let Some(mut response) = call(&mut ws, &json!({"reset": {"agents": first}}), packed) else {
            continue;
        };
        loop {
            if stop.load(Ordering::Relaxed) {
                break 'connect;
            }
            let Some(actions) = response
                .get("reset")
                .or_else(|| response.get("step"))
                .map(|b| b["actions"].as_array().unwrap().clone())
            else {
                // The learner stopped.
                assert_eq!(response["error"]["code"], "UNAVAILABLE", "{response}");
                continue 'connect;
            };
            let roll = rng.uniform();
            if roll < 0.01 {
                tally.drops += 1;
                if agents.iter().any(|a| a.t > 0) {
                    tally.reconnects_mid_episode += 1;
                }
                continue 'connect;
            }
            if roll < 0.015 {
                tally.stalls += 1;
                thread::sleep(Duration::from_millis(400));
            }
            if roll > 0.97 {
                tally.garbage += 1;
                let bad = match rng.below(4) {
                    0 => Message::text("{\"step\": {\"agents\": [{\"agent\": 0,"),
                    1 => Message::binary(vec![0xc1, 0x00, 0xff, 0x13]),
                    2 => Message::text(
                        json!({"step": {"agents": [{"agent": 0, "reward": 1.0,
                            "observation": [1.0, 2.0]}]}})
                        .to_string(),
                    ),
                    _ => Message::binary(
                        rmp_serde::to_vec_named(&json!({"step": {"agents": [{"agent": 0,
                            "reward": f64::NAN, "observation": agents[0].obs}]}}))
                        .unwrap(),
                    ),
                };
                if ws.send(bad).is_err() {
                    continue 'connect;
                }
                let reply = loop {
                    match ws.read() {
                        Ok(Message::Text(t)) => break serde_json::from_str::<Value>(&t).unwrap(),
                        Ok(Message::Binary(b)) => break rmp_serde::from_slice(&b).unwrap(),
                        Ok(_) => continue,
                        Err(_) => continue 'connect,
                    }
                };
                assert_eq!(reply["error"]["code"], "INVALID_ARGUMENT", "{reply}");
                tally.refused_as_expected += 1;
            }
            let mut entries = Vec::new();
            for a in &actions {
                let i = a["agent"].as_u64().unwrap() as usize;
                tally.held += u64::from(a["held"] == true);
                let action = a["action"][0].as_f64().unwrap() as f32;
                let agent = &mut agents[i];
                let mut bytes = [];
                let step = agent
                    .env
                    .step(
                        &[action],
                        ObsMut::new(&mut agent.obs, &mut bytes),
                        &mut Default::default(),
                    )
                    .unwrap();
                agent.t += 1;
                let step_type = if step.terminated {
                    "terminated"
                } else if step.truncated || agent.t >= EPISODE_LIMIT {
                    "truncated"
                } else {
                    "mid"
                };
                entries.push(json!({"agent": i, "step_type": step_type,
                    "reward": step.reward, "observation": agent.obs}));
                if step_type != "mid" {
                    // The agent's next episode, in the same message.
                    tally.episodes += 1;
                    episode_seed += 1;
                    let first = agent.reset(episode_seed);
                    entries.push(json!({"agent": i, "step_type": "first", "observation": first}));
                }
            }
            let Some(r) = call(&mut ws, &json!({"step": {"agents": entries}}), packed) else {
                continue 'connect;
            };
            response = r;
        }
    }
    tally
}

#[test]
fn training_on_misbehaving_clients_finishes_with_valid_checkpoints() {
    let runs = std::env::temp_dir().join(format!("hlynr-remote-env-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&runs);
    let port = hlynr_testkit::free_port();
    let config = hlynr_testkit::config_file("cartpole_ppo.yaml");
    let remote = format!(
        "env.remote={{listen: \"127.0.0.1:{port}\", act_timeout_ms: 100, stall_timeout_ms: 250, \
         wait_for_clients_s: 60}}"
    );
    let child = hlynr_testkit::train_command(env!("CARGO_BIN_EXE_hlynr"), &config, &runs)
        .args([
            "--set",
            &remote,
            "--set",
            "n_envs=4",
            "--set",
            "total_timesteps=16384",
            "--set",
            "ppo.n_steps=256",
            "--set",
            "run.checkpoint_every_steps=2048",
            "--set",
            "run.eval_every_steps=4096",
            "--set",
            "run.eval_episodes=3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = [11u64, 12]
        .into_iter()
        .map(|seed| {
            let stop = stop.clone();
            thread::spawn(move || client(port, seed, stop))
        })
        .collect();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    stop.store(true, Ordering::Relaxed);
    let tallies: Vec<Tally> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    eprintln!(
        "{:.0} s; clients: {tallies:?}",
        started.elapsed().as_secs_f64()
    );

    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    assert!(sum(|t| t.episodes) >= 100, "{tallies:?}");
    for (what, n) in [
        ("drops", sum(|t| t.drops)),
        ("reconnects mid-episode", sum(|t| t.reconnects_mid_episode)),
        ("stalls", sum(|t| t.stalls)),
        ("garbage", sum(|t| t.garbage)),
        ("held actions", sum(|t| t.held)),
    ] {
        assert!(n > 0, "no {what}: {tallies:?}");
    }
    assert!(
        stderr.contains("remote env: listening on ws://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("refused (INVALID_ARGUMENT)"), "{stderr}");
    assert!(stderr.contains("its segment is cut"), "{stderr}");
    assert!(stderr.contains("agents left with it"), "{stderr}");

    let run = hlynr_testkit::only_entry(&runs);
    let log = hlynr_rl::metrics::read_metrics(&run.join(hlynr_rl::run::METRICS_FILE)).unwrap();
    let losses = log.series("train/value_loss");
    assert!(losses.len() >= 5, "{} value losses logged", losses.len());
    assert!(losses.iter().all(|(_, v)| v.is_finite()));
    assert!(!log.series("episode/remote_cuts").is_empty());
    // The checkpoints load and play the local twin.
    for checkpoint in ["last", "best"] {
        let model = run.join("checkpoints").join(checkpoint);
        let eval = Command::new(env!("CARGO_BIN_EXE_hlynr"))
            .args(["eval", "--env", "CartPole-v1", "--episodes", "3", "--model"])
            .arg(&model)
            .arg("--out")
            .arg(run.join(format!("eval-{checkpoint}")))
            .output()
            .unwrap();
        assert!(
            eval.status.success(),
            "{}",
            String::from_utf8_lossy(&eval.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&runs);
}
