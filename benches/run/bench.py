#!/usr/bin/env python3
"""Overhead of `memlens run` against plain Python (and memray when installed), in one run.

Prints, per workload, the best-of-N wall time of each tool and its ratio to plain Python.
The machines are noisy: only ratios measured in the same run mean anything.

    python3 benches/run/bench.py [--repeat 5] [--only churn,calls]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ["empty", "churn", "json_mix", "calls", "retained_graph", "numpy_temporaries"]


def timed(cmd: list, cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    py = args.python
    work = os.path.join(HERE, "workloads.py")
    tmp = tempfile.mkdtemp(prefix="memlens-bench-")
    tools = {
        "python": lambda w: [py, work, w],
        "memlens": lambda w: [py, "-m", "memlens", "run", "-q", "-o", "b.mlens", work, w],
        "memlens --exact": lambda w: [py, "-m", "memlens", "run", "-q", "--exact", "-o", "b.mlens", work, w],
    }
    has_memray = subprocess.run([py, "-c", "import memray"], capture_output=True).returncode == 0
    if has_memray:
        tools["memray"] = lambda w: [py, "-m", "memray", "run", "-f", "-q", "-o", "b.bin", work, w]
        tools["memray --trace-python-allocators"] = lambda w: [
            py, "-m", "memray", "run", "-f", "-q", "--trace-python-allocators", "-o", "b.bin", work, w]
    selected = [w for w in WORKLOADS if not args.only or w in args.only.split(",")]
    print(f"python: {py}  repeat: {args.repeat} (best of)  memray: {'yes' if has_memray else 'not installed'}")
    header = f"{'workload':<20}" + "".join(f"{t:>34}" for t in tools)
    print(header)
    for w in selected:
        best = {}
        # Interleave tools in each round so machine noise hits them alike.
        for _ in range(args.repeat):
            for name, cmd in tools.items():
                t = timed(cmd(w), tmp)
                best[name] = min(best.get(name, t), t)
        base = best["python"]
        row = f"{w:<20}"
        for name in tools:
            row += f"{best[name]:>24.3f} s {best[name] / base:>6.2f}x"
        print(row, flush=True)
        size = os.path.getsize(os.path.join(tmp, "b.mlens"))
        report = subprocess.run([py, "-m", "memlens", "report", "b.mlens", "--format", "json"],
                                cwd=tmp, capture_output=True, text=True, check=True).stdout
        events = json.loads(report)["meta"]["events"]
        print(f"{'':<20}exact capture: {size} bytes for {events} events: "
              f"{size / max(events, 1):.3f} bytes/event")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
