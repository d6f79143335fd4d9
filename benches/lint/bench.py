#!/usr/bin/env python3
"""Lint the installed CPython standard library with memlens (release build) and compare the
wall time with `ruff check --select B,PERF` on the same tree.

    python3 benches/lint/bench.py [STDLIB_DIR] [--runs N] [--no-build]

Prints the number of files, the best of N runs for each tool (wall clock and CPU time, user +
system, runs of the two tools interleaved so that both see the same machine load), and the
ratios memlens / ruff. Also checks that the default (selective) parse and `--full-parse` give
the same JSON output, finding for finding (rule, place, message and fix).
Both tools skip `site-packages` by default, so the tree is the standard library proper.
Ruff runs with `--no-cache` so that neither tool reuses earlier work.
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_STDLIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"


def timed(cmd, cwd):
    """Runs `cmd`; returns (wall seconds, CPU seconds of the child, result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result


def as_key(finding):
    return json.dumps(finding, sort_keys=True)


def best_of(runs, cmd, cwd):
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu, result = timed(cmd, cwd)
        walls.append(wall)
        cpus.append(cpu)
    return min(walls), min(cpus), result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stdlib", nargs="?", default=DEFAULT_STDLIB)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "memlens-cli"], cwd=REPO, check=True)
    memlens = target / "release" / "memlens"
    stdlib = Path(args.stdlib)

    cmd = [str(memlens), "lint", "--exit-zero", "."]
    ruff = shutil.which("ruff")
    rcmd = [ruff, "check", "--no-cache", "--select", "B,PERF", "--exit-zero", "--quiet", "."] if ruff else None

    load = os.getloadavg()[0]
    # Interleaved runs: memlens, ruff, memlens, ruff, ...
    ours = {"wall": [], "cpu": []}
    theirs = {"wall": [], "cpu": []}
    result = None
    for _ in range(args.runs):
        wall, cpu, result = timed(cmd, stdlib)
        if result.returncode != 0:
            sys.exit(f"memlens failed ({result.returncode}): {result.stderr[-2000:]}")
        ours["wall"].append(wall)
        ours["cpu"].append(cpu)
        if rcmd:
            wall, cpu, _ = timed(rcmd, stdlib)
            theirs["wall"].append(wall)
            theirs["cpu"].append(cpu)

    summary = result.stdout.strip().splitlines()
    m = re.search(r"in (\d+) files? checked", "\n".join(summary[-4:]))
    files = int(m.group(1)) if m else -1
    problems = len(result.stderr.splitlines())
    findings = len(re.findall(r"^\S.*:\d+:\d+: ML\d+ ", result.stdout, re.M))
    print(f"memlens lint: {files} files, {findings} findings, {problems} files not checked, "
          f"best of {args.runs}: {min(ours['wall']):.3f} s wall, {min(ours['cpu']):.3f} s CPU")

    # Same output, finding for finding, with every statement parsed.
    json_cmd = [str(memlens), "lint", "--exit-zero", "--format", "json", "."]
    fast = json.loads(subprocess.run(json_cmd, cwd=stdlib, capture_output=True, text=True).stdout)
    full_wall, full_cpu, full = best_of(1, json_cmd + ["--full-parse"], stdlib)
    full = json.loads(full.stdout)
    missing = sorted(set(map(as_key, full)) - set(map(as_key, fast)))
    extra = sorted(set(map(as_key, fast)) - set(map(as_key, full)))
    same = "identical" if fast == full else "DIFFERENT"
    print(f"memlens lint --full-parse: {full_wall:.3f} s wall, {full_cpu:.3f} s CPU, {len(full)} findings; "
          f"JSON output {same}: selective parse misses {len(missing)}, adds {len(extra)}")
    for d in missing[:10]:
        print("  missed:", d)
    for d in extra[:10]:
        print("  added: ", d)

    if not ruff:
        print("ruff not installed (pip install ruff): no comparison")
        return
    version = subprocess.run([ruff, "--version"], capture_output=True, text=True).stdout.strip()
    ruff_files = len(subprocess.run([ruff, "check", "--show-files", "."], cwd=stdlib,
                                    capture_output=True, text=True).stdout.splitlines())
    print(f"{version} check --select B,PERF --no-cache: ~{ruff_files} files, best of {args.runs}: "
          f"{min(theirs['wall']):.3f} s wall, {min(theirs['cpu']):.3f} s CPU")
    print(f"ratio memlens / ruff on {os.cpu_count()} cores: "
          f"wall {min(ours['wall']) / min(theirs['wall']):.2f}x, "
          f"CPU {min(ours['cpu']) / min(theirs['cpu']):.2f}x "
          f"(load average before the runs: {load:.2f})")


if __name__ == "__main__":
    main()
