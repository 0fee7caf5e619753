"""Sweeps on Ray Tune: hlynr runs as Tune trials.

``trainable(base_config)`` returns a Tune function trainable. Each trial
trains ``base_config`` (a YAML path or a mapping) with the trial's sampled
values applied as overrides (Tune config keys are hlynr's dotted keys, e.g.
``"ppo.learning_rate"``), one segment per evaluation: after each
evaluation it reports ``eval/mean_reward`` (and ``eval/success_rate`` when
the env has one) and ``env_steps`` to Tune with a checkpoint. When Tune
restarts a trial (a failed worker, a killed process, PBT or a resumed
experiment), the trial resumes its hlynr run from that run's newest valid
checkpoint, so early stopping (ASHA) and fault tolerance work as for any
Tune trainable.

Tune's checkpoint holds the run directory's path, not the run: on a
cluster of several machines, ``runs_dir`` must be on storage every node
sees. Needs ``pip install "ray[tune]"``.

    from ray import tune
    import hlynr.tune

    tuner = tune.Tuner(
        hlynr.tune.trainable("configs/intercept_ppo.yaml", runs_dir="/shared/runs"),
        param_space={"ppo.learning_rate": tune.loguniform(1e-4, 1e-3), "ppo.ent_coef": tune.uniform(0, 0.01)},
        tune_config=tune.TuneConfig(metric="eval/mean_reward", mode="max", num_samples=8,
                                    scheduler=tune.schedulers.ASHAScheduler()),
    )
    best = tuner.fit().get_best_result()
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Union

from . import _hlynr
from .runs import read_metrics, resolve_config, resume, train

__all__ = ["trainable"]

POINTER = "hlynr_run.json"


def _override(key: str, value: Any) -> str:
    # JSON is YAML: numbers, strings, lists and mappings keep their types.
    return f"{key}={json.dumps(value)}"


def _last_eval(run_dir: Path) -> Optional[Dict[str, Any]]:
    rows = [r for r in read_metrics(run_dir) if "eval/mean_reward" in r]
    if not rows:
        return None
    row = rows[-1]
    report = {"env_steps": row["step"], "eval/mean_reward": row["eval/mean_reward"]}
    if row.get("eval/success_rate") is not None:
        report["eval/success_rate"] = row["eval/success_rate"]
    return report


def trainable(
    base_config: Union[str, os.PathLike, Mapping[str, Any]],
    *,
    runs_dir: Union[str, os.PathLike] = "runs/tune",
    on_segment: Optional[Callable[[Path], None]] = None,
) -> Callable[[Dict[str, Any]], None]:
    """A Tune function trainable training ``base_config`` (see the module
    docs). ``on_segment(run_dir)`` is called before each training segment
    (tests use it to inject failures)."""
    from ray import tune

    base = dict(base_config) if isinstance(base_config, Mapping) else os.fspath(Path(base_config).resolve())
    runs = Path(runs_dir).resolve()

    def run_trial(config: Dict[str, Any]) -> None:
        overrides = [_override(k, v) for k, v in sorted(config.items())]
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as d:
                run_dir = Path(json.loads((Path(d) / POINTER).read_text())["run_dir"])
            resolved = json.loads(_hlynr.run_config(run_dir))
            reported = _last_eval(run_dir)
        else:
            context = tune.get_context()
            name = context.get_trial_name() or "trial"
            resolved, run_dir, reported = None, None, None
            runs.mkdir(parents=True, exist_ok=True)
        if resolved is None:
            resolved = resolve_config(base, overrides=overrides)
        if not resolved["run"].get("evaluate", True):
            raise ValueError("a Tune trial reports evaluations: its config needs run.evaluate: true")
        total = int(resolved["total_timesteps"])
        every = int(resolved["run"]["eval_every_steps"]) or total
        while True:
            done_steps = reported["env_steps"] if reported else 0
            target = min(total, (done_steps // every + 1) * every)
            if run_dir is None:
                # The first segment also creates the run directory.
                segment = train(base, overrides=overrides, runs_dir=runs, name=name, progress="quiet", steps=target)
                run_dir = segment.run_dir
            else:
                if on_segment is not None:
                    on_segment(run_dir)
                segment = resume(run_dir, progress="quiet", steps=target)
            latest = _last_eval(run_dir)
            if latest is not None and latest != reported:
                reported = latest
                with tempfile.TemporaryDirectory() as d:
                    (Path(d) / POINTER).write_text(json.dumps({"run_dir": str(run_dir)}))
                    tune.report(dict(latest), checkpoint=tune.Checkpoint.from_directory(d))
            if segment.status in ("completed", "early_stopped", "doctor_stopped") or segment.env_steps >= total:
                return
            if segment.status == "interrupted":
                raise KeyboardInterrupt(f"hlynr run {run_dir} interrupted")

    return run_trial
