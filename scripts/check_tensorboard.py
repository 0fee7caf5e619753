#!/usr/bin/env python3
"""Loads hlynr TensorBoard event files with TensorBoard's own reader.

Usage: check_tensorboard.py PATH [--expect-scalar TAG=COUNT]... [--expect-text TAG=COUNT]...

PATH is an event file or a run directory. Every scalar series is printed as
(step, value) pairs and every text entry as (step, text). With --expect-*, the
script exits non-zero unless the tag has exactly COUNT points, so it can be
used as a check. Requires `pip install tensorboard` (TensorFlow not needed).
"""

import argparse
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util


def parse_expectations(items):
    out = {}
    for item in items or []:
        tag, _, count = item.rpartition("=")
        if not tag or not count.isdigit():
            sys.exit(f"bad expectation {item!r}: use TAG=COUNT")
        out[tag] = int(count)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="event file or run directory")
    parser.add_argument("--expect-scalar", action="append", metavar="TAG=COUNT")
    parser.add_argument("--expect-text", action="append", metavar="TAG=COUNT")
    args = parser.parse_args()

    # size_guidance 0 = keep every point (the default samples).
    acc = event_accumulator.EventAccumulator(
        args.path,
        size_guidance={
            event_accumulator.SCALARS: 0,
            event_accumulator.TENSORS: 0,
        },
    )
    acc.Reload()
    tags = acc.Tags()

    scalars = {}
    for tag in sorted(tags.get("scalars", [])):
        points = [(e.step, e.value) for e in acc.Scalars(tag)]
        scalars[tag] = points
        print(f"scalar {tag}: {len(points)} points")
        for step, value in points:
            print(f"  step {step}: {value!r}")

    texts = {}
    for tag in sorted(tags.get("tensors", [])):
        metadata = acc.SummaryMetadata(tag)
        if metadata.plugin_data.plugin_name != "text":
            continue
        entries = []
        for e in acc.Tensors(tag):
            array = tensor_util.make_ndarray(e.tensor_proto)
            value = array.item() if array.ndim == 0 else array.tolist()
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            entries.append((e.step, value))
        texts[tag] = entries
        print(f"text {tag}: {len(entries)} entries")
        for step, value in entries:
            print(f"  step {step}: {value!r}")

    failures = []
    for kind, expected, found in (
        ("scalar", parse_expectations(args.expect_scalar), scalars),
        ("text", parse_expectations(args.expect_text), texts),
    ):
        for tag, count in expected.items():
            got = len(found.get(tag, []))
            if got != count:
                failures.append(f"{kind} {tag}: expected {count} points, found {got}")
    if not scalars and not texts:
        failures.append("no scalars or text found")
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
