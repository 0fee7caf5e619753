//! Temporary sweep harness (to be deleted).
use std::ops::ControlFlow;
use std::time::Instant;

use hlynr_env::{BatchEnv, VecNormalize, VecNormalizeConfig};
use hlynr_rl::ppo::{Ppo, TrainConfig, make_classic_vec_env};

fn evaluate<B: BatchEnv>(ppo: &mut Ppo<B>, cfg: &TrainConfig, episodes: usize, seed: u64) -> f64 {
    let inner = make_classic_vec_env(&cfg.env, episodes).unwrap();
    let mut env = VecNormalize::new(
        inner,
        VecNormalizeConfig {
            norm_obs: cfg.ppo.normalize_observations,
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
    let (mut raw, mut lp, mut v) = (actions.clone(), vec![0.0; episodes], vec![0.0; episodes]);
    while returns.iter().any(Option::is_none) {
        ppo.policy_mut()
            .act(env.obs(), episodes, true, &mut rng, &mut raw, &mut actions, &mut lp, &mut v)
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

#[test]
#[ignore]
fn sweep() {
    let path = std::env::var("PSW_CFG").unwrap();
    let sets: Vec<String> = std::env::var("PSW_SET")
        .unwrap_or_default()
        .split(';')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().to_string())
        .collect();
    let seeds: Vec<u64> = std::env::var("PSW_SEEDS")
        .unwrap_or("0,1,2,3,4".into())
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let checkpoints: Vec<u64> = std::env::var("PSW_CK")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let cfg: TrainConfig = hlynr_env::config::resolve_file(std::path::Path::new(&path), &sets)
        .unwrap()
        .0;
    let mut scores = Vec::new();
    let mut line = String::new();
    for &seed in &seeds {
        let env = make_classic_vec_env(&cfg.env, cfg.ppo.n_envs).unwrap();
        let start = Instant::now();
        let mut ppo = Ppo::new(cfg.ppo.clone(), env, seed).unwrap();
        let mut curve = String::new();
        for &ck in &checkpoints {
            ppo.learn(ck, |_, _| ControlFlow::Continue(())).unwrap();
            curve += &format!(" {}k:{:.0}", ck / 1000, evaluate(&mut ppo, &cfg, 20, 1000 + seed));
        }
        ppo.learn(cfg.ppo.total_timesteps, |_, _| ControlFlow::Continue(())).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let score = evaluate(&mut ppo, &cfg, 20, 1000 + seed);
        println!(
            "seed {seed}: eval {score:.1} train {secs:.2}s ep_rew_mean {:.1} std {:?}{curve}",
            ppo.episodes().mean_return().unwrap_or(f64::NAN),
            ppo.policy().mean_std()
        );
        line += &format!(" {score:.0}");
        scores.push(score);
    }
    let pass = scores.iter().filter(|&&s| s >= -250.0).count();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    println!("RESULT [{}] pass {pass}/{} mean {mean:.1} :{line}", sets.join("; "), scores.len());
}
