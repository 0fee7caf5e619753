"""Stable-Baselines3 reference: DQN on CartPole-v1 for 50k steps with RL Zoo
hyperparameters (those of configs/cartpole_dqn.yaml) and an evaluation of 10
episodes every 5k steps, timed, for a same-machine comparison with
`hlynr train --config configs/cartpole_dqn.yaml`.

    python3 scripts/bench_sb3_dqn_cartpole.py [--seed 0]
"""

import argparse
import time

import gymnasium as gym
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import EvalCallback


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    env = gym.make("CartPole-v1")
    model = DQN(
        "MlpPolicy", env, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
        learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256,
        gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]), seed=args.seed, device="cpu", verbose=0)
    evaluation = EvalCallback(gym.make("CartPole-v1"), n_eval_episodes=10, eval_freq=5000, verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=50_000, callback=evaluation)
    elapsed = time.perf_counter() - start
    print(f"SB3 DQN CartPole-v1 50k steps: {elapsed:.1f} s, best evaluation {evaluation.best_mean_reward:.1f}, "
          f"last {evaluation.last_mean_reward:.1f}")


if __name__ == "__main__":
    main()
