"""Stable-Baselines3 reference: PPO on CartPole-v1 for 100k steps with RL Zoo
hyperparameters, timed, for a same-machine comparison with
`hlynr train --config configs/cartpole_ppo.yaml`.

    python3 scripts/bench_sb3_cartpole.py [--seed 0]
"""

import argparse
import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy


def linear(initial):
    return lambda progress_remaining: progress_remaining * initial


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=args.seed)
    model = PPO(
        "MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
        n_epochs=20, ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2),
        seed=args.seed, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=100_000)
    elapsed = time.perf_counter() - t0
    mean, std = evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=1000),
                                n_eval_episodes=20, deterministic=True)
    print(f"SB3 PPO CartPole-v1 100k steps: {elapsed:.1f} s, eval {mean:.1f} +- {std:.1f}")


if __name__ == "__main__":
    main()
