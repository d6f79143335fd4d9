"""What the heap panel adds to the HTML report of a capture that holds a heap snapshot.

Usage: python benches/html/heap_panel.py [--python PY] [--instances 100000] [--repeat 5]

PY must have memlens installed (default: this interpreter). The script captures a program that
keeps N instances of a class in a module global list with `memlens run --exact --heap-snapshot
exit`, then times, in the same run (best of --repeat):
  - `memlens report --format text` (read + analysis + summary: no heap work),
  - `memlens report --format html` (read + analysis + the heap panel: the snapshot read, joined
    with its allocation sites, analysed, summarised + the page),
  - `memlens heap --format json` (the heap analysis alone, for comparison),
and prints the ratios html / text and the page's heap data size.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import best  # noqa: E402  (benches/html/bench.py: best of N runs)

PROGRAM = """
class Session:
    def __init__(self, i):
        self.id = i
        self.name = "user-%d" % i


SESSIONS = []
for i in range({n}):
    SESSIONS.append(Session(i))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--instances", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    ml = [args.python, "-m", "memlens"]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "app.py").write_text(PROGRAM.format(n=args.instances))
        subprocess.run([*ml, "run", "-q", "--exact", "--heap-snapshot", "exit", "-o", "a.mlens", "app.py"],
                       cwd=d, check=True)
        text = best([*ml, "report", "a.mlens", "--format", "text", "-o", "a.txt"], d, args.repeat)
        html = best([*ml, "report", "a.mlens", "--format", "html", "-o", "a.html"], d, args.repeat)
        heap = best([*ml, "heap", "a.mlens", "--format", "json", "-o", "h.json"], d, args.repeat)
        page = (d / "a.html").read_text()
        data = json.loads(re.search(r'id="memlens-data">(.*?)</script>', page, re.S).group(1))
        heap_json = len(json.dumps(data["heap"], separators=(",", ":")))
        print(f"capture: {(d / 'a.mlens').stat().st_size / 1e6:.2f} MB, "
              f"snapshot: {data['heap']['objects']:,} objects")
        print(f"report --format text : {text:.3f} s")
        print(f"report --format html : {html:.3f} s  ({html / text:.2f}x text)")
        print(f"heap --format json   : {heap:.3f} s")
        print(f"page: {len(page.encode()) / 1e6:.2f} MB, heap panel data {heap_json / 1e3:.1f} KB")


if __name__ == "__main__":
    main()
