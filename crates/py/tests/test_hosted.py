"""Python Gymnasium environments trained by hlynr (``env.python``)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import hlynr

DQN = {
    "algo": "dqn",
    "n_envs": 2,
    "total_timesteps": 6_000,
    "dqn": {"learning_starts": 500, "batch_size": 32, "target_update_interval": 250,
            "exploration_fraction": 0.3, "policy": {"net_arch": [32]}},
    "run": {"eval_every_steps": 2_000, "eval_episodes": 5, "checkpoint_every_steps": 1_000},
}


def test_a_gymnasium_env_trains_and_evaluates(tmp_path):
    config = {**DQN, "env": {"python": "gymnasium:CartPole-v1"}}
    run = hlynr.train(config, runs_dir=tmp_path, progress="quiet")
    assert run.status == "completed" and run.env_steps == 6_000
    rows = hlynr.read_metrics(run.run_dir)
    assert any("eval/mean_reward" in r for r in rows)
    assert any(r.get("rollout/ep_rew_mean", 0) > 0 for r in rows)
    resolved = (run.run_dir / "config.yaml").read_text()
    assert "python: gymnasium:CartPole-v1" in resolved and "id: python" in resolved


def test_dict_observations_and_shifted_discrete_actions_map_and_learn(tmp_path):
    config = {**DQN, "total_timesteps": 20_000, "env": {"python": "hosted_envs:Walk"}}
    run = hlynr.train(config, runs_dir=tmp_path, progress="quiet")
    rows = [r for r in hlynr.read_metrics(run.run_dir) if "eval/success_rate" in r]
    assert rows and max(r["eval/success_rate"] for r in rows) >= 0.8, rows
    # The loaded policy takes and returns what the Python env has: its Dict
    # observations and its actions counted from -1.
    from hosted_envs import Walk

    policy = hlynr.load_policy(run.run_dir)
    env = Walk()
    assert policy.observation_space == env.observation_space
    assert policy.action_space == env.action_space
    wins = 0
    for seed in range(10):
        obs, _ = env.reset(seed=100 + seed)
        done = False
        while not done:
            action, _ = policy.predict(obs)
            assert action in env.action_space
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        wins += info["is_success"]
    assert wins >= 8
    batch = {"phase": np.array([1, 2, 3]), "pos": np.zeros((3, 2), np.float32)}
    actions, _ = policy.predict(batch)
    assert actions.shape == (3,) and all(a in env.action_space for a in actions)
    with pytest.raises(ValueError, match="pos"):
        policy.predict({"phase": 1, "pos": np.zeros(2)})  # float64, not the space's float32


@pytest.mark.parametrize("flat", [False, True], ids=["python-loop", "rust-loop"])
def test_an_exception_in_the_env_ends_the_run_with_its_traceback(tmp_path, flat):
    config = {**DQN, "env": {"python": "hosted_envs:Walk", "settings": {"fail_at": 1_600, "flat": flat}}}
    with pytest.raises(RuntimeError) as caught:
        hlynr.train(config, runs_dir=tmp_path, progress="quiet")
    message = str(caught.value)
    assert "the walk simulator lost its licence" in message and "Traceback" in message
    assert "hosted_envs.py" in message and "in step" in message
    (run_dir,) = tmp_path.iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    state = json.loads((run_dir / "checkpoints/last/state.json").read_text())
    assert 0 < state["checkpoint"]["env_steps"] <= 3_200  # two envs: env 0's 1600th step is run step ~3200


@pytest.mark.parametrize(
    "bad, expected",
    [("outside", r"env [01]'s observation is outside Dict\(.*\): slot 2 = 50 is outside \[-10, 10\]"),
     ("dtype", r"env [01]'s observation\['pos'\] is not in Box\(-10.0, 10.0, \(2,\), float32\): ndarray of dtype float64"),
     # One Box observation and a Discrete action: the envs are stepped from Rust.
     ("outside-flat", r"env [01]'s observation is outside Box\(-10.0, 10.0, \(3,\), float32\): slot 1 = 50 is outside"),
     ("dtype-flat", r"env [01]'s observation is not in Box\(-10.0, 10.0, \(3,\), float32\): ndarray of dtype float64, shape \(3,\)")],
)
def test_observations_outside_their_space_are_named(tmp_path, bad, expected):
    flat = bad.endswith("-flat")
    settings = {"bad_obs": bad.removesuffix("-flat"), "flat": flat}
    config = {**DQN, "env": {"python": "hosted_envs:Walk", "settings": settings}}
    with pytest.raises((RuntimeError, ValueError), match=expected):
        hlynr.train(config, runs_dir=tmp_path, progress="quiet")


def test_config_errors_come_before_any_run_directory(tmp_path):
    cases = [
        ({"python": "hosted_envs:text_env"}, "Text spaces cannot be mapped"),
        ({"python": "gymnasium:Acrobat-v1"}, "Acrobat"),
        ({"python": "hosted_envs:Walk", "settings": {"speed": 2}}, "speed"),
        ({"python": "nowhere"}, "is not `gymnasium:ENV_ID` or `module:callable`"),
        ({"python": "gymnasium:CartPole-v1", "id": "CartPole-v1"}, "name two environments"),
        ({"python": "gymnasium:CartPole-v1", "frame_stack": 4}, "FrameStackObservation"),
    ]
    for env, expected in cases:
        with pytest.raises(ValueError, match=expected):
            hlynr.train({**DQN, "env": env}, runs_dir=tmp_path, progress="quiet")
    assert not list(tmp_path.iterdir())


def test_python_dash_m_hlynr_and_the_hlynr_binary_host_python_envs(tmp_path, configs):
    config = str(configs / "gymnasium/cartpole_dqn.yaml")
    args = ["train", "--config", config, "--runs-dir", str(tmp_path), "--steps", "2000", "--progress", "quiet"]
    done = subprocess.run([sys.executable, "-m", "hlynr", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "paused at 2000 env steps" in done.stderr
    # The plain binary (built by `cargo test` or `cargo build`) hands the
    # command to this interpreter's package.
    binaries = [configs.parent / "target" / kind / "hlynr" for kind in ("debug", "release")]
    binary = next((b for b in binaries if b.exists()), None)
    if binary is None:
        pytest.skip("no hlynr binary built in target/")
    env = {**os.environ, "HLYNR_PYTHON": sys.executable}
    done = subprocess.run([str(binary), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "running this command under" in done.stderr and "paused at 2000 env steps" in done.stderr


def test_image_to_bytes_gives_the_cnn_uint8_channels_first():
    import gymnasium as gym
    import numpy as np
    from gymnasium import spaces

    from hlynr.wrappers import ImageToBytes

    class Frames(gym.Env):
        def __init__(self, dtype):
            self.observation_space = spaces.Box(0, 1, (3, 2, 4), dtype)
            self.action_space = spaces.Discrete(2)
            self.image = np.zeros((3, 2, 4), dtype)
            self.image[1, 0, 3] = 1

        def reset(self, *, seed=None, options=None):
            return self.image, {}

        def step(self, action):
            return self.image, 0.0, True, False, {}

    for dtype in (np.bool_, np.float32):
        env = ImageToBytes(Frames(dtype))
        obs, _ = env.reset()
        assert env.observation_space == spaces.Box(0, 255, (4, 3, 2), np.uint8)
        assert obs.dtype == np.uint8 and obs.shape == (4, 3, 2)
        assert obs[3, 1, 0] == 255 and obs.sum() == 255
    with pytest.raises(ValueError, match="Box image"):
        bad = Frames(np.float32)
        bad.observation_space = spaces.Discrete(3)
        ImageToBytes(bad)


def test_one_box_observation_and_a_discrete_action_are_stepped_from_rust():
    from hlynr._host import Host

    assert Host("hosted_envs:Walk", json.dumps({"flat": True}), 2, True).direct() is not None
    assert Host("gymnasium:CartPole-v1", "{}", 1, True).direct() is not None
    assert Host("hosted_envs:Walk", "{}", 2, True).direct() is None  # a Dict observation
    assert Host("gymnasium:Pendulum-v1", "{}", 1, True).direct() is None  # a Box action


def test_the_rust_loop_and_the_python_loop_train_the_same_weights(tmp_path):
    import hashlib

    def train(env):
        config = {**DQN, "total_timesteps": 3_000, "env": env}
        run = hlynr.train(config, runs_dir=tmp_path / env["python"].replace(":", "_"), progress="quiet")
        rows = [r for r in hlynr.read_metrics(run.run_dir) if "train/loss" in r]
        weights = sorted((run.run_dir / "checkpoints" / "last").glob("model.safetensors"))
        return rows[-1]["train/loss"], hashlib.sha256(weights[0].read_bytes()).hexdigest()

    direct = train({"python": "gymnasium:CartPole-v1"})
    python_loop = train({"python": "hosted_envs:boxed_in_a_tuple"})
    assert direct == python_loop
