"""hlynr runs as Ray Tune trials (opt-in: needs ``pip install "ray[tune]"``).

A 4-trial ASHA sweep of PPO on CartPole's learning rate finishes, stops at
least one trial early and reports the best config; a trial whose process is
killed mid-run is restarted by Tune and resumes its hlynr run from the
run's checkpoint."""

import json
import os
import threading
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

import hlynr  # noqa: E402
import hlynr.tune  # noqa: E402

CARTPOLE = {
    "env": {"id": "CartPole-v1"},
    "n_envs": 8,
    "total_timesteps": 40_960,
    "ppo": {"n_steps": 32, "batch_size": 256, "n_epochs": 10, "gamma": 0.98, "gae_lambda": 0.8,
            "policy": {"net_arch": [64, 64], "activation": "tanh"}},
    "run": {"eval_every_steps": 8_192, "eval_episodes": 5, "checkpoint_every_steps": 4_096},
}


def kill_once(marker: Path):
    """Kills the trial's own process 0.1 s into the segment after a run
    passes 12k steps (as an OOM killer or a lost node would), leaving
    ``marker``."""

    def on_segment(run_dir: Path) -> None:
        rows = hlynr.read_metrics(run_dir)
        if rows and rows[-1]["step"] >= 12_000 and not marker.exists():
            marker.write_text(str(run_dir))
            threading.Timer(0.1, os._exit, args=(9,)).start()

    return on_segment


def test_an_asha_sweep_stops_trials_early_and_survives_a_killed_trial(tmp_path):
    if os.environ.get("RAY_ADDRESS"):
        ray.init()  # a running cluster (`ray start --head`)
    else:
        ray.init(num_cpus=2, include_dashboard=False)
    try:
        marker = tmp_path / "killed"
        tuner = tune.Tuner(
            tune.with_resources(
                hlynr.tune.trainable(CARTPOLE, runs_dir=tmp_path / "runs", on_segment=kill_once(marker)),
                {"cpu": 1},
            ),
            param_space={"ppo.learning_rate": tune.grid_search([3e-3, 1e-3, 1e-5, 1e-6]), "seed": 1},
            tune_config=tune.TuneConfig(
                metric="eval/mean_reward",
                mode="max",
                scheduler=tune.schedulers.ASHAScheduler(time_attr="training_iteration", max_t=5, grace_period=1,
                                                        reduction_factor=2),
            ),
            run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="sweep",
                                      failure_config=tune.FailureConfig(max_failures=2), verbose=0),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
    assert marker.exists(), "a trial's process was killed"
    assert not results.errors, results.errors
    # ASHA let at least one trial run to the end and stopped at least one
    # early. (Counted in env steps: a restarted trial continues its own run,
    # whose evaluations after Tune's last checkpoint are not reported again,
    # so its iteration count can end below max_t.)
    steps = [r.metrics["env_steps"] for r in results]
    assert len(steps) == 4 and min(steps) < CARTPOLE["total_timesteps"] == max(steps), steps
    best = results.get_best_result()
    assert best.config["ppo.learning_rate"] in (3e-3, 1e-3), best.config
    # Tune restarted the killed trial from its checkpoint, which resumed the
    # same hlynr run: still one run directory per trial, and the killed one
    # went on past the kill.
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 4
    # Every segment ends at an evaluation (or the end): the first one too.
    for run_dir in run_dirs:
        stops = [e["step"] for e in hlynr.read_events(run_dir) if e["kind"] == "stopped"]
        assert stops and all(s % 8_192 == 0 for s in stops), (run_dir, stops)
    killed = Path(marker.read_text())
    steps = hlynr.read_metrics(killed)[-1]["step"]
    assert steps > 12_000 + 8_192, steps
    assert json.loads((killed / "manifest.json").read_text())["status"] != "running"
