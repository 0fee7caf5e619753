"""Gymnasium wrappers that fit Python environments to what hlynr's networks
take, for use in the ``module:callable`` of a run config's ``env.python``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["ImageToBytes", "minatar"]


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
