//! Learner-level tests: determinism, exact resume, learning CartPole, and
//! (ignored, run in release) the statistical acceptance tests.

use std::ops::ControlFlow;
use std::time::Instant;

use hlynr_env::config::from_yaml_str;
use hlynr_env::{BatchEnv, VecNormalize, VecNormalizeConfig};
use hlynr_rl::env_factory::{ClassicVecEnv, make_classic_vec_env};
use hlynr_rl::model_policy::ModelPolicy;
use hlynr_rl::policy::ActorCritic;
use hlynr_rl::ppo::{KlCheck, Ppo, PpoConfig, PpoMeta, PpoMetrics, PpoState};
use hlynr_rl::trainer::RunConfig;

/// The schedules' horizon of the small configs (env steps).
const SMALL_TOTAL: u64 = 256;

/// A small PPO config for 2 envs; the top-level keys of `extra` replace the
/// defaults'.
fn small_config(extra: &str) -> PpoConfig {
    let mut config = hlynr_env::config::parse_yaml(
        "n_steps: 16\nbatch_size: 8\nn_epochs: 2\n\
         learning_rate: {type: linear, initial: 1.0e-3}\npolicy: {net_arch: [16, 16]}\n",
        "test",
    )
    .unwrap();
    let extra = hlynr_env::config::parse_yaml(extra, "extra").unwrap();
    for (k, v) in extra.as_object().unwrap() {
        config[k.as_str()] = v.clone();
    }
    let config: PpoConfig = hlynr_env::config::from_value(&config).unwrap();
    hlynr_env::config::Validate::validate(&config, "").unwrap();
    config
}

fn cartpole(n: usize) -> ClassicVecEnv {
    make_classic_vec_env(
        &from_yaml_str::<RunConfig>("env: {id: CartPole-v1}\n", "t")
            .unwrap()
            .env,
        n,
    )
    .unwrap()
}

#[test]
fn a_model_given_the_wrong_observation_width_names_both_widths() {
    for extra in ["", "normalize_observations: true\n"] {
        let ppo = Ppo::new(small_config(extra), cartpole(2), 0, SMALL_TOTAL).unwrap();
        let mut model = ModelPolicy::new("cart", ppo.policy_snapshot().unwrap());
        let mut actions = [0.0f32; 1];
        let input = hlynr_env::PolicyInput {
            n: 1,
            obs: &[0.0; 12],
            obs_bytes: &[],
            controller_view: &[],
        };
        let e = hlynr_env::Policy::act(&mut model, &input, true, &mut actions).unwrap_err();
        assert!(e.contains("`cart` takes 4") && e.contains("got 12"), "{e}");
        let input = hlynr_env::PolicyInput {
            obs: &[0.0; 4],
            ..input
        };
        hlynr_env::Policy::act(&mut model, &input, true, &mut actions).unwrap();
    }
}

#[test]
fn same_seed_gives_identical_weights_and_different_seed_does_not() {
    let cfg = small_config("");
    let run = |seed| {
        let mut ppo = Ppo::new(cfg.clone(), cartpole(2), seed, SMALL_TOTAL).unwrap();
        let before = ppo.policy().state_dict();
        let m = ppo.iterate().unwrap();
        assert_ne!(before, ppo.policy().state_dict(), "update changed nothing");
        (ppo.policy().state_dict(), m)
    };
    let (a, ma) = run(7);
    let (b, mb) = run(7);
    assert_eq!(a, b);
    assert_eq!(ma, mb);
    assert_ne!(a, run(8).0);
    // 2 epochs of 32 samples in minibatches of 8; the policy moved, so the
    // recorded KL between the rollout's policy and the updated one is positive.
    assert!(
        ma.approx_kl > 0.0 && ma.gradient_steps == 8 && ma.n_updates == 2,
        "{ma:?}"
    );
}

fn last_metrics(ppo: &mut Ppo<impl BatchEnv>, until: u64) -> PpoMetrics {
    let mut last = None;
    ppo.learn(until, |_, m| {
        last = Some(m.clone());
        ControlFlow::Continue(())
    })
    .unwrap();
    last.unwrap()
}

