"""Training runs, metrics and trained policies from Python."""

import json
import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest

import hlynr

CARTPOLE = {
    "env": {"id": "CartPole-v1"},
    "seed": 0,
    "n_envs": 8,
    "total_timesteps": 100_000,
    "ppo": {
        "n_steps": 32,
        "batch_size": 256,
        "n_epochs": 20,
        "gamma": 0.98,
        "gae_lambda": 0.8,
        "learning_rate": {"type": "linear", "initial": 1.0e-3},
        "clip_range": {"type": "linear", "initial": 0.2},
        "policy": {"net_arch": [64, 64], "activation": "tanh"},
    },
}


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    """PPO on CartPole from a mapping, stopped at 40k steps (about 1 s)."""
    runs = tmp_path_factory.mktemp("runs")
    return hlynr.train(CARTPOLE, runs_dir=runs, name="py", progress="quiet", steps=40_000)


def test_a_run_from_a_mapping_learns_and_logs(cartpole_run):
    run = cartpole_run
    assert run.status == "paused" and run.env_steps >= 40_000
    assert run.run_dir.name.startswith("py-") and (run.run_dir / "manifest.json").is_file()
    rows = hlynr.read_metrics(run.run_dir)
    assert rows and all("step" in r and "time_s" in r for r in rows)
    returns = [r["rollout/ep_rew_mean"] for r in rows if "rollout/ep_rew_mean" in r]
    assert returns[-1] > 3 * returns[0], returns
    evals = [r["eval/mean_reward"] for r in rows if "eval/mean_reward" in r]
    assert max(evals) >= 300
    events = hlynr.read_events(run.run_dir)
    assert any(e["kind"] == "checkpoint" and e["path"] == "checkpoints/best" for e in events)


def test_metrics_as_a_data_frame(cartpole_run):
    pd = pytest.importorskip("pandas")
    frame = hlynr.read_metrics(cartpole_run.run_dir, as_frame=True)
    assert isinstance(frame, pd.DataFrame) and "train/value_loss" in frame.columns


def test_the_trained_policy_balances_the_pole(cartpole_run):
    policy = hlynr.load_policy(cartpole_run.run_dir)
    assert policy.env_id == "CartPole-v1" and policy.checkpoint.endswith("best")
    assert policy.observation_space == gym.make("hlynr/CartPole-v1").observation_space
    env = gym.make("hlynr/CartPole-v1")
    total = 0.0
    for seed in (100, 101):
        obs, _ = env.reset(seed=seed)
        state, done = None, False
        while not done:
            action, state = policy.predict(obs, state=state)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            done = terminated or truncated
    assert total >= 2 * 300
    batch, _ = policy.predict(np.zeros((5, 4), np.float32))
    assert batch.shape == (5,) and batch.dtype == np.int64


def test_predict_errors_name_the_space(cartpole_run):
    policy = hlynr.load_policy(cartpole_run.run_dir)
    with pytest.raises(ValueError, match=r"expected shape \(4,\), got \(5,\)"):
        policy.predict(np.zeros(5))
    with pytest.raises(ValueError, match=r"expected shape \(4,\) or \(n, 4\), got shape \(\)"):
        policy.predict(1.0)
    with pytest.raises(ValueError, match=r"expected shape \(2, 4\), got \(2, 3\)"):
        policy.predict(np.zeros((2, 3)))
    _, state = policy.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="state is for 2 row"):
        policy.predict(np.zeros((3, 4)), state=state)
    policy.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="the previous predict"):
        policy.predict(np.zeros((2, 4)), state=state)


def test_resume_continues_and_config_errors_are_value_errors(cartpole_run, tmp_path):
    run = hlynr.resume(cartpole_run.run_dir, progress="quiet", steps=45_000)
    assert run.status == "paused" and run.env_steps >= 45_000
    with pytest.raises(ValueError, match="did you mean `learning_rate`"):
        hlynr.train({**CARTPOLE, "ppo": {"learning_rat": 1e-3}}, runs_dir=tmp_path)
    with pytest.raises(ValueError, match="did you mean `CartPole-v1`"):
        hlynr.train({"env": {"id": "CartPol-v1"}}, runs_dir=tmp_path)
    with pytest.raises(ValueError, match="progress"):
        hlynr.train(CARTPOLE, runs_dir=tmp_path, progress="loud")
    assert not list(tmp_path.iterdir()), "no run directory for a config that fails"


