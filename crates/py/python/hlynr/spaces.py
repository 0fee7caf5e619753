"""hlynr spaces in Python: Gymnasium spaces, and the flat encoding.

An hlynr space (``hlynr_env::Space``, given as JSON) travels as two flat
lanes per element: ``float32`` *values* (``Box`` of floats, ``Discrete`` and
``MultiDiscrete`` indices) and ``uint8`` *bytes* (``Box`` of ``uint8``, such
as camera frames). :class:`SpaceCodec` maps between those lanes and the
arrays Gymnasium users hold, batched or not, and checks what it is given:
a wrong shape, dtype or value is a ``ValueError`` naming the space.
"""

from __future__ import annotations

import json
from typing import Any, List, Sequence, Tuple

import numpy as np
from gymnasium import spaces as gs

__all__ = ["SpaceCodec"]


def _bound(v: Any) -> float:
    if isinstance(v, str):
        return {"inf": np.inf, "-inf": -np.inf}[v]
    return float(v)


class _Leaf:
    """One non-tuple part of a space and where it sits in the lanes."""

    def __init__(self, kind: str, spec: dict, value_offset: int, byte_offset: int):
        self.kind = kind
        if kind == "box":
            self.shape = tuple(int(d) for d in spec["shape"])
            self.is_bytes = spec.get("dtype", "f32") == "u8"
            size = int(np.prod(self.shape, dtype=np.int64))
            dtype = np.uint8 if self.is_bytes else np.float32
            low = np.array([_bound(v) for v in spec["low"]], dtype=np.float64)
            high = np.array([_bound(v) for v in spec["high"]], dtype=np.float64)
            self.space = gs.Box(
                low=low.reshape(self.shape).astype(dtype),
                high=high.reshape(self.shape).astype(dtype),
                shape=self.shape,
                dtype=dtype,
            )
        elif kind == "discrete":
            self.shape = ()
            self.is_bytes = False
            size = 1
            self.space = gs.Discrete(int(spec["n"]))
        elif kind == "multi_discrete":
            nvec = [int(n) for n in spec["nvec"]]
            self.shape = (len(nvec),)
            self.is_bytes = False
            size = len(nvec)
            self.space = gs.MultiDiscrete(nvec)
        else:
            raise ValueError(f"unknown hlynr space kind {kind!r}")
        self.size = size
        self.offset = byte_offset if self.is_bytes else value_offset

    @property
    def dtype(self):
        return self.space.dtype


