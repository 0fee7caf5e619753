//! The registry builds every id it lists, and refuses what it cannot build
//! with a message that says what to write instead.

use hlynr_envs::{INTERCEPT, Registry, load_config};
use hlynr_rl::trainer::RunConfig;

fn config(text: &str) -> RunConfig {
    hlynr_env::config::from_yaml_str(text, "test").unwrap()
}

fn env_config(id: &str) -> RunConfig {
    if id == INTERCEPT {
        config("env: {id: intercept, settings: {scenario: easy, set: [reward.gamma=0.99]}}\n")
    } else {
        config(&format!("env: {{id: {id}}}\n"))
    }
}

#[test]
fn every_known_id_builds_matching_train_and_eval_envs() {
    let registry = Registry::builtin();
    let ids = registry.known_ids();
    assert!(
        ids.contains(&"CartPole-v1") && ids.contains(&INTERCEPT),
        "{ids:?}"
    );
    // 32 rows: two arena worlds of 16 agent slots.
    for id in ids {
        let factory = registry.factory_for(&env_config(id)).unwrap();
        let batch = factory.make_train(32).unwrap();
        let eval = factory.make_eval().unwrap();
        assert_eq!(batch.num_envs(), 32, "{id}");
        assert_eq!(batch.observation_space(), eval.observation_space(), "{id}");
        assert_eq!(batch.action_space(), eval.action_space(), "{id}");
    }
}

#[test]
fn the_arena_needs_whole_worlds_of_agent_slots() {
    let factory = Registry::builtin()
        .factory_for(&env_config(hlynr_envs::ARENA))
        .unwrap();
    let e = factory.make_train(20).err().unwrap().to_string();
    assert!(e.contains("multiple of 16 (e.g. 32), got 20"), "{e}");
    let with_frames = config("env: {id: arena, frame_stack: 2}\n");
    let e = Registry::builtin()
        .factory_for(&with_frames)
        .unwrap_err()
        .to_string();
    assert!(e.contains("frame stacking"), "{e}");
}

#[test]
fn an_unknown_id_suggests_the_closest_and_lists_all() {
    let e = Registry::builtin()
        .factory_for(&config("env: {id: CartPole-v2}\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("env.id: unknown environment `CartPole-v2`; did you mean `CartPole-v1`?")
            && e.contains("intercept"),
        "{e}"
    );
}

#[test]
fn the_scenario_discount_must_be_the_learner_discount() {
    let c = config(
        "env: {id: intercept, settings: {scenario: easy, set: [reward.gamma=0.995]}}\nppo: {gamma: 0.99}\n",
    );
    let e = Registry::builtin().factory_for(&c).unwrap_err().to_string();
    assert!(
        e.contains("reward.gamma = 0.995 differs from ppo.gamma = 0.99")
            && e.contains("\"reward.gamma=0.99\""),
        "{e}"
    );
}

#[test]
fn a_loaded_interception_config_holds_its_scenario_resolved() {
    let path = std::env::temp_dir().join(format!("hlynr-envs-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "env: {id: intercept, settings: {scenario: medium, set: [reward.gamma=0.99]}}\n",
    )
    .unwrap();
    let (config, resolved) = load_config(&path, &["seed=3"]).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(config.seed, 3);
    let settings = &resolved["env"]["settings"];
    assert!(settings["scenario"].is_object(), "{settings}");
    assert_eq!(settings["set"], serde_json::json!([]));
    assert_eq!(
        settings["scenario"]["reward"]["gamma"],
        serde_json::json!(0.99)
    );
    // The stored form builds the same environment.
    let again = RunConfig::from_resolved(&resolved).unwrap();
    Registry::builtin()
        .factory_for(&again)
        .unwrap()
        .make_eval()
        .unwrap();
}

#[test]
fn a_program_registers_its_own_envs_by_id() {
    use hlynr_rl::trainer::ClassicEnvFactory;
    let mut registry = Registry::builtin();
    registry
        .register("Balance-v0", |config| {
            let mut env = config.env.clone();
            env.id = "CartPole-v1".into();
            Ok(Box::new(ClassicEnvFactory::new(&env)?))
        })
        .unwrap();
    assert_eq!(registry.known_ids().last(), Some(&"Balance-v0"));
    let factory = registry
        .factory_for(&config("env: {id: Balance-v0}\n"))
        .unwrap();
    assert_eq!(factory.make_train(3).unwrap().num_envs(), 3);
    // Misspelt ids are matched against registered ones too.
    let e = registry
        .factory_for(&config("env: {id: Balanse-v0}\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("did you mean `Balance-v0`"), "{e}");
    // An id means one environment: taken ids are refused.
    for taken in ["Balance-v0", "CartPole-v1", INTERCEPT] {
        let e = registry
            .register(taken, |_| unreachable!())
            .unwrap_err()
            .to_string();
        assert!(e.contains("already registered"), "{e}");
    }
}

#[test]
fn python_envs_need_a_host_and_say_where_to_find_one() {
    let python = config("env: {python: 'gymnasium:Acrobot-v1'}\n");
    assert_eq!(python.env.id, hlynr_rl::env_config::PYTHON_ID);
    let e = Registry::builtin()
        .factory_for(&python)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("env.python")
            && e.contains("pip install ./crates/py")
            && e.contains("python -m hlynr"),
        "{e}"
    );
    // A registry with a host hands such configs to it.
    let mut registry = Registry::builtin();
    registry.host_python(|c| {
        Err(hlynr_rl::trainer::TrainError::invalid(
            "host",
            format!("asked for {}", c.env.python.as_deref().unwrap_or("")),
        ))
    });
    let e = registry.factory_for(&python).unwrap_err().to_string();
    assert!(e.contains("asked for gymnasium:Acrobot-v1"), "{e}");
}

#[test]
fn an_env_section_names_exactly_one_environment() {
    let parse = |text: &str| {
        hlynr_env::config::from_yaml_str::<RunConfig>(text, "test")
            .unwrap_err()
            .to_string()
    };
    let e = parse("env: {settings: {}}\n");
    assert!(e.contains("give `id`") && e.contains("or `python`"), "{e}");
    let e = parse("env: {id: CartPole-v1, python: 'gymnasium:CartPole-v1'}\n");
    assert!(e.contains("name two environments"), "{e}");
    let e = parse("env: {python: Acrobot-v1}\n");
    assert!(e.contains("gymnasium:ENV_ID"), "{e}");
}