#[test]
fn resume_from_exported_state_is_bitwise_exact() {
    let cfg = small_config(
        "normalize_observations: true\nnormalize_reward: true\nnormalize_returns: true\n\
         target_kl: 0.01\nkl_check: epoch\nclip_range: {type: cosine, initial: 0.3, final: 0.1}\n\
         policy: {net_arch: [16, 16], log_std_init: 0.0}\n",
    );
    let mut straight = Ppo::new(cfg.clone(), cartpole(2), 11, SMALL_TOTAL).unwrap();
    let m_straight = last_metrics(&mut straight, 256);

    let mut first = Ppo::new(cfg.clone(), cartpole(2), 11, SMALL_TOTAL).unwrap();
    last_metrics(&mut first, 128);
    let state = first.export_state().unwrap();
    drop(first);
    // The scalar part goes through JSON text, as a checkpoint stores it.
    let meta: PpoMeta = serde_json::from_str(&serde_json::to_string(&state.meta).unwrap()).unwrap();
    assert_eq!(meta, state.meta);
    let state = PpoState { meta, ..state };
    let mut resumed = Ppo::new(cfg.clone(), cartpole(2), 999, SMALL_TOTAL).unwrap();
    resumed.import_state(&state).unwrap();
    let m_resumed = last_metrics(&mut resumed, 256);
    assert_eq!(
        resumed.policy().state_dict(),
        straight.policy().state_dict()
    );
    assert_eq!(m_resumed, m_straight);
    assert_eq!(
        resumed.export_state().unwrap(),
        straight.export_state().unwrap()
    );

    // A different config is refused and leaves the trainer untouched.
    let mut other = Ppo::new(small_config("n_epochs: 3\n"), cartpole(2), 1, SMALL_TOTAL).unwrap();
    let before = other.policy().state_dict();
    assert!(
        other
            .import_state(&state)
            .unwrap_err()
            .to_string()
            .contains("config")
    );
    assert_eq!(other.policy().state_dict(), before);
}

#[test]
fn kl_early_stop_per_minibatch_stops_before_the_step() {
    let cfg = small_config("target_kl: 1.0e-9\nkl_factor: 1.5\nlearning_rate: 0.01\n");
    assert_eq!(cfg.kl_check, KlCheck::Minibatch);
    let mut ppo = Ppo::new(cfg, cartpole(2), 5, SMALL_TOTAL).unwrap();
    let m = ppo.iterate().unwrap();
    // The first minibatch has ratio 1 (KL 0), the second exceeds the limit.
    assert!(
        m.kl_stopped && m.kl_stop_minibatch == Some(1) && m.epochs == 0,
        "{m:?}"
    );
    assert_eq!(m.gradient_steps, 1);
}

// ---------------------------------------------------------------------------
// Statistical acceptance (release: cargo test -p hlynr-rl --release -- --ignored --nocapture)

fn load(name: &str) -> RunConfig {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name);
    hlynr_env::config::resolve_file::<RunConfig, &str>(&path, &[])
        .unwrap()
        .0
}

/// Mean undiscounted return of `episodes` deterministic episodes (one per
/// eval env), observations normalised with the trainer's frozen statistics.
fn evaluate<B: BatchEnv>(ppo: &Ppo<B>, cfg: &RunConfig, episodes: usize, seed: u64) -> f64 {
    let inner = make_classic_vec_env(&cfg.env, episodes).unwrap();
    let mut env = VecNormalize::new(
        inner,
        VecNormalizeConfig {
            norm_obs: cfg.ppo_config().unwrap().normalize_observations,
            norm_reward: false,
            ..VecNormalizeConfig::default()
        },
    )
    .unwrap();
    env.reset(seed).unwrap();
    if let Some(n) = ppo.env().obs_normalizer() {
        env.set_obs_normalizer(n.clone()).unwrap();
    }
    env.freeze();
    let act_dim = env.act_dim();
    let mut actions = vec![0.0f32; episodes * act_dim];
    let mut returns: Vec<Option<f64>> = vec![None; episodes];
    let mut rng = hlynr_rng::Rng::seed_from_u64(0);
    // A copy of the network, so a recurrent policy's rollout memory is untouched.
    let mut net = ActorCritic::new(
        env.observation_space(),
        env.action_space(),
        &cfg.ppo_config().unwrap().policy,
        &mut rng.clone(),
    )
    .unwrap();
    net.load_state_dict(&ppo.policy().state_dict()).unwrap();
    let (mut raw, mut lp, mut v) = (actions.clone(), vec![0.0; episodes], vec![0.0; episodes]);
    while returns.iter().any(Option::is_none) {
        net.act(
            hlynr_env::ObsRef::values(env.obs()),
            episodes,
            true,
            &mut rng,
            &mut raw,
            &mut actions,
            &mut lp,
            &mut v,
        )
        .unwrap();
        env.step(&actions).unwrap();
        for (i, info) in env.infos().iter().enumerate() {
            if let (None, Some(ep)) = (returns[i], info.episode) {
                returns[i] = Some(ep.episode_return);
            }
        }
    }
    returns.iter().map(|r| r.unwrap()).sum::<f64>() / episodes as f64
}

