"""Runs an exported hlynr policy in onnxruntime and compares its actions with
the ones hlynr computed for the same observations.

usage: check_onnx.py MODEL.onnx CASES.json

CASES.json: {"steps": [{"obs": [[...]], "obs_bytes": [[...]], "reset": [...],
"action": [[...]], "q_values": [[...]]}, ...]}: every output a step lists
("action", and "q_values" of a Q-network) is compared. Steps run in order; a recurrent model's state
("h_in"/"c_in") starts at zero, is zeroed in the rows a step marks "reset",
and is carried from "h_out"/"c_out". Prints the model's inputs and outputs
and the largest differences; exits 1 above the tolerance: 1e-5 absolute for
actions; for Q-values, which reach the hundreds where a float's resolution
is 1e-5, 1e-5 relative to max(1, |Q|).
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
    worst = worst_q = 0.0
    failed = False
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
        for name in ("action", "q_values"):
            if name not in step:
                continue
            want = np.asarray(step[name], dtype=np.float32)
            got = result[name]
            if got.shape != want.shape:
                print(f"step {t}: {name} shape {got.shape}, hlynr's {want.shape}")
                return 1
            abs_diff = np.abs(got.astype(np.float64) - want)
            if name == "q_values":
                worst_q = max(worst_q, float(np.max(abs_diff / np.maximum(1.0, np.abs(want)))))
                err = abs_diff / np.maximum(1.0, np.abs(want))
            else:
                worst = max(worst, float(np.max(abs_diff)))
                err = abs_diff
            if float(np.max(err)) > TOLERANCE:
                failed = True
                row = int(np.argmax(np.max(err, axis=1)))
                print(f"step {t} {name} row {row}: onnxruntime {got[row]}, hlynr {want[row]}")
    q = f", q_values max_rel_diff {worst_q:.3e}" if "q_values" in steps[0] else ""
    print(f"action max_abs_diff {worst:.3e}{q} over {len(steps)} steps")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
