"""Records reference trajectories of Gymnasium's classic-control tasks.

The Rust environments in `hlynr_env::classic` are checked against these files by
`crates/env/tests/gymnasium_fixtures.rs`: each episode starts from the physical
state Gymnasium drew at reset, replays the recorded actions and must reproduce
every float32 observation, reward and termination flag.

The raw environments are recorded (`gymnasium.make(id).unwrapped`, no time limit)
so episodes may run past the registered `max_episode_steps`. Action sequences are
chosen to reach the interesting branches of each task: out-of-range continuous
actions (clipping), CartPole terminations by angle and by cart position, steps
taken after termination, Pendulum at its speed limit, MountainCar at the left
wall and at the goal. Continuous actions are passed as float32 arrays, as the
action space declares, because Gymnasium's arithmetic depends on that dtype.

    python3 scripts/record_gym_fixtures.py [--out crates/env/tests/fixtures]
"""

import argparse
import json
from pathlib import Path

import gymnasium
import numpy as np

MAX_STEPS = 300


def as_list(values):
    """Exact float values as JSON numbers (float32 values widen exactly)."""
    return [float(v) for v in np.asarray(values).ravel()]


def record_episode(env_id, seed, policy, steps_after_termination=0, **kwargs):
    """Runs one raw episode; `policy(obs, t, rng)` returns the action to take."""
    env = gymnasium.make(env_id, **kwargs).unwrapped
    obs, _ = env.reset(seed=seed)
    initial_state = as_list(np.asarray(env.state, dtype=np.float64))
    policy_rng = np.random.default_rng(10_000 + seed)
    episode = {
        "seed": seed,
        "params": {k: float(v) for k, v in kwargs.items()},
        "initial_state": initial_state,
        "initial_obs": as_list(obs),
        "actions": [],
        "observations": [],
        "rewards": [],
        "terminated": [],
    }
    after = None
    for t in range(MAX_STEPS):
        action = policy(obs, t, policy_rng)
        obs, reward, terminated, truncated, _ = env.step(action)
        assert not truncated, "raw environments never truncate"
        episode["actions"].append(as_list(action))
        episode["observations"].append(as_list(obs))
        episode["rewards"].append(float(reward))
        episode["terminated"].append(bool(terminated))
        if terminated:
            after = 0 if after is None else after + 1
            if after >= steps_after_termination:
                break
    env.close()
    return episode


# CartPole policies (obs = x, x_dot, theta, theta_dot); actions are ints.
def cartpole_random(obs, t, rng):
    return int(rng.integers(0, 2))


def cartpole_balance(obs, t, rng):
    """A linear balancing law that keeps the pole up for the whole recording."""
    x, x_dot, theta, theta_dot = obs
    return int(theta + 0.5 * theta_dot + 0.01 * x + 0.05 * x_dot > 0.0)


def cartpole_drift(target_x, gain):
    """Balances the pole while steering the cart to `target_x`, beyond the track end."""

    def policy(obs, t, rng):
        x, x_dot, theta, theta_dot = obs
        return int(theta + 0.5 * theta_dot + gain * (x - target_x) + 0.05 * x_dot > 0.0)

    return policy


# Pendulum policies (obs = cos th, sin th, thdot); torques beyond +-2 are clipped.
def pendulum_random_wide(obs, t, rng):
    return np.array([rng.uniform(-3.0, 3.0)], dtype=np.float32)


def pendulum_random(obs, t, rng):
    return np.array([rng.uniform(-2.0, 2.0)], dtype=np.float32)


def pendulum_pump(obs, t, rng):
    """Torque along the motion until the speed limit is reached."""
    thdot = obs[2]
    direction = 1.0 if thdot >= 0.0 else -1.0
    return np.array([direction * rng.uniform(1.5, 2.5)], dtype=np.float32)


# MountainCarContinuous policies (obs = position, velocity).
def car_random_wide(obs, t, rng):
    return np.array([rng.uniform(-1.5, 1.5)], dtype=np.float32)


def car_pump_clipped(obs, t, rng):
    """Saturated pushes along the velocity: swings to the left wall, then the goal."""
    direction = -1.0 if t < 20 or obs[1] < 0.0 else 1.0
    return np.array([direction * rng.uniform(0.9, 1.6)], dtype=np.float32)


def car_pump_in_range(obs, t, rng):
    """In-range pushes along the velocity (the force is never clipped)."""
    direction = -1.0 if obs[1] < 0.0 else 1.0
    choice = rng.integers(0, 4)
    if choice == 0:
        value = 1.0
    elif choice == 1:
        value = 0.0
    else:
        value = rng.uniform(0.6, 1.0)
    return np.array([direction * value], dtype=np.float32)


def record(out_dir):
    files = {
        "cartpole_v1.json": (
            "CartPole-v1",
            [
                record_episode("CartPole-v1", 0, cartpole_random, steps_after_termination=3),
                record_episode("CartPole-v1", 1, cartpole_random),
                record_episode("CartPole-v1", 2, cartpole_random),
                record_episode(
                    "CartPole-v1", 3, cartpole_drift(-5.0, 0.03), steps_after_termination=2
                ),
                record_episode("CartPole-v1", 4, cartpole_drift(5.0, 0.01)),
                record_episode("CartPole-v1", 5, cartpole_balance),
            ],
        ),
        "pendulum_v1.json": (
            "Pendulum-v1",
            [
                record_episode("Pendulum-v1", 0, pendulum_random_wide),
                record_episode("Pendulum-v1", 1, pendulum_pump),
                record_episode("Pendulum-v1", 2, pendulum_random, g=9.81),
            ],
        ),
        "mountain_car_continuous_v0.json": (
            "MountainCarContinuous-v0",
            [
                record_episode("MountainCarContinuous-v0", 0, car_random_wide),
                record_episode("MountainCarContinuous-v0", 1, car_pump_clipped),
                record_episode("MountainCarContinuous-v0", 2, car_pump_in_range),
            ],
        ),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (env_id, episodes) in files.items():
        doc = {
            "env_id": env_id,
            "gymnasium_version": gymnasium.__version__,
            "numpy_version": np.__version__,
            "episodes": episodes,
        }
        path = out_dir / name
        path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        lengths = [len(e["actions"]) for e in episodes]
        ends = [any(e["terminated"]) for e in episodes]
        print(f"{path}: {path.stat().st_size} bytes, lengths {lengths}, terminated {ends}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "crates/env/tests/fixtures",
    )
    record(parser.parse_args().out)


if __name__ == "__main__":
    main()
