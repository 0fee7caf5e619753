"""Real-time envs: with ``dqn.decoupled_acting`` an actor thread acts while
the learner learns, so a 20 Hz env gets every action in time."""

import hosted_envs
import hlynr

# A learner slow enough to miss a 20 Hz deadline whenever it learns between
# steps: 32 gradient steps of a 1024-1024 network.
SLOW_LEARNER = {
    "algo": "dqn",
    "n_envs": 1,
    "env": {"python": "hosted_envs:realtime_cartpole"},
    "dqn": {"learning_starts": 20, "batch_size": 16, "buffer_size": 2_000, "train_freq": 1,
            "gradient_steps": 32, "target_update_interval": 50,
            "policy": {"net_arch": [1024, 1024]}},
    "run": {"eval_every_steps": 0, "eval_episodes": 1},
}


def train(tmp_path, steps, decoupled):
    config = {**SLOW_LEARNER, "total_timesteps": steps}
    config["dqn"] = dict(config["dqn"])
    if decoupled:
        config["dqn"]["decoupled_acting"] = {"weight_sync_interval": 2}
    hosted_envs.CLOCKS.clear()
    run = hlynr.train(config, runs_dir=tmp_path, progress="quiet")
    assert run.status == "completed" and run.env_steps == steps
    return run, list(hosted_envs.CLOCKS)


def test_learning_between_steps_makes_a_real_time_env_wait(tmp_path):
    _, clocks = train(tmp_path, 40, decoupled=False)
    training = max(clocks, key=lambda c: c.steps)
    assert training.steps == 40
    # Every learning phase (from step 20 on) outlasts the 50 ms time step.
    assert training.late_actions >= 15, training.late_actions


def test_an_actor_thread_keeps_a_20_hz_env_on_time_while_learning(tmp_path):
    run, clocks = train(tmp_path, 120, decoupled=True)
    training = max(clocks, key=lambda c: c.steps)
    assert training.steps >= 120
    assert [c.late_actions for c in clocks] == [0] * len(clocks)
    rows = hlynr.read_metrics(run.run_dir)
    updates = max(r.get("train/n_updates", 0) for r in rows)
    # The learner learned meanwhile (fewer steps than inline: it is slower
    # than the env), and the actor got its weights.
    assert updates > 10, updates
    assert sum(r.get("time/actor_vector_steps", 0) for r in rows) == 120


def test_tmrl_observations_and_actions_map_to_the_racing_networks():
    import numpy as np
    from gymnasium.utils.env_checker import check_env

    from hlynr.wrappers import RACING_CONTROLS, TmrlDiscrete

    stand_in = hosted_envs.Tm20FullStandIn()
    env = TmrlDiscrete(stand_in)
    check_env(env, skip_render_check=True)
    assert env.action_space.n == len(RACING_CONTROLS) == 11
    frames_space, values_space = env.observation_space
    assert frames_space.dtype == np.uint8 and frames_space.shape == (4, 64, 64)
    assert values_space.shape == (3,)
    env.reset(seed=0)
    for _ in range(3):
        (frames, values), *_ = env.step(1)  # gas
    (frames, values), *_ = env.step(3)  # gas+left: tmrl steers left for a negative value
    assert list(stand_in.sent[-1]) == [1.0, 0.0, -1.0]
    assert frames.dtype == np.uint8 and list(frames[:, 0, 0]) == [20, 40, 60, 80]
    np.testing.assert_allclose(values, [80.0 / 180.0, 1.0 / 6.0, 1900.0 / 10_000.0], rtol=1e-6)
    with_history = TmrlDiscrete(hosted_envs.Tm20FullStandIn(), action_history=True)
    assert with_history.observation_space[1].shape == (9,)
    (_, values), _ = with_history.reset(seed=0)
    assert values.shape == (9,)


def test_the_trackmania_recipe_trains_on_a_tmrl_stand_in_without_a_late_action(tmp_path, configs):
    hosted_envs.CLOCKS.clear()
    overrides = ["env.python=hosted_envs:tmrl_stand_in", "total_timesteps=140",
                 "dqn.learning_starts=40", "dqn.buffer_size=1000"]
    run = hlynr.train(configs / "trackmania" / "tmrl_iqn.yaml", overrides=overrides,
                      runs_dir=tmp_path, progress="quiet")
    assert run.status == "completed" and run.env_steps == 140
    clocks = list(hosted_envs.CLOCKS)
    assert max(c.steps for c in clocks) >= 140
    assert [c.late_actions for c in clocks] == [0] * len(clocks)
    rows = hlynr.read_metrics(run.run_dir)
    assert max(r.get("train/n_updates", 0) for r in rows) > 20
    assert not any("eval/mean_reward" in r for r in rows)
    # The policy drives the stand-in from its own observations.
    policy = hlynr.load_policy(run.run_dir)
    from hlynr.wrappers import TmrlDiscrete

    env = TmrlDiscrete(hosted_envs.Tm20FullStandIn())
    obs, _ = env.reset(seed=1)
    action, _ = policy.predict(obs)
    assert action in env.action_space
