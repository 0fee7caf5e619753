"""hlynr's environments as Gymnasium environments.

``import hlynr`` registers every hlynr environment with Gymnasium under the
``hlynr/`` namespace (``hlynr/CartPole-v1``, ``hlynr/Intercept-v0``,
``hlynr/Racing-v0``, ...). Keyword arguments are the environment's
``env.settings`` as in a run config (``scenario="hard"`` for interception,
``track="oval"`` for racing), read strictly: a misspelt key is an error
naming the closest one. ``frame_stack=k`` stacks observations as a run
config's ``env.frame_stack`` does.

``gymnasium.make_vec(id, num_envs=n, vectorization_mode="vector_entry_point")``
(or :class:`HlynrVectorEnv` directly) steps all ``n`` environments in one
call into Rust and hands back one NumPy array per quantity, with
Gymnasium's same-step automatic reset (final observations and infos in
``info["final_obs"]`` and ``info["final_info"]``).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import _hlynr
from .spaces import SpaceCodec

__all__ = ["HlynrEnv", "HlynrVectorEnv", "ENV_IDS", "register_envs"]


def _gym_id(hlynr_id: str) -> str:
    """``CartPole-v1`` -> ``hlynr/CartPole-v1``; ``intercept`` -> ``hlynr/Intercept-v0``."""
    if "-v" in hlynr_id:
        return f"hlynr/{hlynr_id}"
    return f"hlynr/{hlynr_id[:1].upper()}{hlynr_id[1:]}-v0"


#: Gymnasium id -> hlynr id, for every environment hlynr knows.
ENV_IDS: Dict[str, str] = {_gym_id(i): i for i in _hlynr.env_ids()}


def _random_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**63 - 1))


class HlynrEnv(gym.Env):
    """One hlynr environment (hlynr id ``env_id``) as a ``gymnasium.Env``."""

    metadata: Dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        env_id: str,
        frame_stack: Optional[int] = None,
        max_episode_steps: Optional[int] = None,
        render_mode: Optional[str] = None,
        **settings: Any,
    ):
        if render_mode is not None:
            raise ValueError(f"{env_id} renders nothing live (render_mode={render_mode!r}); use `hlynr eval --plots`")
        self.env_id = env_id
        self._env = _hlynr.Env(env_id, json.dumps(settings), frame_stack, max_episode_steps)
        self._obs = SpaceCodec(self._env.observation_space)
        self._act = SpaceCodec(self._env.action_space)
        self.observation_space = self._obs.space
        self.action_space = self._act.space
        self._seeded = False

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        if seed is None and not self._seeded:
            # Like Gymnasium's own envs: the first unseeded reset draws a
            # seed from the OS, later ones continue the env's generator.
            seed = _random_seed(self.np_random)
        self._seeded = True
        values, byte_lane, info = self._env.reset(seed)
        return self._obs.decode_one(values, byte_lane), info

    def step(self, action):
        values, _ = self._act.encode(action, 1, False)
        obs_values, byte_lane, reward, terminated, truncated, info = self._env.step(values.tobytes())
        return self._obs.decode_one(obs_values, byte_lane), reward, terminated, truncated, info

    def __repr__(self) -> str:
        return f"HlynrEnv({self.env_id!r})"


class HlynrVectorEnv(VectorEnv):
    """``num_envs`` hlynr environments stepped together in Rust."""

    metadata: Dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        frame_stack: Optional[int] = None,
        max_episode_steps: Optional[int] = None,
        render_mode: Optional[str] = None,
        **settings: Any,
    ):
        if render_mode is not None:
            raise ValueError(f"{env_id} renders nothing live (render_mode={render_mode!r})")
        self.env_id = env_id
        self._vec = _hlynr.VecEnv(env_id, int(num_envs), json.dumps(settings), frame_stack, max_episode_steps)
        self.num_envs = self._vec.num_envs
        self._obs = SpaceCodec(self._vec.observation_space)
        self._act = SpaceCodec(self._vec.action_space)
        self.single_observation_space = self._obs.space
        self.single_action_space = self._act.space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._rng = np.random.default_rng()

    def reset(self, *, seed=None, options: Optional[dict] = None):
        if isinstance(seed, (list, tuple)):
            raise ValueError(
                "HlynrVectorEnv takes one seed (env i gets a seed derived from it and i), not a list"
            )
        if seed is None:
            seed = _random_seed(self._rng)
        values, byte_lane = self._vec.reset(int(seed))
        return self._obs.decode(values, byte_lane, self.num_envs), {}

    def step(self, actions):
        values, _ = self._act.encode(actions, self.num_envs, True)
        (obs_v, obs_b, rewards, terminated, truncated, columns, finished, final_v, final_b) = self._vec.step(
            values.tobytes()
        )
        n = self.num_envs
        done = np.zeros(n, dtype=bool)
        done[finished] = True
        info: Dict[str, Any] = {}
        final_info: Dict[str, Any] = {}
        for key, (present, raw) in columns.items():
            mask = np.frombuffer(present, dtype=np.bool_)
            column = np.frombuffer(raw, dtype=np.float64)
            if key == "is_success":
                column = column.astype(bool)
            elif key == "episode.l":
                column = column.astype(np.int64)
            else:
                column = column.copy()
            _put(info, key, column, mask & ~done)
            _put(final_info, key, column, mask & done)
        if finished:
            # Gymnasium's same-step layout: the finishing step's observation
            # and info under `final_obs` / `final_info`, masked by `_final_*`.
            final_obs = np.full(n, None, dtype=object)
            batch = self._obs.decode(final_v, final_b, len(finished))
            for j, i in enumerate(finished):
                final_obs[i] = tuple(p[j] for p in batch) if self._obs.is_tuple else batch[j]
            info["final_obs"], info["_final_obs"] = final_obs, done
            info["final_info"], info["_final_info"] = final_info, done.copy()
        return (
            self._obs.decode(obs_v, obs_b, n),
            np.frombuffer(rewards, dtype=np.float32).astype(np.float64),
            np.frombuffer(terminated, dtype=np.bool_).copy(),
            np.frombuffer(truncated, dtype=np.bool_).copy(),
            info,
        )

    def __repr__(self) -> str:
        return f"HlynrVectorEnv({self.env_id!r}, num_envs={self.num_envs})"


def _put(info: Dict[str, Any], key: str, column: np.ndarray, mask: np.ndarray) -> None:
    """Adds ``column`` under ``key`` (``episode.r`` nests as ``episode/r``)
    with Gymnasium's ``_key`` mask, when any env has it."""
    if not mask.any():
        return
    outer, _, inner = key.partition(".")
    if inner:
        nested = info.setdefault(outer, {})
        info["_" + outer] = info.get("_" + outer, np.zeros_like(mask)) | mask
        info = nested
        key = inner
    info[key] = np.where(mask, column, np.zeros_like(column))
    info["_" + key] = mask.copy()


def _make(gym_id: str):
    hlynr_id = ENV_IDS[gym_id]

    def make_env(**kwargs: Any) -> HlynrEnv:
        return HlynrEnv(hlynr_id, **kwargs)

    def make_vec(num_envs: int = 1, **kwargs: Any) -> HlynrVectorEnv:
        return HlynrVectorEnv(hlynr_id, num_envs, **kwargs)

    return make_env, make_vec


def register_envs() -> None:
    """Registers every hlynr environment with Gymnasium (done on import)."""
    for gym_id in ENV_IDS:
        if gym_id in gym.registry:
            continue
        make_env, make_vec = _make(gym_id)
        gym.register(id=gym_id, entry_point=make_env, vector_entry_point=make_vec)
