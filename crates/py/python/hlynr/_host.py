"""Python Gymnasium environments hosted by hlynr's trainer (``env.python``).

The Rust side (``hlynr._hlynr``, ``host.rs``) builds a :class:`Host`. For one
``Box`` observation and a ``Discrete`` action it steps the environments
itself (:meth:`Host.direct`); for every other space it calls
:meth:`Host.step` once per batch step and the loop runs here. Either way
hosting costs about what a plain Python loop over the environments costs.
This is the Gymnasium-to-hlynr direction of the flat encoding; the other
(hlynr spaces seen from Gymnasium) is ``spaces.py``.
Spaces are mapped to hlynr's (``Box`` of floats or ``uint8``,
``Discrete``/``MultiDiscrete`` with any ``start``, ``MultiBinary``,
``Tuple``, ``Dict`` as a tuple in key order). Observations are checked
against their space every step (type, dtype and shape here; bounds, NaN
and discrete ranges on the Rust side) and a bad one fails the step, naming
the environment, the space and the value.
"""

from __future__ import annotations

import importlib
import json
import struct
from typing import Any, List, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces as gs

from . import _hlynr
from .spaces import show_value


def make_env(spec: str, kwargs: dict) -> gym.Env:
    """``gymnasium:ID`` -> ``gymnasium.make(ID, **kwargs)``; ``module:callable``
    -> ``callable(**kwargs)``."""
    module, _, name = spec.partition(":")
    if module == "gymnasium":
        return gym.make(name, **kwargs)
    target: Any = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    env = target(**kwargs)
    if not isinstance(env, gym.Env):
        raise TypeError(f"{spec} returned {type(env).__name__}, not a gymnasium.Env")
    return env


def _bound(v: float) -> Any:
    v = float(v)
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


class _Leaf:
    """One non-composite part of a Gymnasium space, mapped to hlynr's."""

    def __init__(self, space: gs.Space, path: str):
        self.space, self.path = space, path
        self.start = 0
        if isinstance(space, gs.Box):
            self.shape = space.shape
            self.is_bytes = space.dtype == np.uint8
            if not self.is_bytes and not (np.issubdtype(space.dtype, np.floating) or np.issubdtype(space.dtype, np.integer)):
                raise ValueError(f"{path}: {space} has dtype {space.dtype}, which hlynr cannot map")
            self.size = int(np.prod(self.shape, dtype=np.int64))
            low = np.broadcast_to(space.low, self.shape).reshape(-1)
            high = np.broadcast_to(space.high, self.shape).reshape(-1)
            body = {"low": [_bound(x) for x in low], "high": [_bound(x) for x in high], "shape": list(self.shape)}
            if self.is_bytes:
                body["dtype"] = "u8"
            self.json = {"box": body}
        elif isinstance(space, gs.Discrete):
            self.shape, self.is_bytes, self.size = (), False, 1
            self.start = int(space.start)
            self.nvec = np.array([int(space.n)])
            self.json = {"discrete": {"n": int(space.n)}}
        elif isinstance(space, (gs.MultiDiscrete, gs.MultiBinary)):
            nvec = np.full(space.shape, 2) if isinstance(space, gs.MultiBinary) else space.nvec
            if np.ndim(nvec) != 1:
                raise ValueError(f"{path}: {space} is not one-dimensional, which hlynr cannot map")
            self.shape, self.is_bytes, self.size = (len(nvec),), False, len(nvec)
            self.start = np.asarray(getattr(space, "start", 0), dtype=np.int64)
            self.nvec = np.asarray(nvec, dtype=np.int64)
            self.json = {"multi_discrete": {"nvec": [int(n) for n in nvec]}}
        else:
            raise ValueError(
                f"{path}: {type(space).__name__} spaces cannot be mapped to hlynr's "
                "(Box, Discrete, MultiDiscrete, MultiBinary, Tuple and Dict can)"
            )
        self.shifted = bool(np.any(np.asarray(self.start) != 0))
        self.kind_box = isinstance(space, gs.Box)


