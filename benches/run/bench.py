#!/usr/bin/env python3
"""Overhead of `memlens run` against plain Python (and memray when installed), in one run.

The machines are noisy (wall times move by +-15% between runs minutes apart), so only ratios
measured in the same run mean anything. Two methods:

Rounds (the default, ``--rounds N``, N = 11): per workload, each round runs every tool once,
interleaved, in an order rotated by one each round (so no tool always runs first, right after
another workload, or last). Each tool's time is divided by plain Python's time *in the same
round*, which cancels the slow drift of the machine's load; the script prints the median of
those per-round ratios and their interquartile range (25th-75th percentile), for wall time and
for CPU time (user + system of the child process, from ``os.wait4``). A narrow range means
the median can be trusted to about its width; CPU time is less sensitive than wall time to
the other core being busy, but does not see time spent waiting (for the writer thread, say).

Best-of (``--best-of N``, the older output; ``--repeat N`` is kept as its alias): the fastest
wall time of N interleaved runs per tool, and its ratio to plain Python's fastest.

Either way each workload ends with the size of its ``--exact`` capture per event. Do not
record figures from runs made while builds are running.

    python3 benches/run/bench.py [--rounds 11] [--only churn,calls]
    python3 benches/run/bench.py --best-of 5 [--only churn,calls]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ["empty", "churn", "json_mix", "calls", "retained_graph", "numpy_temporaries"]


def timed(cmd: list, cwd: str) -> tuple:
    """Runs `cmd` to completion; returns (wall seconds, CPU seconds: user + system)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return wall, usage.ru_utime + usage.ru_stime


def memlens_command(py: str) -> list:
    """The `memlens` command installed beside `py` (what users run; `python -m` would add
    runpy's imports), or `py -m memlens` when there is none."""
    script = os.path.join(os.path.dirname(py), "memlens")
    return [script] if os.access(script, os.X_OK) else [py, "-m", "memlens"]


def tools_for(py: str, work: str) -> dict:
    ml = memlens_command(py)
    tools = {
        "python": lambda w: [py, work, w],
        "memlens": lambda w: [*ml, "run", "-q", "-o", "sampling.mlens", work, w],
        "memlens --exact": lambda w: [*ml, "run", "-q", "--exact", "-o", "exact.mlens", work, w],
    }
    has_memray = subprocess.run([py, "-c", "import memray"], capture_output=True).returncode == 0
    if has_memray:
        tools["memray"] = lambda w: [py, "-m", "memray", "run", "-f", "-q", "-o", "b.bin", work, w]
        tools["memray --trace-python-allocators"] = lambda w: [
            py, "-m", "memray", "run", "-f", "-q", "--trace-python-allocators", "-o", "b.bin",
            work, w]
    return tools


def quartiles(values: list) -> tuple:
    """(25th percentile, median, 75th percentile); one value stands for all three."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def rounds(tools: dict, workload: str, n: int, cwd: str) -> None:
    """Prints, per tool, the median per-round ratio to plain Python and its quartiles."""
    names = list(tools)
    runs = {name: [] for name in names}
    for r in range(n):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            runs[name].append(timed(tools[name](workload), cwd))
    base = runs["python"]
    wall = quartiles([t[0] for t in base])
    cpu = quartiles([t[1] for t in base])
    print(f"{workload:<20}{'python':<34}wall {wall[1]:.3f} s [{wall[0]:.3f}-{wall[2]:.3f}]"
          f"   cpu {cpu[1]:.3f} s [{cpu[0]:.3f}-{cpu[2]:.3f}]")
    for name in names[1:]:
        w = quartiles([t[0] / b[0] for t, b in zip(runs[name], base)])
        c = quartiles([t[1] / b[1] for t, b in zip(runs[name], base)])
        print(f"{'':<20}{name:<34}wall {w[1]:.3f}x [{w[0]:.3f}-{w[2]:.3f}]"
              f"   cpu {c[1]:.3f}x [{c[0]:.3f}-{c[2]:.3f}]", flush=True)


def best_of(tools: dict, workload: str, n: int, cwd: str) -> None:
    """Prints the best wall time of each tool and its ratio to plain Python's best."""
    best = {}
    # Interleave tools in each round so machine noise hits them alike.
    for _ in range(n):
        for name, cmd in tools.items():
            t = timed(cmd(workload), cwd)[0]
            best[name] = min(best.get(name, t), t)
    base = best["python"]
    row = f"{workload:<20}"
    for name in tools:
        row += f"{best[name]:>24.3f} s {best[name] / base:>6.2f}x"
    print(row, flush=True)


def capture_size(py: str, cwd: str) -> None:
    size = os.path.getsize(os.path.join(cwd, "exact.mlens"))
    report = subprocess.run([py, "-m", "memlens", "report", "exact.mlens", "--format", "json"],
                            cwd=cwd, capture_output=True, text=True, check=True).stdout
    events = json.loads(report)["meta"]["events"]
    print(f"{'':<20}exact capture: {size} bytes for {events} events: "
          f"{size / max(events, 1):.3f} bytes/event")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--rounds", type=int, default=11,
                      help="interleaved rounds; median per-round ratio and quartiles (default)")
    mode.add_argument("--best-of", "--repeat", dest="best_of", type=int,
                      help="best wall time of N interleaved runs instead (the older output)")
    ap.add_argument("--only", default="", help="comma-separated workloads")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    count = args.best_of if args.best_of is not None else args.rounds
    if count < 1:
        ap.error("the number of rounds or runs must be at least 1")
    py = args.python
    tools = tools_for(py, os.path.join(HERE, "workloads.py"))
    selected = [w for w in WORKLOADS if not args.only or w in args.only.split(",")]
    unknown = set(args.only.split(",")) - set(WORKLOADS) - {""}
    if unknown:
        ap.error(f"unknown workload(s): {', '.join(sorted(unknown))}; known: {', '.join(WORKLOADS)}")
    memray = "yes" if "memray" in tools else "not installed"
    tmp = tempfile.mkdtemp(prefix="memlens-bench-")
    try:
        if args.best_of is not None:
            print(f"python: {py}  repeat: {count} (best of)  memray: {memray}")
            print(f"{'workload':<20}" + "".join(f"{t:>34}" for t in tools))
        else:
            print(f"python: {py}  rounds: {count} (interleaved, order rotated; median ratio to "
                  f"plain python in the same round [interquartile range])  memray: {memray}")
        for w in selected:
            if args.best_of is not None:
                best_of(tools, w, count, tmp)
            else:
                rounds(tools, w, count, tmp)
            capture_size(py, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
