#!/usr/bin/env python3
"""Report generation: memlens against memray on the same program, in one run.

Runs benches/report/graph.py (a 400k-node object graph built and dropped, about 5M allocation
events) under `memlens run --exact` and under `memray run`, then times, best of --repeat:

- `memlens report CAPTURE --format html` (falls back to json when this build has no HTML
  renderer, and says so),
- `memlens report CAPTURE --format json`,
- `memray flamegraph CAPTURE`,

and prints the ratios, plus the capture sizes and event counts. The reader's own speed
(events/s on one core) is measured by `crates/memlens-analysis/examples/bench_reader.rs`, which
this script runs on the same capture when cargo is available.

    python3 benches/report/bench.py --python VENV/bin/python [--repeat 3] [--nodes 400000]

The Python must have memlens (and, for the comparison, memray) installed;
benches/report/run.sh builds such a venv under $CARGO_TARGET_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def timed(cmd: list, cwd: str) -> float:
    return timed_cpu(cmd, cwd)[0]


def timed_cpu(cmd: list, cwd: str) -> tuple:
    """Wall seconds and CPU seconds (user + system) of one run of `cmd`.

    On a shared, loaded machine the wall time includes waiting for a core; the CPU time does
    not, so both are printed and compared.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def best(cmd: list, cwd: str, repeat: int) -> tuple:
    runs = [timed_cpu(cmd, cwd) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=400_000)
    ap.add_argument("--keep", help="directory to keep the captures in")
    args = ap.parse_args()
    py = args.python
    tmp = args.keep or tempfile.mkdtemp(prefix="memlens-report-bench-")
    os.makedirs(tmp, exist_ok=True)
    graph = os.path.join(HERE, "graph.py")
    memlens = [py, "-m", "memlens"]

    t = timed(memlens + ["run", "-q", "--exact", "-o", "graph.mlens", graph, str(args.nodes)], tmp)
    capture = os.path.join(tmp, "graph.mlens")
    report = json.loads(subprocess.run(
        memlens + ["report", capture, "--format", "json"], check=True, capture_output=True).stdout)
    events = report["meta"]["events"]
    size = os.path.getsize(capture)
    print(f"memlens run --exact: {t:.2f} s, capture {size / 1e6:.1f} MB, {events:,} events "
          f"({size / max(events, 1):.2f} bytes/event), {report['totals']['allocations']:,} allocations")

    help_text = subprocess.run(memlens + ["report", "--help"], capture_output=True, text=True).stdout
    has_html = "html" in help_text
    results = {}
    if has_html:
        results["memlens report --format html"] = best(
            memlens + ["report", capture, "--format", "html", "-o", "r.html"], tmp, args.repeat)
    else:
        print("note: this build has no HTML renderer; timing --format json in its place")
    results["memlens report --format json"] = best(
        memlens + ["report", capture, "--format", "json", "-o", "r.json"], tmp, args.repeat)
    results["memlens report --format pprof"] = best(
        memlens + ["report", capture, "--format", "pprof", "-o", "r.pb.gz"], tmp, args.repeat)

    has_memray = subprocess.run([py, "-c", "import memray"], capture_output=True).returncode == 0
    if has_memray:
        # --trace-python-allocators: memray's default sees only what reaches malloc (a few
        # thousand of these allocations); this makes it record every one, as --exact does.
        t = timed([py, "-m", "memray", "run", "-f", "-q", "--trace-python-allocators",
                   "-o", "graph.bin", graph, str(args.nodes)], tmp)
        print(f"memray run: {t:.2f} s, capture {os.path.getsize(os.path.join(tmp, 'graph.bin')) / 1e6:.1f} MB")
        results["memray flamegraph"] = best(
            [py, "-m", "memray", "flamegraph", "-f", "-o", "m.html", "graph.bin"], tmp, args.repeat)
    else:
        print("note: memray is not installed in this Python: no comparison")

    print(f"{'best of ' + str(args.repeat):<34} {'wall':>9} {'cpu':>9}   events/s (wall)")
    for name, (wall, cpu) in results.items():
        print(f"{name:<34} {wall:8.3f}s {cpu:8.3f}s   {events / wall / 1e6:6.1f} M")
    if has_memray:
        ours = results.get("memlens report --format html", results["memlens report --format json"])
        theirs = results["memray flamegraph"]
        print(f"memray flamegraph / memlens report: {theirs[0] / ours[0]:.1f}x wall, "
              f"{theirs[1] / ours[1]:.1f}x cpu")

    cargo = shutil.which("cargo")
    if cargo:
        out = subprocess.run(
            [cargo, "run", "--quiet", "--release", "-p", "memlens-analysis", "--example", "bench_reader",
             "--", capture], cwd=ROOT, capture_output=True, text=True)
        print(out.stdout.strip() or out.stderr.strip())
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
