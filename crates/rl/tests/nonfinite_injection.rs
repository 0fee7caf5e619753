//! NaN and infinity injected mid-run: into what an environment hands the
//! learner (observations, rewards, returns that overflow), and into the
//! gradients. Each time the update of that rollout is skipped and recorded,
//! the doctor reports it, and the run goes on (or rolls back, when
//! configured) to its end with finite weights.

use std::path::{Path, PathBuf};

use hlynr_env::{Env, EpisodeStatistics, Step, TimeLimit, VecEnv, classic, config::resolve};
use hlynr_rl::metrics::read_metrics;
use hlynr_rl::progress::ProgressMode;
use hlynr_rl::trainer::{EnvFactory, RunConfig, RunLocation, TrainStatus, Trainer, Value};
use hlynr_testkit::tampered::{StepHook, Tampered};

/// What to corrupt.
#[derive(Clone, Copy, Debug)]
enum Fault {
    ObsNan,
    ObsInf,
    RewardNan,
    RewardInf,
    /// The largest finite reward on two consecutive steps: the discounted
    /// return overflows to infinity.
    RewardHuge,
}

/// Corrupts step `at` of an env's run as `fault` says (a huge reward is
/// repeated on the next step, so the discounted return overflows).
fn injector(fault: Fault, at: u64) -> StepHook {
    Box::new(move |step, obs, s| {
        if matches!(fault, Fault::RewardHuge) && step == at + 1 {
            s.reward = f64::from(f32::MAX);
        }
        if step == at {
            match fault {
                Fault::ObsNan => obs[1] = f32::NAN,
                Fault::ObsInf => obs[2] = f32::NEG_INFINITY,
                Fault::RewardNan => s.reward = f64::NAN,
                Fault::RewardInf => s.reward = f64::INFINITY,
                Fault::RewardHuge => s.reward = f64::from(f32::MAX),
            }
        }
        Ok(())
    })
}

#[derive(Debug)]
struct Factory {
    fault: Fault,
    at: u64,
}

fn cartpole() -> EpisodeStatistics<TimeLimit<Box<dyn Env>>> {
    EpisodeStatistics::new(TimeLimit::new(classic::make("CartPole-v1").unwrap(), 500).unwrap())
}

