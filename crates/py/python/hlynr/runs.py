"""Training runs from Python: start, resume, read their metrics.

A run started here is the same as one started by ``hlynr train``: the same
run directory, config resolution, progress display (on the process's
stderr) and Ctrl-C handling: the update in progress finishes, a checkpoint
is written and the run is marked interrupted, then ``KeyboardInterrupt`` is
raised as usual; ``resume`` continues it.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _hlynr

__all__ = ["Run", "train", "resume", "resolve_config", "read_metrics", "read_events"]

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class Run:
    """A run directory and how its last training segment ended."""

    #: The run directory (``runs/<name>-<time>``).
    run_dir: Path
    #: ``completed``, ``early_stopped`` (``run.early_stop``: evaluations
    #: stopped improving), ``paused`` (stopped at ``steps``), ``interrupted`` or
    #: ``doctor_stopped``.
    status: str
    #: Env steps reached.
    env_steps: int


def _command_line() -> List[str]:
    return [sys.executable, *sys.argv]


def train(
    config: Union[PathLike, Mapping[str, Any]],
    *,
    overrides: Sequence[str] = (),
    runs_dir: PathLike = "runs",
    name: Optional[str] = None,
    progress: str = "bar",
    steps: Optional[int] = None,
) -> Run:
    """Trains from ``config``, a YAML file or a mapping with the same keys
    (``{"env": {"id": "CartPole-v1"}, "algo": "ppo", ...}``), with
    ``overrides`` as ``--set`` takes them (``"ppo.learning_rate=1e-3"``).
    ``name`` defaults to the file's stem (``run`` for a mapping);
    ``progress`` is ``bar``, ``quiet`` or ``json``; ``steps`` stops early
    (the schedules keep ``total_timesteps``, so :func:`resume` continues).
    Config errors are a ``ValueError`` naming the key."""
    path, text, source = _source(config)
    default_name = "run" if path is None else path.stem
    run_dir, status, env_steps = _hlynr.train(
        path,
        text,
        source,
        [str(o) for o in overrides],
        Path(runs_dir),
        name or default_name,
        progress,
        steps,
        _command_line(),
    )
    return Run(Path(run_dir), status, env_steps)


def _source(config: Union[PathLike, Mapping[str, Any]]):
    """``(path, text, name)`` of a config file or mapping, as the bindings
    take it."""
    if isinstance(config, Mapping):
        return None, json.dumps(config), "config mapping"
    return Path(config), None, os.fspath(config)


def resolve_config(config: Union[PathLike, Mapping[str, Any]], *, overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """The config as :func:`train` would resolve it and store it in the
    run's ``config.yaml`` (defaults filled in, scenarios resolved), without
    starting a run. Config errors are a ``ValueError`` naming the key."""
    return json.loads(_hlynr.resolve_config(*_source(config), [str(o) for o in overrides]))


def resume(run_dir: PathLike, *, progress: str = "bar", steps: Optional[int] = None) -> Run:
    """Continues the run at ``run_dir`` from its newest valid checkpoint,
    exactly as ``hlynr resume`` does."""
    status, env_steps = _hlynr.resume(Path(run_dir), progress, steps, _command_line())
    return Run(Path(run_dir), status, env_steps)


def read_metrics(run_dir: PathLike, *, as_frame: bool = False):
    """The run's metric stream, one row per logged update: ``step`` (env
    steps), ``time_s`` and every value under its name
    (``rollout/ep_rew_mean``, ``train/loss``, ...). A list of dicts, or a
    ``pandas.DataFrame`` with ``as_frame=True`` (pandas is optional)."""
    rows, _ = _hlynr.read_metrics(Path(run_dir))
    if not as_frame:
        return rows
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise ImportError("read_metrics(as_frame=True) needs pandas: pip install pandas") from e
    return pd.DataFrame(rows)


def read_events(run_dir: PathLike) -> List[Dict[str, Any]]:
    """The run's events (checkpoints, evaluations' best, doctor findings,
    ...): dicts with ``step``, ``time_s``, ``kind``, ``message`` and the
    event's details."""
    _, events = _hlynr.read_metrics(Path(run_dir))
    out = []
    for e in events:
        event = json.loads(e["event"])
        out.append({"step": e["step"], "time_s": e["time_s"], **event})
    return out
