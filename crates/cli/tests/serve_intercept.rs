//! Interception sessions of `hlynr serve` over loopback: a client that
//! replays episodes of the env (sending the true states of every physics
//! step, as a simulator client would) gets the actions the run's policy
//! takes in the env, bit for bit, through the server's own radar, tracker
//! and observation pipeline; bad truth gets a JSON error and the session
//! and the server go on.

use std::path::PathBuf;

use hlynr_env::{Env, Info, ObsMut, PolicyInput};
use hlynr_envs::intercept::InterceptFactory;
use hlynr_intercept::InterceptEnv;
use hlynr_intercept::reward::TerminationReason;
use hlynr_rl::trainer::{bare_policy, load_model, locate_model};
use hlynr_serve::ServeOptions;
use serde_json::{Value, json};

/// A short PPO run on the `hard` scenario (10 Hz radar with latency and
/// link loss, weaving and spiralling threats).
fn train(tag: &str) -> PathBuf {
    let runs = std::env::temp_dir().join(format!("hlynr-serve-icpt-{tag}-{}", std::process::id()));
    hlynr_testkit::train_run(
        env!("CARGO_BIN_EXE_hlynr"),
        &hlynr_testkit::config_file("intercept_ppo.yaml"),
        &runs,
        &[
            "--set",
            "total_timesteps=2048",
            "--set",
            "n_envs=4",
            "--set",
            "ppo.n_steps=256",
            "--set",
            "ppo.batch_size=256",
            "--set",
            "env.settings.scenario=hard",
            "--set",
            "run.final_eval=null",
            "--set",
            "run.eval_every_steps=2048",
            "--set",
            "run.eval_episodes=2",
        ],
    )
}

fn post(a: &ureq::Agent, addr: std::net::SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let mut r = a
        .post(format!("http://{addr}{path}"))
        .send(body.to_string())
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_json().unwrap())
}