class _Codec:
    """A Gymnasium space, its leaves and their places in hlynr's two lanes."""

    def __init__(self, space: gs.Space, what: str):
        self.space = space
        self.leaves: List[_Leaf] = []
        self.json = self._map(space, what)
        self.value_dim = sum(l.size for l in self.leaves if not l.is_bytes)
        self.byte_dim = sum(l.size for l in self.leaves if l.is_bytes)
        self.single = len(self.leaves) == 1 and not isinstance(space, (gs.Tuple, gs.Dict))
        # The common spaces (one Box of observations, one Discrete action)
        # take short paths: hosting a fast env costs what these lines cost.
        self._box = self.leaves[0] if self.single and self.leaves[0].kind_box else None
        self._discrete = self.single and isinstance(space, gs.Discrete)
        self._unpack: dict = {}

    def _map(self, space: gs.Space, path: str) -> dict:
        if isinstance(space, gs.Tuple):
            return {"tuple": {"spaces": [self._map(s, f"{path}[{i}]") for i, s in enumerate(space.spaces)]}}
        if isinstance(space, gs.Dict):
            return {"tuple": {"spaces": [self._map(s, f"{path}[{k!r}]") for k, s in space.spaces.items()]}}
        leaf = _Leaf(space, path)
        self.leaves.append(leaf)
        return leaf.json

    def parts(self, x) -> list:
        if self.single:
            return [x]
        out: list = []
        self._flatten(self.space, x, out)
        return out

    def _flatten(self, space, x, out):
        if isinstance(space, gs.Tuple):
            for s, v in zip(space.spaces, x):
                self._flatten(s, v, out)
        elif isinstance(space, gs.Dict):
            for k, s in space.spaces.items():
                self._flatten(s, x[k], out)
        else:
            out.append(x)

    def encode_batch(self, xs: list, env_name: str, who: Optional[list] = None) -> Tuple[bytes, bytes]:
        """The lanes of observations ``xs``; ``who[k]`` is the index of the
        env ``xs[k]`` came from (``k`` by default). Types, dtypes and shapes
        are checked here, bounds on the Rust side (against hlynr's space)."""
        n = len(xs)
        leaf = self._box
        if leaf is not None:
            dtype, shape = leaf.space.dtype, leaf.shape
            for k, x in enumerate(xs):
                if type(x) is not np.ndarray or x.dtype != dtype or x.shape != shape:
                    self._refuse(leaf, x, env_name, k if who is None else who[k])
            joined = xs[0].tobytes() if n == 1 else b"".join([x.tobytes() for x in xs])
            if leaf.is_bytes:
                return b"", joined
            if dtype == np.float32:
                return joined, b""
            return np.frombuffer(joined, dtype=dtype).astype(np.float32).tobytes(), b""
        values = np.empty((n, self.value_dim), dtype=np.float32)
        byte_lane = np.empty((n, self.byte_dim), dtype=np.uint8)
        per_env = [self.parts(x) for x in xs]
        v_at = b_at = 0
        for j, leaf in enumerate(self.leaves):
            column = [p[j] for p in per_env]
            if leaf.kind_box:
                dtype, shape = leaf.space.dtype, leaf.space.shape
                for k, x in enumerate(column):
                    if type(x) is not np.ndarray or x.dtype != dtype or x.shape != shape:
                        self._refuse(leaf, x, env_name, k if who is None else who[k])
                arr = np.stack(column)
            else:
                arr = np.asarray(column)
                if not np.issubdtype(arr.dtype, np.integer) or arr.shape[1:] != leaf.shape:
                    k = next((k for k, x in enumerate(column) if not isinstance(x, (int, np.integer, np.ndarray))), 0)
                    self._refuse(leaf, column[k], env_name, k if who is None else who[k])
            flat = arr.reshape(n, leaf.size)
            if leaf.is_bytes:
                byte_lane[:, b_at : b_at + leaf.size] = flat
                b_at += leaf.size
            else:
                values[:, v_at : v_at + leaf.size] = flat - leaf.start if leaf.shifted else flat
                v_at += leaf.size
        return values.tobytes(), byte_lane.tobytes()

    @staticmethod
    def _refuse(leaf: _Leaf, x, env_name: str, env: int):
        raise ValueError(
            f"{env_name}: env {env}'s {leaf.path} is not in {leaf.space}: "
            f"{type(x).__name__} of dtype {getattr(x, 'dtype', '-')}, shape {np.shape(x)} ({show_value(x)})"
        )

    def decode_actions(self, raw: bytes, n: int) -> list:
        """One action per env from the flat ``float32`` batch."""
        if self._discrete:
            unpack = self._unpack.get(n)
            if unpack is None:
                unpack = self._unpack[n] = struct.Struct(f"{n}f").unpack
            start = self.leaves[0].start
            if start == 0:
                return [int(a) for a in unpack(raw)]
            return [int(a) + start for a in unpack(raw)]
        flat = np.frombuffer(raw, dtype=np.float32).reshape(n, self.value_dim)
        per_leaf = []
        at = 0
        for leaf in self.leaves:
            block = flat[:, at : at + leaf.size]
            at += leaf.size
            if isinstance(leaf.space, gs.Box):
                per_leaf.append(list(block.reshape((n,) + leaf.shape).astype(leaf.space.dtype)))
            elif isinstance(leaf.space, gs.Discrete):
                per_leaf.append((block[:, 0].astype(np.int64) + leaf.start).tolist())
            else:
                per_leaf.append(list((block.astype(np.int64) + leaf.start).astype(leaf.space.dtype)))
        if self.single:
            return per_leaf[0]
        return [self._assemble(self.space, iter(p[i] for p in per_leaf)) for i in range(n)]

    def _assemble(self, space, it):
        if isinstance(space, gs.Tuple):
            return tuple(self._assemble(s, it) for s in space.spaces)
        if isinstance(space, gs.Dict):
            return {k: self._assemble(s, it) for k, s in space.spaces.items()}
        return next(it)


