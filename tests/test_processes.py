"""Every process of the program: --follow-fork children listed in the run's summary with the
tree's combined peak, and `memlens report --children --merge` (issue 15)."""

from __future__ import annotations

import json
import re

POOL = """
import multiprocessing as mp

def work(n):
    data = bytearray(n * 1_000_000)   # WORK LINE
    return len(data)

if __name__ == "__main__":
    mp.set_start_method("fork")
    with mp.Pool(3) as pool:
        print(sum(pool.map(work, [10, 20, 30], chunksize=1)))
    keep = bytearray(5_000_000)
"""


def test_children_in_the_summary_and_merged_into_one_report(runner):
    runner.write("pool.py", POOL)
    proc = runner.memlens("run", "--follow-fork", "-o", "pool.mlens", "pool.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "60000000"
    children = sorted(p.name for p in runner.dir.glob("pool.*.mlens"))
    assert len(children) == 3, children
    listed = re.findall(r"^  pid (\d+)\s+peak\s+(\S+ \S+)\s+pool\.py\s+(pool\.\d+\.mlens)$",
                        proc.stderr, re.M)
    assert sorted(c for _, _, c in listed) == children, proc.stderr
    reports = {c: runner.report(runner.dir / c) for c in children + ["pool.mlens"]}
    for name, r in reports.items():
        assert r["meta"]["warning"] is None, (name, r["meta"]["warning"])  # complete captures
    peaks = [r["totals"]["peak_bytes"] for r in reports.values()]
    m = re.search(r"Process tree: 4 processes, combined peak (\S+ \S+) .*the sum of their peaks, "
                  r"(\S+ \S+), is an upper bound", proc.stderr)
    assert m, proc.stderr
    assert "memlens report pool.mlens --children --merge" in proc.stderr

    merged = runner.memlens("report", "pool.mlens", "--children", "--merge", "--format", "json")
    assert merged.returncode == 0, merged.stderr
    tree = json.loads(merged.stdout)
    assert tree["meta"]["processes"] == 4
    # A child given by name and found again by --children is read once.
    again = runner.memlens("report", "pool.mlens", children[0], "--children", "--merge",
                           "--format", "json")
    assert json.loads(again.stdout)["meta"]["processes"] == 4, again.stderr
    assert tree["totals"]["allocated_bytes"] == sum(
        r["totals"]["allocated_bytes"] for r in reports.values()
    )
    assert max(peaks) <= tree["totals"]["peak_bytes"] <= sum(peaks)
    # The work line holds the children's 10 + 20 + 30 MB at their own peaks.
    work = [s for s in tree["sites"] if s["function"].endswith("work")]
    assert sum(s["peak_bytes"] for s in work) >= 0.8 * 60_000_000
    # Each process is a root frame above its own stacks.
    # (Allocations: a sampling capture may hold no sample live at a worker's peak.)
    folded = runner.memlens("report", "pool.mlens", "--children", "--merge", "--view",
                            "allocations", "--format", "collapsed").stdout
    roots = {re.search(r";process (\d+): ", line).group(1) for line in folded.splitlines()}
    pids = {str(r["meta"]["pid"]) for r in reports.values()}
    assert roots <= pids and len(roots) >= 3, (roots, pids)
    # Several captures need --merge outside the text report.
    several = runner.memlens("report", "pool.mlens", children[0], "--format", "json")
    assert several.returncode == 2 and "--merge" in several.stderr
    text = runner.memlens("report", "pool.mlens", *children)
    assert text.returncode == 0 and text.stdout.count("== pool.") == 4, text.stdout
