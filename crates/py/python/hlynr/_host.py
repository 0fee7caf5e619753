"""Python Gymnasium environments hosted by hlynr's trainer (``env.python``).

The Rust side (``hlynr._hlynr``, ``host.rs``) calls a :class:`Host` once per
batch step; the loop over environments runs here, in Python, so hosting
costs about what a plain Python loop over the same environments costs.
Spaces are mapped to hlynr's (``Box`` of floats or ``uint8``,
``Discrete``/``MultiDiscrete`` with any ``start``, ``MultiBinary``,
``Tuple``, ``Dict`` as a tuple in key order); observations are checked
against their space (shape, dtype, bounds) and a bad one is a
``ValueError`` naming the environment, the space and the value.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Callable, List, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces as gs

from . import _hlynr


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
            self.low = low.astype(np.float64)
            self.high = high.astype(np.float64)
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


class _Codec:
    """A Gymnasium space, its leaves and their places in hlynr's two lanes."""

    def __init__(self, space: gs.Space, what: str):
        self.space, self.what = space, what
        self.leaves: List[_Leaf] = []
        self.json = self._map(space, what)
        self.value_dim = sum(l.size for l in self.leaves if not l.is_bytes)
        self.byte_dim = sum(l.size for l in self.leaves if l.is_bytes)
        self.single = len(self.leaves) == 1 and not isinstance(space, (gs.Tuple, gs.Dict))

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

    def encode_batch(self, xs: list, env_name: str) -> Tuple[bytes, bytes]:
        """The lanes of observations ``xs`` (one per env), checked."""
        n = len(xs)
        values = np.empty((n, self.value_dim), dtype=np.float32)
        byte_lane = np.empty((n, self.byte_dim), dtype=np.uint8)
        per_env = [self.parts(x) for x in xs] if not self.single else None
        v_at = b_at = 0
        for k, leaf in enumerate(self.leaves):
            column = [x for x in xs] if self.single else [p[k] for p in per_env]
            arr = self._check(leaf, column, env_name)
            if leaf.is_bytes:
                byte_lane[:, b_at : b_at + leaf.size] = arr.reshape(n, leaf.size)
                b_at += leaf.size
            else:
                values[:, v_at : v_at + leaf.size] = arr.reshape(n, leaf.size) - leaf.start
                v_at += leaf.size
        return values.tobytes(), byte_lane.tobytes()

    def _check(self, leaf: _Leaf, column: list, env_name: str) -> np.ndarray:
        space = leaf.space
        if isinstance(space, gs.Box):
            for i, x in enumerate(column):
                dtype = getattr(x, "dtype", None)
                if dtype != space.dtype or np.shape(x) != space.shape:
                    raise ValueError(
                        f"{env_name}: env {i}'s observation {self.what if leaf.path == self.what else leaf.path} "
                        f"is not in {space}: dtype {dtype}, shape {np.shape(x)} ({_show(x)})"
                    )
            arr = np.stack(column)
            flat = arr.reshape(len(column), -1)
            bad = (flat < leaf.low) | (flat > leaf.high) | np.isnan(flat)
        else:
            arr = np.asarray(column)
            if not np.issubdtype(arr.dtype, np.integer) or arr.shape[1:] != leaf.shape:
                raise ValueError(f"{env_name}: observation {leaf.path} is not in {space}: {_show(column[0])}")
            flat = arr.reshape(len(column), -1) - leaf.start
            bad = (flat < 0) | (flat >= leaf.nvec)
        if bad.any():
            i, j = map(int, np.argwhere(bad)[0])
            raise ValueError(
                f"{env_name}: env {i}'s observation {leaf.path} is outside {space}: "
                f"element {j} = {flat[i, j]} ({_show(column[i])})"
            )
        return arr

    def decode_actions(self, raw: bytes, n: int) -> list:
        """One action per env from the flat ``float32`` batch."""
        flat = np.frombuffer(raw, dtype=np.float32).reshape(n, self.value_dim)
        per_leaf = []
        at = 0
        for leaf in self.leaves:
            block = flat[:, at : at + leaf.size]
            at += leaf.size
            if isinstance(leaf.space, gs.Box):
                per_leaf.append(block.reshape((n,) + leaf.shape).astype(leaf.space.dtype))
            elif isinstance(leaf.space, gs.Discrete):
                per_leaf.append([int(a) + leaf.start for a in block[:, 0]])
            else:
                per_leaf.append((block.astype(np.int64) + leaf.start).astype(leaf.space.dtype))
        if self.single:
            return list(per_leaf[0])
        return [self._assemble(self.space, iter(p[i] for p in per_leaf)) for i in range(n)]

    def _assemble(self, space, it):
        if isinstance(space, gs.Tuple):
            return tuple(self._assemble(s, it) for s in space.spaces)
        if isinstance(space, gs.Dict):
            return {k: self._assemble(s, it) for k, s in space.spaces.items()}
        return next(it)


def _show(x) -> str:
    text = np.array2string(np.asarray(x), threshold=8, edgeitems=2) if np.ndim(x) else repr(x)
    return text if len(text) < 120 else text[:117] + "..."


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
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, dtype=np.int64)

    def spaces(self) -> Tuple[str, str]:
        return json.dumps(self.obs.json), json.dumps(self.act.json)

    def reset(self, seed: Optional[int]) -> Tuple[bytes, bytes]:
        """Resets every env, env ``i`` with ``derive_seed(seed, i)`` (or
        continuing its generator when ``seed`` is None)."""
        observations = []
        for i, env in enumerate(self.envs):
            s = None if seed is None else _hlynr.derive_seed(seed, i)
            observations.append(env.reset(seed=s)[0])
        self.returns[:] = 0
        self.lengths[:] = 0
        return self.obs.encode_batch(observations, self.name)

    def step(self, raw_actions: bytes):
        n = len(self.envs)
        actions = self.act.decode_actions(raw_actions, n)
        observations, rewards = [], np.empty(n)
        terminated = np.zeros(n, dtype=np.uint8)
        truncated = np.zeros(n, dtype=np.uint8)
        finished, finals, success, episodes = [], [], [], []
        for i, (env, action) in enumerate(zip(self.envs, actions)):
            obs, reward, term, trunc, info = env.step(action)
            rewards[i] = reward
            if term or trunc:
                terminated[i], truncated[i] = bool(term), bool(trunc)
                self.returns[i] += reward
                self.lengths[i] += 1
                episodes.append((i, float(self.returns[i]), int(self.lengths[i])))
                self.returns[i], self.lengths[i] = 0.0, 0
                if "is_success" in info:
                    success.append((i, bool(info["is_success"])))
                if self.autoreset:
                    finished.append(i)
                    finals.append(obs)
                    obs, _ = env.reset()
            else:
                self.returns[i] += reward
                self.lengths[i] += 1
            observations.append(obs)
        values, byte_lane = self.obs.encode_batch(observations, self.name)
        final_values, final_bytes = self.obs.encode_batch(finals, self.name) if finals else (b"", b"")
        return (
            values,
            byte_lane,
            rewards.tobytes(),
            terminated.tobytes(),
            truncated.tobytes(),
            finished,
            final_values,
            final_bytes,
            success,
            episodes,
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()
