#!/usr/bin/env python3
"""Lint the installed CPython standard library with memlens (release build) and compare the
wall time with `ruff check --select B,PERF` on the same tree.

    python3 benches/lint/bench.py [STDLIB_DIR] [--runs N] [--no-build]

Prints the number of files, the best of N runs for each tool, and the ratio memlens / ruff.
Also checks that the default (selective) parse and `--full-parse` report the same findings.
Both tools skip `site-packages` by default, so the tree is the standard library proper.
Ruff runs with `--no-cache` so that neither tool reuses earlier work.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_STDLIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"


def best_of(runs, cmd, cwd):
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
    return min(times), result


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
    ours, result = best_of(args.runs, cmd, stdlib)
    if result.returncode != 0:
        sys.exit(f"memlens failed ({result.returncode}): {result.stderr[-2000:]}")
    summary = result.stdout.strip().splitlines()
    m = re.search(r"in (\d+) files? checked", "\n".join(summary[-4:]))
    files = int(m.group(1)) if m else -1
    problems = len(result.stderr.splitlines())
    findings = len(re.findall(r"^\S.*:\d+:\d+: ML\d+ ", result.stdout, re.M))
    print(f"memlens lint: {files} files, {findings} findings, {problems} files not checked, best of {args.runs}: {ours:.3f} s")

    # Same findings with every statement parsed.
    full_cmd = [str(memlens), "lint", "--exit-zero", "--format", "json", "."]
    fast = json.loads(subprocess.run(full_cmd, cwd=stdlib, capture_output=True, text=True).stdout)
    full_time, full = best_of(1, full_cmd + ["--full-parse"], stdlib)
    full = json.loads(full.stdout)
    key = lambda d: (d["file"], d["line"], d["column"], d["rule"])
    missing = sorted(set(map(key, full)) - set(map(key, fast)))
    extra = sorted(set(map(key, fast)) - set(map(key, full)))
    print(f"memlens lint --full-parse: {full_time:.3f} s, {len(full)} findings; "
          f"selective parse misses {len(missing)}, adds {len(extra)}")
    for d in missing[:10]:
        print("  missed:", d)
    for d in extra[:10]:
        print("  added: ", d)

    ruff = shutil.which("ruff")
    if not ruff:
        print("ruff not installed (pip install ruff): no comparison")
        return
    version = subprocess.run([ruff, "--version"], capture_output=True, text=True).stdout.strip()
    ruff_files = len(subprocess.run([ruff, "check", "--show-files", "."], cwd=stdlib,
                                    capture_output=True, text=True).stdout.splitlines())
    rcmd = [ruff, "check", "--no-cache", "--select", "B,PERF", "--exit-zero", "--quiet", "."]
    theirs, _ = best_of(args.runs, rcmd, stdlib)
    print(f"{version} check --select B,PERF --no-cache: ~{ruff_files} files, best of {args.runs}: {theirs:.3f} s")
    print(f"ratio memlens / ruff: {ours / theirs:.2f}x on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
