"""Gymnasium wrappers that fit Python environments to what hlynr's networks
take, for use in the ``module:callable`` of a run config's ``env.python``;
TrackMania through tmrl (``tmrl``, ``TmrlDiscrete``); and a wall clock for
checking that a config keeps up with a real-time env (``RealTimeStep``).
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["ImageToBytes", "RACING_CONTROLS", "RealTimeStep", "TmrlDiscrete", "minatar", "tmrl"]


class ImageToBytes(gym.ObservationWrapper):
    """Image observations as hlynr's CNN takes them: ``uint8`` frames laid
    out ``[channels, height, width]``. Accepts ``[height, width, channels]``
    (or ``[height, width]``) images of ``bool`` (0 or 255), floats in
    ``[0, 1]`` (scaled by 255) or ``uint8``."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) not in (2, 3):
            raise ValueError(f"ImageToBytes takes a Box image of shape (H, W) or (H, W, C), not {space}")
        if space.dtype not in (np.bool_, np.uint8) and not np.issubdtype(space.dtype, np.floating):
            raise ValueError(f"ImageToBytes takes bool, uint8 or float images, not {space.dtype}")
        h, w = space.shape[:2]
        c = space.shape[2] if len(space.shape) == 3 else 1
        self._scale = 255 if space.dtype != np.uint8 else 1
        self.observation_space = spaces.Box(0, 255, (c, h, w), np.uint8)

    def observation(self, observation: Any) -> np.ndarray:
        image = np.asarray(observation)
        if image.ndim == 2:
            image = image[:, :, None]
        scaled = image * self._scale if self._scale != 1 else image
        return np.ascontiguousarray(np.clip(scaled, 0, 255).astype(np.uint8).transpose(2, 0, 1))


def minatar(game: str = "breakout", minimal_actions: bool = True, **kwargs: Any) -> gym.Env:
    """A MinAtar game (``pip install minatar``) with its ``[10, 10, C]``
    boolean frames as ``uint8`` ``[C, 10, 10]``: ``env: {python:
    "hlynr.wrappers:minatar", settings: {game: breakout}}``."""
    from minatar.gym import BaseEnv

    return ImageToBytes(BaseEnv(game, use_minimal_action_set=minimal_actions, **kwargs))


class RealTimeStep(gym.Wrapper):
    """Steps ``env`` on a wall clock of ``hz`` steps per second, as a
    real-time env does (tmrl's rtgym drives TrackMania at 20 Hz): a step
    lasts until the end of its time step, and the next action is due before
    the end of the following one. An action that comes later is counted in
    ``late_actions`` (where rtgym would warn of a timed-out step) and the
    clock restarts from it. ``steps`` counts the steps taken.

    It lets a config be checked for keeping up with a real-time env on any
    machine: train with it around a fast env and read ``late_actions``."""

    def __init__(self, env: gym.Env, hz: float = 20.0):
        super().__init__(env)
        if not hz > 0:
            raise ValueError(f"hz must be positive, not {hz}")
        self.period = 1.0 / hz
        self.late_actions = 0
        self.steps = 0
        self._due: float | None = None

    def reset(self, **kwargs: Any):
        result = self.env.reset(**kwargs)
        self._due = time.monotonic() + self.period
        return result

    def step(self, action: Any):
        now = time.monotonic()
        if self._due is None or now > self._due:
            self.late_actions += 1
            self._due = now
        result = self.env.step(action)
        self.steps += 1
        pause = self._due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self._due += self.period
        return result


#: The discrete controls of hlynr's racing env (``crates/racing``), in its
#: order, as tmrl's ``[gas, brake, steer]`` (tmrl steers right for a positive
#: value, hlynr's racing env left). A network trained on the racing env
#: therefore means the same by each action index here.
RACING_CONTROLS = (
    ("coast", (0.0, 0.0, 0.0)),
    ("gas", (1.0, 0.0, 0.0)),
    ("brake", (0.0, 1.0, 0.0)),
    ("gas+left", (1.0, 0.0, -1.0)),
    ("gas+right", (1.0, 0.0, 1.0)),
    ("left", (0.0, 0.0, -1.0)),
    ("right", (0.0, 0.0, 1.0)),
    ("brake+left", (0.0, 1.0, -1.0)),
    ("brake+right", (0.0, 1.0, 1.0)),
    ("gas+half-left", (1.0, 0.0, -0.5)),
    ("gas+half-right", (1.0, 0.0, 0.5)),
)


