"""sb3-contrib reference: RecurrentPPO (MlpLstmPolicy) on CartPole-v1 with the
velocities masked, 100k steps, n_envs 8, n_steps 32, defaults otherwise (the
setup of the reference figure), timed for a same-machine comparison with
`hlynr train --config configs/cartpole_novel_lstm.yaml`.

    python3 scripts/bench_sb3_recurrent.py [--seed 0] [--steps 100000]
"""

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env


class MaskVelocity(gym.ObservationWrapper):
    """CartPole with cart and pole velocities zeroed (RL Zoo's NoVel task)."""

    def observation(self, obs):
        return obs * np.array([1.0, 0.0, 1.0, 0.0], dtype=obs.dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=100_000)
    args = ap.parse_args()
    torch.set_num_threads(2)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=args.seed, wrapper_class=MaskVelocity)
    model = RecurrentPPO("MlpLstmPolicy", env, n_steps=32, seed=args.seed, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=args.steps)
    elapsed = time.perf_counter() - t0
    print(f"sb3-contrib RecurrentPPO CartPoleNoVel {args.steps} steps: {elapsed:.1f} s "
          f"({args.steps / elapsed:.0f} steps/s)")


if __name__ == "__main__":
    main()
