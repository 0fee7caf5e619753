"""Stable-Baselines3 trains on hlynr's interception env through Gymnasium.

Opt-in: it needs torch and stable-baselines3, which the default test
command does not install (``pip install stable-baselines3``, then
``scripts/test-python -k sb3`` with them in the venv, or run pytest on this
file in an environment that has them)."""

import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")

import gymnasium as gym  # noqa: E402

import hlynr  # noqa: E402,F401  (registers the envs)


def test_sb3_ppo_trains_on_the_interception_env():
    env = gym.make("hlynr/Intercept-v0", scenario="easy")
    model = sb3.PPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=2, seed=0, verbose=0)
    model.learn(total_timesteps=2_048)
    obs, _ = env.reset(seed=123)
    done, steps = False, 0
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        assert action in env.action_space
        obs, reward, terminated, truncated, info = env.step(action)
        assert np.isfinite(reward)
        done, steps = terminated or truncated, steps + 1
    assert "is_success" in info and steps > 1


def test_sb3_checks_the_env():
    from stable_baselines3.common.env_checker import check_env

    check_env(gym.make("hlynr/Intercept-v0").unwrapped)
