"""hlynr's DQN on Gymnasium's classic-control envs (hosted from Python)
against CleanRL's published dqn.py results at the same budget and
hyperparameters (configs/gymnasium/*_dqn.yaml).

    pip install ./crates/py
    python scripts/cleanrl_dqn.py --seeds 1 2 3 --runs-dir runs/cleanrl
    python scripts/cleanrl_dqn.py --table-only --runs-dir runs/cleanrl

For each run: the mean return of the last 100 training episodes (with the
final exploration epsilon 0.05, as CleanRL's learning curves are recorded)
and the final evaluation (10 greedy episodes); then mean +- standard
deviation over seeds.
"""

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import hlynr

ROOT = Path(__file__).resolve().parents[1]
# CleanRL's dqn.py at 500k steps (docs, mean +- std over seeds).
CLEANRL = {"cartpole": (488.69, 16.11), "acrobot": (-91.54, 7.20), "mountaincar": (-194.95, 8.48)}


def last(rows, key):
    values = [r[key] for r in rows if key in r]
    return values[-1] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--runs-dir", default="runs/cleanrl")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    runs = Path(args.runs_dir)
    if not args.table_only:
        for env in CLEANRL:
            for seed in args.seeds:
                subprocess.run(
                    [sys.executable, "-m", "hlynr", "train", "--config", str(ROOT / f"configs/gymnasium/{env}_dqn.yaml"),
                     "--set", f"seed={seed}", "--runs-dir", str(runs), "--name", f"{env}_s{seed}", "--progress", "quiet"],
                    check=True,
                )
    print("| env | hlynr train return (last 100 episodes) | hlynr final eval | CleanRL dqn.py | seeds | wall-clock per run |")
    print("|---|---|---|---|---|---|")
    for env, (ref, ref_std) in CLEANRL.items():
        train, evals, walls = [], [], []
        for run_dir in sorted(runs.glob(f"{env}_s*-*")):
            rows = hlynr.read_metrics(run_dir)
            if not rows or rows[-1]["step"] < 500_000:
                continue
            train.append(last(rows, "rollout/ep_rew_mean"))
            evals.append(last(rows, "eval/mean_reward"))
            walls.append(rows[-1]["time_s"])
        if not train:
            continue
        sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0
        print(
            f"| {env} | {statistics.mean(train):.1f} +- {sd(train):.1f} | {statistics.mean(evals):.1f} +- {sd(evals):.1f} "
            f"| {ref:.1f} +- {ref_std:.1f} | {len(train)} | {statistics.median(walls):.0f} s |"
        )


if __name__ == "__main__":
    main()