class SpaceCodec:
    """The flat encoding of one hlynr space (see the module docs)."""

    def __init__(self, space_json: str):
        self.spec = json.loads(space_json)
        self.leaves: List[_Leaf] = []
        self.value_dim = 0
        self.byte_dim = 0
        self.space = self._build(self.spec)
        self.is_tuple = "tuple" in self.spec

    def _build(self, spec: dict) -> gs.Space:
        ((kind, body),) = spec.items()
        if kind == "tuple":
            return gs.Tuple([self._build(s) for s in body["spaces"]])
        leaf = _Leaf(kind, body, self.value_dim, self.byte_dim)
        if leaf.is_bytes:
            self.byte_dim += leaf.size
        else:
            self.value_dim += leaf.size
        self.leaves.append(leaf)
        return leaf.space

    def __repr__(self) -> str:
        return f"SpaceCodec({self.space})"

    # Lanes to arrays ---------------------------------------------------

    def decode(self, values: bytes, byte_lane: bytes, n: int):
        """A batch of ``n`` elements from their lanes: arrays with a leading
        batch axis (a tuple of them for a ``Tuple`` space)."""
        v = np.frombuffer(values, dtype=np.float32).reshape(n, self.value_dim)
        b = np.frombuffer(byte_lane, dtype=np.uint8).reshape(n, self.byte_dim)
        parts = []
        for leaf in self.leaves:
            lane = b if leaf.is_bytes else v
            flat = lane[:, leaf.offset : leaf.offset + leaf.size]
            if leaf.kind == "box":
                parts.append(flat.reshape((n,) + leaf.shape))
            elif leaf.kind == "discrete":
                parts.append(flat[:, 0].astype(np.int64))
            else:
                parts.append(flat.astype(np.int64))
        return tuple(parts) if self.is_tuple else parts[0]

    def decode_one(self, values: bytes, byte_lane: bytes):
        """One element (no batch axis) from its lanes."""
        batch = self.decode(values, byte_lane, 1)
        if self.is_tuple:
            return tuple(self._unbatch_leaf(leaf, p) for leaf, p in zip(self.leaves, batch))
        return self._unbatch_leaf(self.leaves[0], batch)

    @staticmethod
    def _unbatch_leaf(leaf: _Leaf, part: np.ndarray):
        return part[0] if leaf.kind != "discrete" else np.int64(part[0])

    # Arrays to lanes ---------------------------------------------------

    def batch_size(self, x) -> Tuple[int, bool]:
        """``(n, batched)`` of ``x``: how many elements it holds and whether
        it carries a batch axis."""
        first = x[0] if self.is_tuple else x
        if self.is_tuple and not isinstance(x, (tuple, list)):
            raise ValueError(f"{self.space}: expected a tuple of {len(self.leaves)} parts, got {type(x).__name__}")
        leaf = self.leaves[0]
        arr = np.asarray(first)
        if arr.ndim == len(leaf.shape):
            return 1, False
        if arr.ndim == len(leaf.shape) + 1:
            return int(arr.shape[0]), True
        raise ValueError(
            f"{self.space}: expected shape {leaf.shape} or {_batched(leaf.shape)}, got shape {arr.shape}"
        )

    def encode(self, x, n: int, batched: bool) -> Tuple[np.ndarray, np.ndarray]:
        """The lanes ``(values, bytes)`` of ``x``, ``n`` elements (with a
        batch axis when ``batched``), each lane a contiguous ``[n, dim]``
        array. Shapes, dtypes and the values of discrete parts are checked."""
        parts: Sequence = x if self.is_tuple else (x,)
        if len(parts) != len(self.leaves):
            raise ValueError(f"{self.space}: expected {len(self.leaves)} parts, got {len(parts)}")
        values = np.empty((n, self.value_dim), dtype=np.float32)
        byte_lane = np.empty((n, self.byte_dim), dtype=np.uint8)
        for leaf, part in zip(self.leaves, parts):
            arr = np.asarray(part)
            want = ((n,) if batched else ()) + leaf.shape
            if arr.shape != want:
                raise ValueError(f"{leaf.space}: expected shape {want}, got {arr.shape} ({show_value(arr)})")
            if leaf.kind == "box" and leaf.is_bytes:
                if arr.dtype != np.uint8:
                    raise ValueError(f"{leaf.space}: expected dtype uint8, got {arr.dtype} ({show_value(arr)})")
                byte_lane[:, leaf.offset : leaf.offset + leaf.size] = arr.reshape(n, leaf.size)
                continue
            if leaf.kind != "box":
                if not np.issubdtype(arr.dtype, np.integer):
                    if not (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))):
                        raise ValueError(f"{leaf.space}: expected integer indices, got {show_value(arr)}")
                arr = arr.astype(np.int64)
            elif not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
                raise ValueError(f"{leaf.space}: expected numbers, got dtype {arr.dtype}")
            values[:, leaf.offset : leaf.offset + leaf.size] = arr.reshape(n, leaf.size)
        return values, byte_lane


def _batched(shape: tuple) -> str:
    return "(" + ", ".join(["n", *map(str, shape)]) + ")"


def show_value(x: Any) -> str:
    """A value as error messages quote it: short, arrays abbreviated."""
    text = np.array2string(np.asarray(x), threshold=8, edgeitems=2) if np.ndim(x) else repr(x)
    return text if len(text) < 120 else text[:117] + "..."