fn acceptance(config: &str, threshold: f64, required: usize) {
    let mut passed = 0;
    for seed in 0..5 {
        let cfg = load(config);
        let env = make_classic_vec_env(&cfg.env, cfg.n_envs).unwrap();
        let start = Instant::now();
        let mut ppo = Ppo::new(
            cfg.ppo_config().unwrap().clone(),
            env,
            seed,
            cfg.total_timesteps,
        )
        .unwrap();
        ppo.learn(cfg.total_timesteps, |_, _| ControlFlow::Continue(()))
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        let score = evaluate(&ppo, &cfg, 20, 1000 + seed);
        println!(
            "{config} seed {seed}: eval mean return {score:.1} over 20 episodes, train wall-clock {secs:.2} s ({} steps, ep_rew_mean {:?})",
            ppo.counters().num_timesteps,
            ppo.episodes().mean_return()
        );
        passed += usize::from(score >= threshold);
    }
    assert!(
        passed >= required,
        "{config}: {passed} of 5 seeds reached {threshold}"
    );
}

/// Runs in the default test command, so a change that stops PPO from
/// learning fails CI: the shipped CartPole config, one seed, its full 100k
/// steps, then 20 deterministic episodes on seeds not used in training.
#[test]
fn cartpole_learns_from_the_shipped_config() {
    let cfg = load("cartpole_ppo.yaml");
    let env = make_classic_vec_env(&cfg.env, cfg.n_envs).unwrap();
    let mut ppo = Ppo::new(
        cfg.ppo_config().unwrap().clone(),
        env,
        0,
        cfg.total_timesteps,
    )
    .unwrap();
    let before = evaluate(&ppo, &cfg, 20, 1000);
    ppo.learn(cfg.total_timesteps, |_, _| ControlFlow::Continue(()))
        .unwrap();
    let after = evaluate(&ppo, &cfg, 20, 1000);
    println!(
        "CartPole-v1, shipped config, seed 0: eval mean return {before} untrained, {after} after 100k steps"
    );
    assert!(
        before < 100.0,
        "the untrained policy already scores {before}"
    );
    assert!(after >= 475.0, "eval mean return {after} after 100k steps");
}

#[test]
#[ignore = "statistical acceptance; run in release"]
fn cartpole_reaches_475_in_100k_steps_for_5_of_5_seeds() {
    acceptance("cartpole_ppo.yaml", 475.0, 5);
}

#[test]
#[ignore = "statistical acceptance; run in release"]
fn pendulum_reaches_minus_250_in_200k_steps_for_4_of_5_seeds() {
    acceptance("pendulum_ppo.yaml", -250.0, 4);
}

/// Trains `config` for each seed, evaluating every `eval_every` env steps on
/// 20 episodes and keeping the best weights (as `best/` does); returns the
/// best weights' mean return on 100 fresh episodes per seed.
fn best_scores(config: &str, seeds: u64, eval_every: u64) -> Vec<f64> {
    (0..seeds)
        .map(|seed| {
            let cfg = load(config);
            let env = make_classic_vec_env(&cfg.env, cfg.n_envs).unwrap();
            let start = Instant::now();
            let mut ppo = Ppo::new(cfg.ppo_config().unwrap().clone(), env, seed, cfg.total_timesteps).unwrap();
            let (mut best, mut best_state, mut next_eval) = (f64::MIN, None, eval_every);
            while ppo.counters().num_timesteps < cfg.total_timesteps {
                ppo.iterate().unwrap();
                let step = ppo.counters().num_timesteps;
                if step >= next_eval || step >= cfg.total_timesteps {
                    next_eval += eval_every;
                    let score = evaluate(&ppo, &cfg, 20, 500 + seed);
                    if score > best {
                        best = score;
                        best_state = Some(ppo.export_state().unwrap());
                    }
                }
            }
            let secs = start.elapsed().as_secs_f64();
            let mut best_ppo = Ppo::new(
                cfg.ppo_config().unwrap().clone(),
                make_classic_vec_env(&cfg.env, cfg.n_envs).unwrap(),
                seed,
                cfg.total_timesteps,
            )
            .unwrap();
            best_ppo.import_state(&best_state.unwrap()).unwrap();
            let score = evaluate(&best_ppo, &cfg, 100, 2000 + seed);
            println!(
                "{config} seed {seed}: best weights (20-episode eval {best:.1}, step {}) score {score:.1} over 100 fresh episodes; {} steps in {secs:.1} s",
                best_ppo.counters().num_timesteps,
                ppo.counters().num_timesteps
            );
            score
        })
        .collect()
}