class Host:
    """``num_envs`` copies of one Python environment, stepped as a batch
    with same-step automatic reset (``autoreset``) or one env stepped
    plainly (evaluation)."""

    def __init__(self, spec: str, kwargs_json: str, num_envs: int, autoreset: bool):
        kwargs = json.loads(kwargs_json)
        self.name = spec
        self.envs = [make_env(spec, kwargs) for _ in range(num_envs)]
        first = self.envs[0]
        if getattr(first.unwrapped, "metadata", {}).get("autoreset_mode") is not None and isinstance(first, gym.vector.VectorEnv):
            raise ValueError(f"{spec} is a vector env; hlynr batches single envs itself")
        self.obs = _Codec(first.observation_space, "observation")
        self.act = _Codec(first.action_space, "action")
        if self.act.byte_dim:
            raise ValueError(f"{spec}: uint8 Box actions are not supported")
        self.autoreset = autoreset

    def spaces(self) -> Tuple[str, str, str]:
        """hlynr's observation and action spaces as JSON, and the Gymnasium
        observation space as users know it (for messages)."""
        return json.dumps(self.obs.json), json.dumps(self.act.json), str(self.obs.space)

    def direct(self):
        """What hlynr needs to step the envs from Rust, for the common case of
        one numeric Box observation (native byte order) and one Discrete
        action: the envs, the observation's dtype, shape and dtype code
        (``"f4"``, ``"u1"``, ...), the action's start, and a function that
        raises the codec's error for a bad observation of env ``k``. None
        for every other space, which :meth:`step` handles."""
        leaf = self.obs._box
        if leaf is None or not self.act._discrete or not leaf.space.dtype.isnative:
            return None

        def refuse(x, k):
            self.obs._refuse(leaf, x, self.name, k)

        dtype = leaf.space.dtype
        return self.envs, dtype, leaf.shape, f"{dtype.kind}{dtype.itemsize}", int(self.act.leaves[0].start), refuse

    def reset(self, seed: Optional[int]) -> Tuple[bytes, bytes]:
        """Resets every env, env ``i`` with ``derive_seed(seed, i)`` (or
        continuing its generator when ``seed`` is None)."""
        observations = []
        for i, env in enumerate(self.envs):
            # 32 bits: many envs seed NumPy's legacy RandomState, which
            # takes no more.
            s = None if seed is None else _hlynr.derive_seed(seed, i) & 0xFFFF_FFFF
            observations.append(env.reset(seed=s)[0])
        return self.obs.encode_batch(observations, self.name)

    def step(self, raw_actions: bytes):
        """Steps every env; returns the observations' lanes, the rewards,
        terminated and truncated flags (a byte each), the finished envs with
        their final observations' lanes, and ``(env, is_success)`` for
        finished envs whose info says."""
        n = len(self.envs)
        actions = self.act.decode_actions(raw_actions, n)
        observations, rewards = [], []
        terminated, truncated = bytearray(n), bytearray(n)
        finished, finals, success = [], [], []
        for i, env in enumerate(self.envs):
            obs, reward, term, trunc, info = env.step(actions[i])
            rewards.append(reward)
            if term or trunc:
                terminated[i], truncated[i] = bool(term), bool(trunc)
                if "is_success" in info:
                    success.append((i, bool(info["is_success"])))
                if self.autoreset:
                    finished.append(i)
                    finals.append(obs)
                    obs, _ = env.reset()
            observations.append(obs)
        if not finished:
            values, byte_lane = self.obs.encode_batch(observations, self.name)
            return values, byte_lane, rewards, bytes(terminated), bytes(truncated), finished, b"", b"", success
        # Next and final observations are checked and encoded together.
        values, byte_lane = self.obs.encode_batch(observations + finals, self.name, list(range(n)) + finished)
        cut_v, cut_b = 4 * n * self.obs.value_dim, n * self.obs.byte_dim
        return (
            values[:cut_v],
            byte_lane[:cut_b],
            rewards,
            bytes(terminated),
            bytes(truncated),
            finished,
            values[cut_v:],
            byte_lane[cut_b:],
            success,
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()
