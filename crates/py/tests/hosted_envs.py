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
    (``"dtype"``) after 5 steps. ``flat`` observes one ``Box(3)`` ``[x, y,
    phase]`` instead (the spaces hlynr steps from Rust)."""

    def __init__(self, fail_at=None, bad_obs=None, horizon=20, flat=False):
        self.flat = flat
        self.observation_space = spaces.Dict(
            {"pos": spaces.Box(-10.0, 10.0, (2,), np.float32), "phase": spaces.Discrete(3, start=1)}
        )
        if flat:
            self.observation_space = spaces.Box(-10.0, 10.0, (3,), np.float32)
        self.action_space = spaces.Discrete(3, start=-1)
        self.fail_at, self.bad_obs, self.horizon = fail_at, bad_obs, horizon
        self.life = 0

    def _obs(self):
        pos = np.array([self.x, 0.0], np.float32)
        if self.bad_obs == "outside" and self.t > 5:
            pos[1] = 50.0
        phase = 1 + self.t % 3
        if self.flat:
            pos = np.array([pos[0], pos[1], phase], np.float32)
        if self.bad_obs == "dtype" and self.t > 5:
            pos = pos.astype(np.float64)
        return pos if self.flat else {"pos": pos, "phase": phase}

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


#: Every real-time CartPole made, in order, for the tests to read their clocks.
CLOCKS = []


def realtime_cartpole(hz=20.0, max_episode_steps=25):
    """CartPole on a wall clock of ``hz`` (short episodes keep evaluation
    quick at that pace)."""
    from hlynr.wrappers import RealTimeStep

    env = RealTimeStep(gym.make("CartPole-v1", max_episode_steps=max_episode_steps), hz=hz)
    CLOCKS.append(env)
    return env


class Tm20FullStandIn(gym.Env):
    """What tmrl 0.7's full TrackMania env (``TM20FULL`` behind rtgym) looks
    like from Python, without the game: observations ``(speed, gear, rpm,
    frames, action, action)`` whose space declares float32 frames in
    [0, 255] while the frames themselves are uint8 (as tmrl's are), rtgym's
    two appended actions, and a ``Box(-1, 1, (3,))`` ``[gas, brake, steer]``
    action. The "car" gains speed with gas and loses it braking; the reward
    is its speed; an episode ends after ``horizon`` steps."""

    def __init__(self, horizon=40):
        self.observation_space = spaces.Tuple(
            (
                spaces.Box(0.0, 1000.0, (1,)),
                spaces.Box(0.0, 6, (1,)),
                spaces.Box(0.0, np.inf, (1,)),
                spaces.Box(0.0, 255.0, (4, 64, 64)),
                spaces.Box(-1.0, 1.0, (3,)),
                spaces.Box(-1.0, 1.0, (3,)),
            )
        )
        self.action_space = spaces.Box(-1.0, 1.0, (3,))
        self.horizon = horizon
        self.sent = []

    def _obs(self):
        frame = np.full((64, 64), int(self.speed) % 256, np.uint8)
        self.frames = self.frames[1:] + [frame]
        return (
            np.array([self.speed], np.float32),
            np.array([min(6, self.speed // 50)], np.float32),
            np.array([1000.0 + 30.0 * (self.speed % 50)], np.float32),
            np.array(self.frames),
            self.actions[0],
            self.actions[1],
        )

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.speed, self.t = 0.0, 0
        self.frames = [np.zeros((64, 64), np.uint8)] * 4
        self.actions = [np.zeros(3, np.float32)] * 2
        return self._obs(), {}

    def step(self, action):
        action = np.asarray(action, np.float32)
        assert action.shape == (3,) and np.all(np.abs(action) <= 1), action
        self.sent.append(action)
        self.speed = float(np.clip(self.speed + 20.0 * action[0] - 40.0 * action[1], 0.0, 400.0))
        self.actions = [self.actions[1], action]
        self.t += 1
        return self._obs(), self.speed / 100.0, False, self.t >= self.horizon, {}


def tmrl_stand_in(**kwargs):
    """The stand-in on rtgym's 20 Hz clock, wrapped as ``hlynr.wrappers.tmrl``
    wraps the real env."""
    from hlynr.wrappers import RealTimeStep, TmrlDiscrete

    clock = RealTimeStep(Tm20FullStandIn(), hz=20.0)
    CLOCKS.append(clock)
    return TmrlDiscrete(clock, **kwargs)


def boxed_in_a_tuple(env_id="CartPole-v1"):
    """A Gymnasium env whose observation is wrapped in a one-element Tuple:
    the same flat encoding, stepped by the Python loop instead of from Rust."""
    env = gym.make(env_id)
    return gym.wrappers.TransformObservation(env, lambda obs: (obs,), spaces.Tuple((env.observation_space,)))
