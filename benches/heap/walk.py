"""Heap snapshot of a live Python heap plus the full offline analysis, against guppy3 and pympler.

    python benches/heap/walk.py [OBJECTS ...] [--runs N] [--compare]

For each size (default 1M and 5M objects) a fresh interpreter builds a heap of records (each an
instance with a `str` and an `int` attribute, held in one list), then:
  - memlens: `memlens.snapshot(path)` in the process, then `memlens heap path --format json`
    (read, dominators, retained sizes, paths, every view, JSON) in another; total vs the target
    (1 s for 1M objects, 5 s for 5M); with --runs N, the best of N runs (by total wall time),
    and the load average before each;
  - with --compare, when installed in this interpreter: guppy3 (`hpy().heap()`, a types
    histogram, no dominators) and pympler (`muppy.get_objects()` + `summary.summarize`).
Run it with the interpreter that has the memlens wheel installed (release build).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

BUILD = """
import gc, sys, time
class Record:
    def __init__(self, i):
        self.name = "record-%d" % i
        self.value = 1_000_000 + i
per = 4 if sys.version_info < (3, 11) else 3   # instance, str, int (+ a __dict__ before 3.11)
gc.disable()
RECORDS = [Record(i) for i in range({n} // per)]
gc.enable()
"""

MEMLENS = BUILD + """
import memlens
t, c = time.perf_counter(), time.process_time()
stats = memlens._take_snapshot({path!r})
print(time.perf_counter() - t, time.process_time() - c, stats["objects"], stats["file_bytes"])
"""

GUPPY = BUILD + """
from guppy import hpy
t = time.perf_counter()
h = hpy().heap()
str(h)
print(time.perf_counter() - t, h.count)
"""

PYMPLER = BUILD + """
from pympler import muppy, summary
t = time.perf_counter()
objs = muppy.get_objects()
rows = summary.summarize(objs)
summary.format_(rows)
print(time.perf_counter() - t, len(objs))
"""


def run(source: str) -> list:
    out = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, check=True
    ).stdout
    return out.split()


def has(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def measure(n: int, tmp: str) -> dict:
    """One snapshot plus analysis of a fresh heap of about `n` objects."""
    path = os.path.join(tmp, f"h{n}.mlheap")
    load = os.getloadavg()[0]
    walk_s, walk_cpu, objects, file_bytes = run(MEMLENS.format(n=n, path=path))
    t = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "memlens", "heap", path, "--format", "json",
         "-o", os.path.join(tmp, "h.json")],
        check=True,
    )
    analyse_s = time.perf_counter() - t
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    analyse_cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    with open(os.path.join(tmp, "h.json")) as f:
        report = json.load(f)
    return {
        "load": load,
        "objects": int(objects),
        "edges": report["edges"],
        "file_bytes": int(file_bytes),
        "walk_s": float(walk_s),
        "walk_cpu": float(walk_cpu),
        "analyse_s": analyse_s,
        "analyse_cpu": analyse_cpu,
        "total": float(walk_s) + analyse_s,
        "cpu": float(walk_cpu) + analyse_cpu,
    }


def main() -> None:
    argv = sys.argv[1:]
    runs = 1
    if "--runs" in argv:
        i = argv.index("--runs")
        runs = int(argv[i + 1])
        del argv[i : i + 2]
    args = [a for a in argv if not a.startswith("--")]
    compare = "--compare" in argv
    sizes = [int(float(a)) for a in args] or [1_000_000, 5_000_000]
    print(f"CPython {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}, best of {runs}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            results = [measure(n, tmp) for _ in range(runs)]
            m = min(results, key=lambda r: r["total"])
            target = 1.0 if n <= 1_000_000 else 5.0 * n / 5_000_000
            best_cpu = min(r["cpu"] for r in results)
            print(
                f"{m['objects']:>10,} objects, {m['edges']:,} references: snapshot "
                f"{m['walk_s']:.2f} s ({m['walk_cpu']:.2f} s CPU, "
                f"{m['file_bytes'] / m['objects']:.1f} B/object), analysis + JSON "
                f"{m['analyse_s']:.2f} s ({m['analyse_cpu']:.2f} s CPU); total {m['total']:.2f} s wall = "
                f"{m['total'] / target:.2f}x the {target:g} s target, {m['cpu']:.2f} s CPU = "
                f"{m['cpu'] / target:.2f}x (load {m['load']:.1f}; all runs: wall "
                + ", ".join(f"{r['total']:.2f}" for r in results)
                + f"; best CPU {best_cpu:.2f})"
            )
            if compare:
                for name, module, source in (("guppy3", "guppy", GUPPY), ("pympler", "pympler", PYMPLER)):
                    if not has(module):
                        print(f"    {name}: not installed in this interpreter")
                        continue
                    secs = float(run(source.format(n=n))[0])
                    print(f"    {name}: {secs:.2f} s ({secs / m['total']:.1f}x memlens's total)")


if __name__ == "__main__":
    main()
