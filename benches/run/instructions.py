#!/usr/bin/env python3
"""Instruction counts of `memlens run` against plain Python, under callgrind.

Wall time on a shared 2-core machine varies by tens of percent between runs; instruction
counts do not. Each workload of `workloads.py` runs fewer iterations (`--scale`, default
1/20) under `valgrind --tool=callgrind` (every thread, the writer's included), and the fixed
start-up cost (the `empty` workload) is subtracted from both sides, so the ratio is that of the
workload itself. PYTHONHASHSEED is fixed so that dict probing is the same in every run, and
OpenBLAS runs one thread (its spinning workers made numpy's count vary by 1%).

    python3 benches/run/instructions.py [--only churn,json_mix] [--exact]

Instruction ratios overstate wall time for the hooks (straight-line code that runs at a high
IPC beside the interpreter's branchy code); they are the stable signal for comparing builds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ["churn", "json_mix", "calls", "retained_graph", "numpy_temporaries"]


def instructions(cmd: list, cwd: str) -> int:
    # OpenBLAS's worker threads spin for a varying number of instructions: one thread makes
    # numpy_temporaries repeatable (600.75M twice, against 619-624M with the default).
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    # valgrind maps a program's memory from 64 MiB up, where no kernel would: plain Python's
    # objects then have addresses below 2**30, one 30-bit digit as an int, while memlens's
    # arenas (a reservation too large for that space) sit higher, at two digits, as both do
    # natively. `json.dumps` hashes `id(obj)` of every container it writes (its circular
    # check), so plain Python looked ~1% cheaper on json_mix than it is. Mapping from 4 GiB
    # up gives both sides two-digit ids, as on a real run.
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--aspace-minaddr=0x100000000",
         "--callgrind-out-file=/dev/null", *cmd],
        cwd=cwd, env=env, capture_output=True, text=True, check=True,
    )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if not found:
        raise SystemExit(f"no instruction count from callgrind for {cmd}:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--exact", action="store_true", help="measure --exact instead of sampling")
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    py = args.python
    tmp = tempfile.mkdtemp(prefix="memlens-instr-")
    mode = ["--exact"] if args.exact else []
    selected = [w for w in WORKLOADS if not args.only or w in args.only.split(",")]

    sys.path.insert(0, HERE)
    from bench import memlens_command

    ml = memlens_command(py)

    def memlens(script: str, *argv: str) -> list:
        return [*ml, "run", "-q", *mode, "-o", "i.mlens", script, *argv]

    script = os.path.join(HERE, "workloads.py")
    os.environ["MEMLENS_BENCH_SCALE"] = str(args.scale)
    plain0 = instructions([py, script, "empty"], tmp)
    ours0 = instructions(memlens(script, "empty"), tmp)
    print(f"python: {py}  mode: {'exact' if args.exact else 'sampling'}  scale: {args.scale}")
    print(f"start-up: python {plain0 / 1e6:.1f}M  memlens {ours0 / 1e6:.1f}M instructions")
    for w in selected:
        plain = instructions([py, script, w], tmp) - plain0
        ours = instructions(memlens(script, w), tmp) - ours0
        print(f"{w:<20} python {plain / 1e6:>9.1f}M  memlens {ours / 1e6:>9.1f}M  "
              f"{ours / plain:.3f}x", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
