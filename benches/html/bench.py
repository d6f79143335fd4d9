"""Render time and size of the HTML report for a capture with 100,000 distinct stacks.

Usage: python benches/html/bench.py [--python PY] [--stacks-levels 5] [--repeat 3]

PY must have memlens installed (default: this interpreter). The script writes a program whose
allocations each come from a different stack (10 call lines per level, 5 levels: 10^5 stacks),
captures it with `memlens run --exact`, then times, in the same run:
  - `memlens report --format text` (read + analysis + a summary: the baseline),
  - `memlens report --format html` (read + analysis + the page),
and prints the page's size, what it kept, and the ratio html / text. With node and
tests/browser installed it also opens the page in Chromium and prints the time to first draw.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def program(levels: int) -> str:
    lines = ["import sys", "", "", "def f(level, n, size):", "    if level == 0:",
             "        return bytearray(size)", "    d = n % 10", "    n //= 10"]
    for d in range(10):
        lines.append(f"    if d == {d}:")
        lines.append("        return f(level - 1, n, size)")
    lines += ["", "", f"keep = [f({levels}, i, 64 + (i * 7919) % 4096) for i in range({10 ** levels})]", ""]
    return "\n".join(lines)


def best(cmd: list[str], cwd: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {proc.stderr}")
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--levels", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    memlens = [args.python, "-m", "memlens"]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "stacks.py").write_text(program(args.levels))
        run = subprocess.run([*memlens, "run", "-q", "--exact", "-o", "s.mlens", "stacks.py"],
                             cwd=d, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(run.stderr)
        capture = (d / "s.mlens").stat().st_size
        text = best([*memlens, "report", "s.mlens", "--format", "text"], d, args.repeat)
        html = best([*memlens, "report", "s.mlens", "--format", "html", "-o", "s.html"], d, args.repeat)
        page = (d / "s.html").read_text()
        data = json.loads(re.search(r'id="memlens-data">(.*?)</script>', page, re.S).group(1))
        p = data["pruning"]
        print(f"capture: {capture:,} bytes, {10 ** args.levels:,} distinct allocating stacks")
        print(f"report --format text: {text:.3f} s (read + analysis + summary)")
        print(f"report --format html: {html:.3f} s  ({html / text:.2f}x text)")
        print(f"page: {len(page.encode()):,} bytes; call-tree nodes kept {p['nodes_kept']:,} of "
              f"{p['nodes_total']:,} (threshold {100 * p['threshold']:.4f}% of a view); "
              f"moments {p['moments_kept']}/{p['moments_total']}")
        node = shutil.which("node")
        checker = ROOT / "tests" / "browser" / "check-report.mjs"
        if node and (ROOT / "tests" / "browser" / "node_modules" / "playwright-core").is_dir():
            proc = subprocess.run([node, str(checker), str(d / "s.html"), "f"], capture_output=True, text=True)
            if proc.returncode == 0:
                seen = json.loads(proc.stdout)
                print(f"chromium: loaded and drawn in {seen['loadMs']} ms, "
                      f"{seen['initial']['rects']} frames drawn, console errors: {len(seen['consoleErrors'])}")
            else:
                print("chromium check failed:", proc.stderr.strip().splitlines()[-1:])


if __name__ == "__main__":
    main()