/// JSON pointers to every number in `v`.
fn numeric_leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Number(_) => out.push(at),
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                numeric_leaves(x, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, x) in map {
                numeric_leaves(x, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

fn action_bits(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap_or_else(|| panic!("no action in {v}"))
        .iter()
        .map(|x| (x.as_f64().unwrap() as f32).to_bits())
        .collect()
}

#[test]
fn a_session_replaying_episodes_gets_the_envs_actions_bit_for_bit() {
    let run = train("parity");
    let (run_dir, ckpt) = locate_model(&run).unwrap();
    let loaded = load_model(&run_dir, &ckpt).unwrap();
    let scenario = InterceptFactory::new(&loaded.config)
        .unwrap()
        .scenario()
        .clone();
    let mut policy = bare_policy(loaded.policy, &loaded.record).unwrap();
    let mut env = InterceptEnv::new(&scenario).unwrap();
    env.set_truth_recording(true);
    let options = ServeOptions {
        workers: 2,
        ..ServeOptions::default()
    };
    let h = hlynr_serve::spawn(&run, "127.0.0.1:0".parse().unwrap(), options).unwrap();
    let a = hlynr_testkit::http_agent();
    let dim = env.observation_space().flat_dim();
    let act_dim = env.action_space().flat_dim();
    let (mut decisions, mut ends) = (0, Vec::new());
    for seed in [5001u64, 5002, 5003] {
        let mut obs = vec![0.0f32; dim];
        let mut info = Info::default();
        env.reset(Some(seed), ObsMut::values(&mut obs), &mut info)
            .unwrap();
        let body = json!({"seed": seed, "initial": env.truth()});
        let (status, mut answer) = post(&a, h.addr, "/v1/intercept/sessions", &body);
        assert_eq!(status, 201, "{answer}");
        let id = answer["session_id"].as_str().unwrap().to_string();
        loop {
            let mut action = vec![0.0f32; act_dim];
            let input = PolicyInput {
                n: 1,
                obs: &obs,
                obs_bytes: &[],
                controller_view: &[],
            };
            policy.act(&input, true, &mut action).unwrap();
            let bits: Vec<u32> = action.iter().map(|v| v.to_bits()).collect();
            assert_eq!(
                action_bits(&answer["action"]),
                bits,
                "seed {seed}, decision {decisions}: server {} vs env {action:?}",
                answer["action"]
            );
            decisions += 1;
            let mut info = Info::default();
            let step = env
                .step(&action, ObsMut::values(&mut obs), &mut info)
                .unwrap();
            let body = json!({"truth": env.recorded_truth()});
            let path = format!("/v1/intercept/sessions/{id}/step");
            let (status, next) = post(&a, h.addr, &path, &body);
            assert_eq!(status, 200, "{next}");
            if step.terminated || step.truncated {
                assert_eq!(next["done"], true, "{next}");
                let reason = env.termination_reason();
                assert_eq!(next["termination_reason"], reason.name());
                assert_eq!(
                    next["miss_distance_m"].as_f64().unwrap().to_bits(),
                    env.miss_distance_m().to_bits()
                );
                ends.push(reason);
                // The episode is over: more truth is refused, the session stays.
                let (status, over) = post(&a, h.addr, &path, &body);
                assert_eq!(status, 409, "{over}");
                break;
            }
            assert_eq!(next["done"], false, "{next}");
            answer = next;
        }
        assert_eq!(
            a.delete(format!("http://{}/v1/sessions/{id}", h.addr))
                .call()
                .unwrap()
                .status()
                .as_u16(),
            200
        );
    }
    assert!(decisions > 30, "{decisions} decisions");
    assert!(ends.iter().all(|r| *r != TerminationReason::None));
    eprintln!("{decisions} decisions over 3 episodes identical; ends {ends:?}");
    h.stop();
    let _ = std::fs::remove_dir_all(run.parent().unwrap());
}

#[test]
fn bad_truth_gets_a_json_error_and_the_session_goes_on() {
    let run = train("bad");
    let scenario = {
        let (run_dir, ckpt) = locate_model(&run).unwrap();
        let loaded = load_model(&run_dir, &ckpt).unwrap();
        InterceptFactory::new(&loaded.config)
            .unwrap()
            .scenario()
            .clone()
    };
    let mut env = InterceptEnv::new(&scenario).unwrap();
    env.set_truth_recording(true);
    let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
    env.reset(Some(9), ObsMut::values(&mut obs), &mut Info::default())
        .unwrap();
    let initial = env.truth();
    let h = hlynr_serve::spawn(
        &run,
        "127.0.0.1:0".parse().unwrap(),
        ServeOptions::default(),
    )
    .unwrap();
    let a = hlynr_testkit::http_agent();
    let code = |(status, v): (u16, Value)| (status, v["error"]["code"].as_str().map(String::from));
    // Launch must be at time 0; unknown keys and NaN are refused.
    let mut late = initial;
    late.time_s = 1.0;
    let open = |body: Value| code(post(&a, h.addr, "/v1/intercept/sessions", &body));
    assert_eq!(
        open(json!({"seed": 9, "initial": late})),
        (400, Some("bad_truth".into()))
    );
    let mut body = json!({"seed": 9, "initial": initial});
    body["initial"]["threat"]["spin"] = json!(1);
    assert_eq!(open(body), (400, Some("malformed_json".into())));
    let (status, opened) = post(
        &a,
        h.addr,
        "/v1/intercept/sessions",
        &json!({"seed": 9, "initial": initial, "session_id": "ep-9"}),
    );
    assert_eq!(status, 201, "{opened}");
    env.step(&[0.0, 0.0], ObsMut::values(&mut obs), &mut Info::default())
        .unwrap();
    let good = env.recorded_truth().to_vec();
    let step = |body: Value| code(post(&a, h.addr, "/v1/intercept/sessions/ep-9/step", &body));
    // Time running backwards, a negative mass, an empty list, garbage.
    let mut backwards = good.clone();
    backwards.swap(0, 1);
    assert_eq!(
        step(json!({"truth": backwards})),
        (400, Some("bad_truth".into()))
    );
    let mut massless = good.clone();
    massless[0].interceptor.mass_kg = -1.0;
    assert_eq!(
        step(json!({"truth": massless})),
        (400, Some("bad_truth".into()))
    );
    assert_eq!(step(json!({"truth": []})), (400, Some("bad_truth".into())));
    assert_eq!(
        step(json!({"truth": "x"})),
        (400, Some("malformed_json".into()))
    );
    // Nothing bad was taken in: the good truth still steps the session.
    let (status, ok) = post(
        &a,
        h.addr,
        "/v1/intercept/sessions/ep-9/step",
        &json!({"truth": good}),
    );
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["done"], false);
    // Unknown sessions, and plain sessions, are told apart.
    assert_eq!(
        step(json!({"truth": good})).0,
        400,
        "the same truth again runs backwards in time"
    );
    let (_, plain) = post(&a, h.addr, "/v1/sessions", &json!({}));
    let plain_id = plain["session_id"].as_str().unwrap();
    let (status, v) = post(
        &a,
        h.addr,
        &format!("/v1/intercept/sessions/{plain_id}/step"),
        &json!({"truth": good}),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("not_interception"))
    );
    let (status, _) = post(
        &a,
        h.addr,
        "/v1/intercept/sessions/nope/step",
        &json!({"truth": good}),
    );
    assert_eq!(status, 404);

    // Hundreds of valid requests with one value replaced by anything: every
    // answer a 200 or a 4xx JSON error, never a failure of the server.
    let mut rng = hlynr_rng::Rng::seed_from_u64(3);
    let garbage = [
        json!(1e300),
        json!(-1e300),
        json!(1e9),
        json!(-1.0),
        json!(0),
        json!(5e-324),
        json!("x"),
        json!(null),
        json!([]),
        json!({}),
        json!([1, 2]),
    ];
    let good_body = json!({"truth": good});
    let open_body = json!({"seed": 9, "initial": initial});
    let session = |v: &Value| v["session_id"].as_str().unwrap().to_string();
    let end = |id: &str| {
        let url = format!("http://{}/v1/sessions/{id}", h.addr);
        a.delete(url).call().unwrap();
    };
    let mut accepted = 0;
    for k in 0..400 {
        let target_open = k % 4 == 0;
        let mut body = if target_open {
            open_body.clone()
        } else {
            good_body.clone()
        };
        let mut leaves = Vec::new();
        numeric_leaves(&body, String::new(), &mut leaves);
        let leaf = &leaves[rng.below(leaves.len() as u64) as usize];
        *body.pointer_mut(leaf).unwrap() =
            garbage[rng.below(garbage.len() as u64) as usize].clone();
        let status = if target_open {
            let (status, v) = post(&a, h.addr, "/v1/intercept/sessions", &body);
            if status == 201 {
                end(&session(&v));
            }
            status
        } else {
            let (_, v) = post(&a, h.addr, "/v1/intercept/sessions", &open_body);
            let id = session(&v);
            let path = format!("/v1/intercept/sessions/{id}/step");
            let (status, _) = post(&a, h.addr, &path, &body);
            end(&id);
            status
        };
        assert!(
            status == 200 || status == 201 || (400..500).contains(&status),
            "{status} for {body}"
        );
        accepted += usize::from(status < 300);
    }
    assert!(accepted > 0 && accepted < 400, "{accepted} of 400 accepted");
    eprintln!("{accepted} of 400 corrupted requests accepted, the rest refused with 4xx");
    let (status, v) = post(&a, h.addr, "/v1/intercept/sessions", &open_body);
    assert_eq!(status, 201, "the server still serves: {v}");
    h.stop();
    let _ = std::fs::remove_dir_all(run.parent().unwrap());
}
