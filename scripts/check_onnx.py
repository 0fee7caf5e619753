"""Runs an exported hlynr policy in onnxruntime and compares its actions with
the ones hlynr computed for the same observations.

usage: check_onnx.py MODEL.onnx CASES.json

CASES.json: {"steps": [{"obs": [[...]], "obs_bytes": [[...]], "reset": [...],
"action": [[...]]}, ...]}. Steps run in order; a recurrent model's state
("h_in"/"c_in") starts at zero, is zeroed in the rows a step marks "reset",
and is carried from "h_out"/"c_out". Prints the model's inputs and outputs
and the largest absolute difference; exits 1 above the tolerance.
"""

import json
import sys

import numpy as np
import onnxruntime as ort

TOLERANCE = 1e-5


def main() -> int:
    model, cases = sys.argv[1], sys.argv[2]
    with open(cases) as f:
        steps = json.load(f)["steps"]
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    for i in session.get_inputs():
        print(f"input {i.name} {i.type} {i.shape}")
    for o in session.get_outputs():
        print(f"output {o.name} {o.type} {o.shape}")
    recurrent = "h_in" in inputs
    h = c = None
    worst = 0.0
    for t, step in enumerate(steps):
        feed = {}
        if "obs" in inputs:
            feed["obs"] = np.asarray(step["obs"], dtype=np.float32)
        if "obs_bytes" in inputs:
            feed["obs_bytes"] = np.asarray(step["obs_bytes"], dtype=np.uint8)
        n = next(iter(feed.values())).shape[0]
        if recurrent:
            hidden = inputs["h_in"].shape[1]
            if h is None:
                h = np.zeros((n, hidden), dtype=np.float32)
                c = np.zeros((n, hidden), dtype=np.float32)
            for row, reset in enumerate(step.get("reset", [False] * n)):
                if reset:
                    h[row] = 0.0
                    c[row] = 0.0
            feed["h_in"], feed["c_in"] = h, c
        result = dict(zip(outputs, session.run(outputs, feed)))
        if recurrent:
            h, c = result["h_out"], result["c_out"]
        want = np.asarray(step["action"], dtype=np.float32)
        got = result["action"]
        if got.shape != want.shape:
            print(f"step {t}: action shape {got.shape}, hlynr's {want.shape}")
            return 1
        diff = float(np.max(np.abs(got.astype(np.float64) - want)))
        worst = max(worst, diff)
        if diff > TOLERANCE:
            row = int(np.argmax(np.max(np.abs(got - want), axis=1)))
            print(f"step {t} row {row}: onnxruntime {got[row]}, hlynr {want[row]}")
    print(f"max_abs_diff {worst:.3e} over {len(steps)} steps")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