class TmrlDiscrete(gym.Wrapper):
    """tmrl's full TrackMania env (``TM20FULL``: speed, gear, rpm and a
    stack of greyscale frames, plus the last actions rtgym appends) as
    hlynr's racing IQN config takes it:

    - actions ``Discrete(len(controls))``, each sent as its ``[gas, brake,
      steer]`` (``RACING_CONTROLS`` by default; with tmrl's keyboard input a
      steer of magnitude 0.5 or less does not steer, so the half-steering
      actions need its gamepad input);
    - observations ``Tuple(frames, telemetry)``: the frame stack as ``uint8``
      ``[k, H, W]`` (tmrl declares float frames but fills them with
      0..255 bytes; frames declared in [0, 1] are scaled by 255), and
      ``[speed / speed_scale_kmh, gear / gear_scale, rpm / rpm_scale]`` as
      ``float32``, followed by the appended actions when ``action_history``.

    The scales put the telemetry near [0, 1] as the racing env's is (its
    speed is over 50 m/s, i.e. 180 km/h)."""

    def __init__(
        self,
        env: gym.Env,
        controls=RACING_CONTROLS,
        speed_scale_kmh: float = 180.0,
        gear_scale: float = 6.0,
        rpm_scale: float = 10_000.0,
        action_history: bool = False,
    ):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Tuple) or len(space) < 4:
            raise ValueError(f"TmrlDiscrete takes tmrl's Tuple(speed, gear, rpm, frames, ...), not {space}")
        frames = space[3]
        if not isinstance(frames, spaces.Box) or len(frames.shape) != 3:
            raise ValueError(
                f"TmrlDiscrete takes greyscale frame stacks [k, H, W] (tmrl's GRAYSCALE), not {frames}"
            )
        if not isinstance(env.action_space, spaces.Box) or env.action_space.shape != (3,):
            raise ValueError(f"TmrlDiscrete drives tmrl's Box(3) [gas, brake, steer], not {env.action_space}")
        self._controls = [np.asarray(c, np.float32) for _, c in controls]
        if not self._controls or any(c.shape != (3,) for c in self._controls):
            raise ValueError("controls are (name, (gas, brake, steer)) pairs")
        self._scales = np.array([speed_scale_kmh, gear_scale, rpm_scale], np.float32)
        self._frame_scale = 255.0 if np.issubdtype(frames.dtype, np.floating) and float(frames.high.max()) <= 1.0 else 1.0
        self._history = action_history
        extra = sum(int(np.prod(s.shape)) for s in space.spaces[4:]) if action_history else 0
        self.action_space = spaces.Discrete(len(self._controls))
        self.observation_space = spaces.Tuple(
            (
                spaces.Box(0, 255, frames.shape, np.uint8),
                spaces.Box(-np.inf, np.inf, (3 + extra,), np.float32),
            )
        )

    def _observation(self, obs) -> tuple:
        frames = np.asarray(obs[3], dtype=np.float32 if self._frame_scale != 1.0 else None)
        if self._frame_scale != 1.0:
            frames = frames * self._frame_scale
        frames = np.clip(frames, 0, 255).astype(np.uint8)
        telemetry = [np.asarray(obs[i], np.float32).reshape(-1) for i in range(3)]
        values = np.concatenate(telemetry) / self._scales
        if self._history:
            values = np.concatenate([values] + [np.asarray(a, np.float32).reshape(-1) for a in obs[4:]])
        return frames, values.astype(np.float32)

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        return self._observation(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(self._controls[int(action)])
        return self._observation(obs), float(reward), terminated, truncated, info


def tmrl(**kwargs: Any) -> gym.Env:
    """tmrl's TrackMania env (``tmrl.get_environment()``, configured by
    tmrl's own ``config.json``) wrapped in ``TmrlDiscrete(**kwargs)``:
    ``env: {python: "hlynr.wrappers:tmrl"}`` (``configs/tmrl_iqn.yaml``)."""
    import tmrl as tmrl_package

    return TmrlDiscrete(tmrl_package.get_environment(), **kwargs)
