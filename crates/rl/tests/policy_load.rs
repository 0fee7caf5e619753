//! A trained policy loads from its run directory without any environment:
//! the checkpoint declares the spaces and the preprocessing (frozen
//! observation normaliser, frame stack, recurrent memory per episode), and the
//! loaded policy acts exactly as the trainer's own copy did.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use hlynr_env::{Env, Policy, Space};
use hlynr_rl::algorithm::PolicyRecord;
use hlynr_rl::eval::{EvalConfig, PolicyEpisodes, evaluate};
use hlynr_rl::model_policy::ModelPolicy;
use hlynr_rl::progress::ProgressMode;
use hlynr_rl::trainer::{
    ClassicEnvFactory, EnvFactory, Result, RunConfig, RunLocation, Trainer, Value, bare_policy,
    load_model, locate_model, policy_from_record,
};

/// Environments built for the runs, by any route.
static CONSTRUCTED: AtomicUsize = AtomicUsize::new(0);

/// CartPoleNoVel under an id no registry knows (`counted`): loading a model
/// could not build it even if it tried, and every construction is counted.
#[derive(Debug)]
struct Counted(ClassicEnvFactory);

impl EnvFactory for Counted {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn hlynr_env::BatchEnv>> {
        CONSTRUCTED.fetch_add(n_envs, Ordering::SeqCst);
        self.0.make_train(n_envs)
    }
    fn make_eval(&self) -> hlynr_env::Result<Box<dyn Env>> {
        CONSTRUCTED.fetch_add(1, Ordering::SeqCst);
        self.0.make_eval()
    }
}

fn counted(config: &RunConfig) -> Result<Box<dyn EnvFactory>> {
    assert_eq!(config.env.id, "counted");
    let mut env = config.env.clone();
    env.id = "CartPoleNoVel-v1".into();
    Ok(Box::new(Counted(ClassicEnvFactory::new(&env)?)))
}

fn train(root: &Path, name: &str, extra: &str) -> (PathBuf, ModelPolicy) {
    let text = format!(
        "env: {{id: counted, max_episode_steps: 200{extra}}}\nseed: 4\nn_envs: 2\ntotal_timesteps: 1024\n\
         ppo: {{n_steps: 64, batch_size: 64, n_epochs: 2, normalize_observations: true, {}}}\n\
         run: {{eval_every_steps: 512, eval_episodes: 2}}\n",
        if name == "lstm" {
            "policy: {type: lstm, lstm_hidden_size: 8, net_arch: [8]}"
        } else {
            "policy: {net_arch: [16]}"
        }
    );
    let (config, resolved): (RunConfig, Value) =
        hlynr_env::config::resolve(&text, "test", &[] as &[&str]).unwrap();
    let location = RunLocation {
        runs_dir: root.to_path_buf(),
        name: name.into(),
        command_line: vec!["test".into()],
    };
    let mut t =
        Trainer::create_staged(config, &resolved, counted, &location, ProgressMode::Quiet).unwrap();
    t.train(None, None).unwrap();
    let own = ModelPolicy::new("own", t.algorithm().policy().unwrap());
    (t.run_dir().to_path_buf(), own)
}

fn episodes<F>(policy: Box<dyn Policy>, env: F) -> PolicyEpisodes
where
    F: Fn() -> hlynr_env::Result<Box<dyn Env>> + Sync,
{
    let mut policies = vec![policy];
    let mut out = evaluate(&env, &mut policies, &EvalConfig::new(6, 11)).unwrap();
    out.remove(0)
}

fn bare_novel() -> hlynr_env::Result<Box<dyn Env>> {
    Ok(Box::new(hlynr_env::TimeLimit::new(
        hlynr_env::classic::make("CartPoleNoVel-v1")?,
        200,
    )?))
}

#[test]
fn a_run_policy_loads_and_acts_with_no_env_built() {
    let root = std::env::temp_dir().join(format!("hlynr-policy-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (name, extra) in [("stacked", ", frame_stack: 3"), ("lstm", "")] {
        let (run_dir, own) = train(&root, name, extra);
        let built = CONSTRUCTED.load(Ordering::SeqCst);
        let (run, last) = locate_model(&run_dir.join("checkpoints").join("last")).unwrap();
        let loaded = load_model(&run, &last).unwrap();
        // Loading built nothing, and `best/` loads the same way.
        load_model(&run_dir, &run_dir.join("checkpoints").join("best")).unwrap();
        assert_eq!(CONSTRUCTED.load(Ordering::SeqCst), built, "{name}");

        let record = &loaded.record;
        let stack = if name == "stacked" { 3 } else { 1 };
        assert_eq!(record.frame_stack, (stack > 1).then_some(stack));
        assert_eq!(record.observation_space.flat_dim(), 2 * stack);
        assert_eq!(record.action_space, Space::Discrete { n: 2 });
        assert!(record.obs_normalizer.is_some());

        // The loaded policy on bare observations (stacking its own frames)
        // plays exactly the episodes the trainer's copy plays on the wrapped
        // training env.
        let wrapped_config = loaded.config.clone();
        let wrapped = move || {
            let mut env = wrapped_config.env.clone();
            env.id = "CartPoleNoVel-v1".into();
            ClassicEnvFactory::new(&env).unwrap().make_eval()
        };
        let reference = episodes(Box::new(own), wrapped);
        let from_disk = episodes(
            bare_policy(loaded.policy, &loaded.record).unwrap(),
            bare_novel,
        );
        assert_eq!(from_disk.episodes, reference.episodes, "{name}");
        assert!(reference.episodes.iter().any(|e| e.length > 5), "{name}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_record_that_does_not_fit_its_weights_names_both_shapes() {
    let root = std::env::temp_dir().join(format!("hlynr-policy-misfit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (run_dir, _) = train(&root, "stacked", ", frame_stack: 3");
    let checkpoint =
        hlynr_rl::checkpoint::read_checkpoint(&run_dir.join("checkpoints").join("last")).unwrap();
    let saved = hlynr_rl::trainer::saved_run(&checkpoint).unwrap();
    let weights = &saved.state.weights;
    policy_from_record("ppo", &saved.policy, weights).unwrap();

    // Observations of 4 values where the network was trained on 6.
    let narrow = PolicyRecord {
        observation_space: Space::uniform_box(-1.0, 1.0, &[4]),
        obs_normalizer: None,
        frame_stack: None,
        ..saved.policy.clone()
    };
    let e = policy_from_record("ppo", &narrow, weights)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("shape [16, 6], the network expects [16, 4]") && e.contains("shape: [4]"),
        "{e}"
    );
    // A normaliser for another observation size.
    let misfit = PolicyRecord {
        observation_space: Space::uniform_box(-1.0, 1.0, &[4]),
        frame_stack: None,
        ..saved.policy.clone()
    };
    let e = policy_from_record("ppo", &misfit, weights)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the observation normaliser has 6 values") && e.contains("has 4"),
        "{e}"
    );
    // A frame stack that cannot make the observation.
    let odd = PolicyRecord {
        frame_stack: Some(4),
        ..saved.policy.clone()
    };
    let e = policy_from_record("ppo", &odd, weights)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a stack of 4 frames cannot make an observation of 6 values"),
        "{e}"
    );
    // An algorithm this build does not know.
    let e = policy_from_record("sac", &saved.policy, weights)
        .unwrap_err()
        .to_string();
    assert!(e.contains("algorithm `sac`"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}
