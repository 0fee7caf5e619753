"""Trained policies loaded from a run directory, with Stable-Baselines3's
``predict`` signature."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Tuple, Union

import numpy as np

from . import _hlynr
from .spaces import SpaceCodec

__all__ = ["Policy", "load_policy"]


class _Memory:
    """The ``state`` :meth:`Policy.predict` returns for a policy with memory
    (a recurrent network, a frame stack): a token for the memory the
    policy keeps for ``n`` rows, valid until the next ``predict``."""

    __slots__ = ("generation", "n")

    def __init__(self, generation: int, n: int):
        self.generation = generation
        self.n = n

    def __repr__(self) -> str:
        return f"<hlynr policy memory for {self.n} row(s)>"


class Policy:
    """A trained hlynr policy (see :func:`load_policy`)."""

    def __init__(self, path: Union[str, os.PathLike]):
        self._policy = _hlynr.Policy(os.fspath(path))
        self._obs = SpaceCodec(self._policy.observation_space)
        self._act = SpaceCodec(self._policy.action_space)
        #: The observation the policy takes (one bare env observation).
        self.observation_space = self._obs.space
        #: The action it returns.
        self.action_space = self._act.space
        #: The id of the environment the run trained on.
        self.env_id: str = self._policy.env_id
        #: The checkpoint directory loaded and its env steps.
        self.checkpoint: str = str(self._policy.checkpoint)
        self.env_steps: int = self._policy.env_steps
        self._generation = 0
        self._python = self._python_env_codecs()
        if self._python is not None:
            # A run over a Python env: observations and actions as that
            # env has them (Dict keys, discrete starts), not hlynr's view.
            self.observation_space = self._python[0].space
            self.action_space = self._python[1].space

    def _python_env_codecs(self):
        """For a run whose env is a Python Gymnasium env (``env.python``),
        that env's observation and action codecs (built from one instance
        of the env, closed at once); ``None`` otherwise."""
        run_dir = Path(self.checkpoint).parent.parent
        env_section = json.loads(_hlynr.run_config(run_dir))["env"]
        spec = env_section.get("python")
        if spec is None:
            return None
        from ._host import _Codec, make_env

        env = make_env(spec, env_section.get("settings") or {})
        try:
            return _Codec(env.observation_space, "observation"), _Codec(env.action_space, "action")
        finally:
            env.close()

    def predict(
        self,
        observation: Any,
        state: Optional[Any] = None,
        episode_start: Optional[np.ndarray] = None,
        deterministic: bool = True,
    ) -> Tuple[Any, Optional[_Memory]]:
        """Actions for one observation or a batch (leading axis), and the
        policy's memory state, as Stable-Baselines3's ``predict``.

        The run's preprocessing is applied here: its frozen observation
        normaliser and, when it trained on stacked frames, the stack.
        ``state=None`` starts every row afresh (memory of a recurrent
        network or a frame stack cleared); passing back the returned
        ``state`` continues, with ``episode_start[i]`` true restarting row
        ``i``. Wrong shapes or dtypes are a ``ValueError`` naming the space.
        """
        if self._python is not None:
            rows, batched = _rows(self._python[0], observation)
            n = len(rows)
            raw_values, raw_bytes = self._python[0].encode_batch(rows, "predict")
            values = np.frombuffer(raw_values, dtype=np.float32)
            byte_lane = np.frombuffer(raw_bytes, dtype=np.uint8)
        else:
            n, batched = self._obs.batch_size(observation)
            values, byte_lane = self._obs.encode(observation, n, batched)
        if state is None:
            self._policy.reset_rows(list(range(n)))
        else:
            if not isinstance(state, _Memory) or state.generation != self._generation:
                raise ValueError(
                    "state must be the one the previous predict returned (hlynr policies keep "
                    "their memory themselves); pass state=None to start afresh"
                )
            if state.n != n:
                raise ValueError(f"state is for {state.n} row(s), the observation has {n}")
            if episode_start is not None:
                starts = np.asarray(episode_start, dtype=bool).reshape(-1)
                if starts.shape != (n,):
                    raise ValueError(f"episode_start: expected {n} flags, got shape {starts.shape}")
                rows = [int(i) for i in np.flatnonzero(starts)]
                if rows:
                    self._policy.reset_rows(rows)
        raw = self._policy.act(values.tobytes(), byte_lane.tobytes(), n, bool(deterministic))
        if self._python is not None:
            per_env = self._python[1].decode_actions(raw, n)
            actions = _stack(per_env) if batched else per_env[0]
        else:
            actions = self._act.decode(raw, b"", n)
            if not batched:
                actions = self._act.decode_one(raw, b"")
        self._generation += 1
        return actions, _Memory(self._generation, n)

    def __repr__(self) -> str:
        return f"Policy(env={self.env_id!r}, checkpoint={self.checkpoint!r}, env_steps={self.env_steps})"


def _rows(codec, observation) -> Tuple[list, bool]:
    """One observation or a batch of a Python env's observation space as a
    list of single observations, and whether it was a batch (a leading axis
    on its first part)."""
    first = codec.parts(observation)[0] if not codec.single else observation
    leaf = codec.leaves[0]
    batched = np.ndim(first) == len(leaf.shape) + 1
    if not batched:
        return [observation], False
    n = len(first)
    if codec.single:
        return list(observation), True
    return [_index(codec.space, observation, i) for i in range(n)], True


def _index(space, x, i):
    from gymnasium import spaces as gs

    if isinstance(space, gs.Tuple):
        return tuple(_index(s, v, i) for s, v in zip(space.spaces, x))
    if isinstance(space, gs.Dict):
        return {k: _index(s, x[k], i) for k, s in space.spaces.items()}
    return x[i]


def _stack(actions: list):
    first = actions[0]
    if isinstance(first, tuple):
        return tuple(_stack([a[k] for a in actions]) for k in range(len(first)))
    if isinstance(first, dict):
        return {k: _stack([a[k] for a in actions]) for k in first}
    return np.asarray(actions)


def load_policy(run_dir: Union[str, os.PathLike]) -> Policy:
    """The trained policy of ``run_dir`` (its best checkpoint, else its
    last) or of ``RUN_DIR/checkpoints/NAME``, built from the checkpoint
    alone: no environment is constructed."""
    return Policy(run_dir)