impl EnvFactory for Factory {
    fn make_train(&self, n_envs: usize) -> hlynr_rl::trainer::Result<Box<dyn hlynr_env::BatchEnv>> {
        // Env 0 is corrupted; the others run clean.
        let env = VecEnv::from_fn(n_envs, |i| {
            let hook = if i == 0 {
                injector(self.fault, self.at)
            } else {
                Box::new(|_: u64, _: &mut [f32], _: &mut Step| Ok(()))
            };
            Tampered::new(cartpole(), hook)
        })?;
        Ok(Box::new(env))
    }
    fn make_eval(&self) -> hlynr_env::Result<Box<dyn Env>> {
        Ok(Box::new(cartpole()))
    }
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hlynr-inject-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 2 envs x 64 steps per update, 12 updates; the fault comes in env 0's
/// 300th step, which belongs to rollout 5 (each env's steps 257-320, run
/// steps 513-640).
fn train(tag: &str, fault: Fault, extra: &str) -> (PathBuf, Trainer) {
    let dir = scratch_dir(tag);
    // Reward normalisation would clip a huge reward to an ordinary one.
    let norm_reward = !matches!(fault, Fault::RewardHuge);
    let text = format!(
        "env: {{id: CartPole-v1}}\nseed: 4\n\
         n_envs: 2\ntotal_timesteps: 1536\nppo: {{n_steps: 64, batch_size: 64, n_epochs: 2, \n\
           learning_rate: 1.0e-3, normalize_observations: true, normalize_reward: {norm_reward},\n\
           policy: {{net_arch: [16]}}}}\n\
         run: {{checkpoint_every_steps: 256, eval_every_steps: 256, eval_episodes: 2}}\n{extra}"
    );
    let (config, resolved): (RunConfig, Value) = resolve(&text, "test", &[] as &[&str]).unwrap();
    let mut t = Trainer::create(
        config,
        &resolved,
        Box::new(Factory { fault, at: 300 }),
        &RunLocation {
            runs_dir: dir.clone(),
            name: "inject".into(),
            command_line: vec!["test".into()],
        },
        ProgressMode::Quiet,
    )
    .unwrap();
    let out = t.train(None, None).unwrap();
    assert_eq!(out.status, TrainStatus::Completed, "{tag}");
    (dir, t)
}

/// `(step, value)` of a metric over the run.
fn series(run: &Path, key: &str) -> Vec<(u64, f64)> {
    read_metrics(&run.join("metrics.jsonl"))
        .unwrap()
        .series(key)
}

fn doctor_rules(run: &Path) -> Vec<(String, u64)> {
    read_metrics(&run.join("metrics.jsonl"))
        .unwrap()
        .events()
        .into_iter()
        .filter(|(_, e)| e.kind == "doctor" || e.kind == "rollback")
        .map(|(step, e)| {
            let rule = e.fields.get("rule").and_then(|r| r.as_str()).unwrap_or("");
            (format!("{}:{rule}", e.kind), step)
        })
        .collect()
}

fn check(tag: &str, fault: Fault) {
    let (dir, t) = train(tag, fault, "");
    let run = t.run_dir().to_path_buf();
    // Exactly the update of the corrupted rollout was skipped; every other
    // update ran.
    let skips: Vec<u64> = series(&run, "train/nonfinite_skip")
        .into_iter()
        .filter(|&(_, v)| v == 1.0)
        .map(|(s, _)| s)
        .collect();
    assert_eq!(skips, vec![640], "{tag}: skipped updates at {skips:?}");
    // The doctor records it (informational: one skip is already recovered)
    // and raises nothing else.
    let rules = doctor_rules(&run);
    assert_eq!(rules, vec![("doctor:nonfinite".to_string(), 640)], "{tag}");
    if matches!(fault, Fault::ObsNan | Fault::ObsInf) {
        assert_eq!(
            series(&run, "rollout/nonfinite_obs"),
            vec![(640, 1.0)],
            "{tag}"
        );
    }
    // The run went on and its network is finite.
    assert!(
        series(&run, "train/value_loss")
            .iter()
            .any(|&(s, _)| s > 640)
    );
    let weights = t.algorithm().export_state().unwrap().weights;
    assert!(
        weights
            .values()
            .all(|w| w.data().iter().all(|v| v.is_finite())),
        "{tag}"
    );
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nan_observation_skips_one_update_and_the_run_goes_on() {
    check("obs-nan", Fault::ObsNan);
}

#[test]
fn infinite_observation_skips_one_update_and_the_run_goes_on() {
    check("obs-inf", Fault::ObsInf);
}

#[test]
fn nan_reward_skips_one_update_and_the_run_goes_on() {
    check("reward-nan", Fault::RewardNan);
}

#[test]
fn infinite_reward_skips_one_update_and_the_run_goes_on() {
    check("reward-inf", Fault::RewardInf);
}

#[test]
fn overflowing_returns_skip_one_update_and_the_run_goes_on() {
    check("reward-huge", Fault::RewardHuge);
}

/// At the learner's level: the skipped update leaves the weights and the
/// optimiser step count where they were, and the next rollout trains.
#[test]
fn a_skipped_update_restores_the_parameters_and_the_next_one_trains() {
    use hlynr_rl::ppo::{Ppo, PpoConfig};
    let cfg: PpoConfig = hlynr_env::config::from_yaml_str(
        "n_steps: 16\nbatch_size: 8\nn_epochs: 2\n\
         policy: {net_arch: [16, 16]}\n",
        "t",
    )
    .unwrap();
    let factory = Factory {
        fault: Fault::RewardNan,
        at: 20,
    };
    let mut ppo = Ppo::new(cfg, factory.make_train(2).unwrap(), 3, 256).unwrap();
    let m1 = ppo.iterate().unwrap();
    assert!(!m1.nonfinite_skipped);
    let weights = ppo.policy().state_dict();
    let opt_steps = ppo.counters().gradient_steps;
    let m2 = ppo.iterate().unwrap(); // env 0's step 20 is in the second rollout
    assert!(m2.nonfinite_skipped && m2.nonfinite_skips == 1, "{m2:?}");
    assert_eq!(
        ppo.policy().state_dict(),
        weights,
        "parameters were not restored"
    );
    assert_eq!(ppo.counters().gradient_steps, opt_steps);
    let m3 = ppo.iterate().unwrap();
    assert!(!m3.nonfinite_skipped && m3.nonfinite_skips == 1);
    assert_ne!(ppo.policy().state_dict(), weights);
}

/// Gradients that overflow while the rollout is finite: a value head scaled
/// to 1e30 gives values of about 1e30, and backpropagating their error
/// through it exceeds f32. The update is abandoned, the weights it started
/// from are kept, and the next rollout trains normally once they are sane.
#[test]
fn overflowing_gradients_abandon_the_update_and_keep_the_weights() {
    use hlynr_rl::env_factory::make_classic_vec_env;
    use hlynr_rl::ppo::{Ppo, PpoConfig};
    let cfg: PpoConfig = hlynr_env::config::from_yaml_str(
        "n_steps: 32\nbatch_size: 32\nn_epochs: 2\n\
         policy: {net_arch: [8]}\n",
        "t",
    )
    .unwrap();
    let env = make_classic_vec_env(
        &hlynr_env::config::from_yaml_str::<RunConfig>("env: {id: CartPole-v1}\n", "t")
            .unwrap()
            .env,
        2,
    )
    .unwrap();
    let mut ppo = Ppo::new(cfg, env, 1, 1024).unwrap();
    assert!(!ppo.iterate().unwrap().nonfinite_skipped);
    for (name, p) in ppo.policy_mut().named_params_mut() {
        if name == "value_net.weight" {
            p.value.data_mut().fill(1e30);
        }
    }
    let poked = ppo.policy().state_dict();
    let m = ppo.iterate().unwrap();
    assert!(m.nonfinite_skipped && m.nonfinite_skips == 1, "{m:?}");
    assert_eq!(
        ppo.policy().state_dict(),
        poked,
        "the abandoned update changed weights"
    );
    assert!(m.scalars().iter().all(|(k, _)| *k != "train/value_loss"));
}

#[test]
fn a_rollback_doctor_restores_best_after_a_nonfinite_update() {
    let (dir, t) = train(
        "rollback",
        Fault::ObsNan,
        "doctor: {nonfinite: {skips_in_a_row: 1, action: rollback}}\n",
    );
    let rules = doctor_rules(t.run_dir());
    assert!(
        rules.contains(&("rollback:nonfinite".to_string(), 640)),
        "{rules:?}"
    );
    assert_eq!(t.algorithm().lr_scale(), 0.5);
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}