def test_a_config_file_and_overrides(configs, tmp_path):
    run = hlynr.train(
        configs / "cartpole_ppo.yaml",
        overrides=["n_envs=4", "ppo.batch_size=64", "ppo.n_epochs=2"],
        runs_dir=tmp_path,
        progress="quiet",
        steps=2_000,
    )
    assert run.run_dir.name.startswith("cartpole_ppo-")
    config = (run.run_dir / "config.yaml").read_text()
    assert "n_envs: 4" in config and "n_epochs: 2" in config
    # The same resolution without a run: what config.yaml holds.
    import json

    resolved = hlynr.resolve_config(configs / "cartpole_ppo.yaml", overrides=["n_envs=4", "ppo.batch_size=64", "ppo.n_epochs=2"])
    assert resolved == json.loads(hlynr._hlynr.run_config(run.run_dir))
    assert resolved["n_envs"] == 4 and resolved["ppo"]["n_epochs"] == 2
    assert hlynr.resolve_config({"env": {"id": "CartPole-v1"}})["run"]["eval_every_steps"] == 10_000
    with pytest.raises(ValueError, match="did you mean `n_envs`"):
        hlynr.resolve_config({"env": {"id": "CartPole-v1"}, "n_env": 2})


def test_frame_stacked_policies_keep_their_memory(tmp_path):
    config = {**CARTPOLE, "env": {"id": "Pendulum-v1", "frame_stack": 3}}
    run = hlynr.train(config, runs_dir=tmp_path, progress="quiet", steps=2_000)
    policy = hlynr.load_policy(run.run_dir)
    # The policy takes bare observations and stacks them itself.
    assert policy.observation_space.shape == (3,)
    rng = np.random.default_rng(0)
    x0, *history = rng.uniform(-1, 1, size=(6, 2, 3)).astype(np.float32)
    fresh, _ = policy.predict(x0)
    assert fresh.shape == (2, 1)
    state = None
    for x in history:
        _, state = policy.predict(x, state=state)
    continued, state = policy.predict(x0, state=state)
    assert not np.allclose(continued, fresh), "the stack holds the history"
    # episode_start restarts only the rows it marks.
    restarted, _ = policy.predict(x0, state=state, episode_start=np.array([True, False]))
    np.testing.assert_array_equal(restarted[0], fresh[0])
    assert not np.allclose(restarted[1], fresh[1])
    again, _ = policy.predict(x0, state=None)
    np.testing.assert_array_equal(again, fresh)


CTRL_C = """
import sys, hlynr
config = {cfg}
hlynr.train(config, runs_dir=sys.argv[1], name="ctrlc", progress="quiet")
print("not reached")
"""


def test_ctrl_c_stops_cleanly_and_raises_keyboard_interrupt(tmp_path):
    config = {**CARTPOLE, "total_timesteps": 50_000_000}
    script = CTRL_C.format(cfg=repr(config))
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob("ctrlc-*/checkpoints/step-*")):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "KeyboardInterrupt" in err and "not reached" not in out, err
    (run_dir,) = tmp_path.glob("ctrlc-*")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted", manifest
    assert "SIGINT" in manifest["status_message"]
    assert (run_dir / "checkpoints" / "last").is_dir()
    # The interrupted run resumes.
    run = hlynr.resume(run_dir, progress="quiet", steps=manifest_steps(run_dir) + 5_000)
    assert run.status == "paused"


def manifest_steps(run_dir) -> int:
    events = hlynr.read_events(run_dir)
    return max(e["step"] for e in events)


def test_python_dash_m_hlynr_is_the_command(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "hlynr", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "train" in out and "resume" in out and "eval" in out
    env = {**os.environ}
    done = subprocess.run(
        [sys.executable, "-m", "hlynr", "eval", "--env", "intercept", "--scenario", "easy",
         "--policy", "zem-pn", "--episodes", "5", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report.json").is_file()
