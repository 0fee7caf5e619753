"""What crossing between Python and hlynr costs, both ways.

1. A Python Gymnasium env hosted by hlynr's trainer (``env.python``): the
   hosted batch stepped with random actions as the trainer steps it, against
   a plain Python loop over the same envs (random actions, reset on episode
   end). Target: hosting adds < 20%.
2. An hlynr env stepped from Python through ``HlynrVectorEnv`` at batch 64:
   time per env step, against the same batch stepped inside Rust
   (``hlynr bench`` figures); target: < 2 us of Python overhead per env step.

Runs are alternated (A, B, A, B, ...) and medians reported.

    python scripts/bench_python_bridge.py            # after pip install ./crates/py
"""

import json
import statistics
import time

import gymnasium as gym

import hlynr
from hlynr import _hlynr


def plain_loop(env_id: str, n: int, steps: int, seed: int) -> float:
    envs = [gym.make(env_id) for _ in range(n)]
    for i, env in enumerate(envs):
        env.reset(seed=seed + i)
        env.action_space.seed(seed + i)
    # Actions drawn beforehand, as the hosted batch gets them from Rust:
    # both sides time stepping, not sampling.
    actions = [envs[0].action_space.sample() for _ in range(1024)]
    start = time.perf_counter()
    for k in range(steps):
        action = actions[k % 1024]
        for env in envs:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
    return time.perf_counter() - start


def hosted(env_id: str, n: int, steps: int, seed: int) -> float:
    return _hlynr.bench_hosted(f"gymnasium:{env_id}", "{}", n, steps, seed)


def vector_from_python(env_id: str, n: int, steps: int, seed: int) -> float:
    vec = hlynr.HlynrVectorEnv(env_id, n)
    vec.reset(seed=seed)
    vec.action_space.seed(seed)
    actions = [vec.action_space.sample() for _ in range(64)]
    start = time.perf_counter()
    for k in range(steps):
        vec.step(actions[k % 64])
    return time.perf_counter() - start


def main() -> None:
    results = {}
    cases = [(env_id, n, total // n) for env_id, total in [("CartPole-v1", 32000), ("Acrobot-v1", 8000), ("MountainCar-v0", 32000)] for n in (1, 8, 32)]
    for env_id, n, steps in cases:
        plain, host = [], []
        for rep in range(7):
            plain.append(plain_loop(env_id, n, steps, rep))
            host.append(hosted(env_id, n, steps, rep))
        p, h = statistics.median(plain), statistics.median(host)
        total = n * steps
        results[f"{env_id}/n={n}"] = {
            "plain_us_per_step": 1e6 * p / total,
            "hosted_us_per_step": 1e6 * h / total,
            "overhead": h / p - 1,
        }
        print(f"{env_id:16s} n={n:<3d} plain loop {1e6*p/total:6.2f} us/step, hosted {1e6*h/total:6.2f} us/step: {100*(h/p-1):+5.1f}%")
    for env_id, n, steps in [("CartPole-v1", 64, 5000), ("intercept", 64, 500)]:
        times = [vector_from_python(env_id, n, steps, rep) for rep in range(5)]
        per_step = 1e6 * statistics.median(times) / (n * steps)
        results[f"vector/{env_id}"] = {"us_per_env_step": per_step}
        print(f"HlynrVectorEnv {env_id} x{n}: {per_step:.3f} us per env step (Rust stepping included)")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
