"""Small Gymnasium environments for the hosting tests (importable as
``hosted_envs:NAME`` because pytest puts this directory on ``sys.path``)."""

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Walk(gym.Env):
    """A walk to a goal: observation ``{"pos": Box(2), "phase": Discrete(3,
    start=1)}``, action ``Discrete(3, start=-1)`` (step left, stay, right).
    ``fail_at`` raises on that step of the env's life; ``bad_obs`` returns
    an observation outside its space (``"outside"``) or of the wrong dtype
    (``"dtype"``) after 5 steps."""

    def __init__(self, fail_at=None, bad_obs=None, horizon=20):
        self.observation_space = spaces.Dict(
            {"pos": spaces.Box(-10.0, 10.0, (2,), np.float32), "phase": spaces.Discrete(3, start=1)}
        )
        self.action_space = spaces.Discrete(3, start=-1)
        self.fail_at, self.bad_obs, self.horizon = fail_at, bad_obs, horizon
        self.life = 0

    def _obs(self):
        pos = np.array([self.x, 0.0], np.float32)
        if self.bad_obs == "outside" and self.t > 5:
            pos[1] = 50.0
        if self.bad_obs == "dtype" and self.t > 5:
            pos = pos.astype(np.float64)
        return {"pos": pos, "phase": 1 + self.t % 3}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.integers(-3, 4)), 0
        return self._obs(), {}

    def step(self, action):
        assert action in self.action_space, action
        self.life += 1
        if self.fail_at is not None and self.life == self.fail_at:
            raise RuntimeError("the walk simulator lost its licence")
        self.x = float(np.clip(self.x + action, -10, 10))
        self.t += 1
        at_goal = self.x == 5.0
        return self._obs(), (1.0 if at_goal else -0.1), at_goal, self.t >= self.horizon, {"is_success": at_goal}


def text_env():
    env = Walk()
    env.observation_space = spaces.Text(5)
    return env