#[test]
#[ignore = "statistical acceptance; run in release"]
fn lstm_solves_cartpole_without_velocities_within_200k_steps_for_3_of_3_seeds() {
    let scores = best_scores("cartpole_novel_lstm.yaml", 3, 20_000);
    assert!(scores.iter().all(|&s| s >= 475.0), "{scores:?}");
}

#[test]
#[ignore = "statistical acceptance; run in release"]
fn mlp_cannot_solve_cartpole_without_velocities() {
    let scores = best_scores("cartpole_novel_mlp.yaml", 3, 20_000);
    assert!(scores.iter().all(|&s| s < 150.0), "{scores:?}");
}

#[test]
fn frame_stack_from_the_env_config_widens_the_observation() {
    let cfg: RunConfig =
        from_yaml_str("env: {id: CartPoleNoVel-v1, frame_stack: 3}\n", "t").unwrap();
    let env = make_classic_vec_env(&cfg.env, 2).unwrap();
    assert_eq!(env.obs_dim(), 3 * 2);
    let mut ppo = Ppo::new(small_config(""), env, 1, SMALL_TOTAL).unwrap();
    ppo.iterate().unwrap();
    assert_eq!(ppo.policy().obs_dim(), 6);
    let err = from_yaml_str::<RunConfig>("env: {id: CartPoleNoVel-v1, frame_stack: 0}\n", "t")
        .unwrap_err()
        .to_string();
    assert!(err.contains("env.frame_stack"), "{err}");
}

#[test]
fn recurrent_resume_from_exported_state_is_bitwise_exact() {
    let cfg = small_config(
        "bptt_length: 8\nnormalize_observations: true\n\
         policy: {type: lstm, lstm_hidden_size: 8, net_arch: [8]}\n",
    );
    let novel = || {
        make_classic_vec_env(
            &from_yaml_str::<RunConfig>("env: {id: CartPoleNoVel-v1}\n", "t")
                .unwrap()
                .env,
            2,
        )
        .unwrap()
    };
    let mut straight = Ppo::new(cfg.clone(), novel(), 4, SMALL_TOTAL).unwrap();
    let m_straight = last_metrics(&mut straight, 256);
    assert!(m_straight.lstm_saturation.is_some());
    let mut first = Ppo::new(cfg.clone(), novel(), 4, SMALL_TOTAL).unwrap();
    last_metrics(&mut first, 128);
    let state = first.export_state().unwrap();
    assert!(state.meta.recurrent.is_some(), "the LSTM memory is saved");
    let meta: PpoMeta = serde_json::from_str(&serde_json::to_string(&state.meta).unwrap()).unwrap();
    let state = PpoState { meta, ..state };
    let mut resumed = Ppo::new(cfg.clone(), novel(), 99, SMALL_TOTAL).unwrap();
    resumed.import_state(&state).unwrap();
    let m_resumed = last_metrics(&mut resumed, 256);
    assert_eq!(m_resumed, m_straight);
    assert_eq!(
        resumed.export_state().unwrap(),
        straight.export_state().unwrap()
    );
    // A feed-forward trainer refuses a recurrent state.
    let mut mlp = Ppo::new(
        small_config("normalize_observations: true\n"),
        novel(),
        1,
        SMALL_TOTAL,
    )
    .unwrap();
    assert!(mlp.import_state(&state).is_err());
}
