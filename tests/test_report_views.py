"""`memlens report` views on real captures: known allocations at known lines, temporaries,
leaks between checkpoints, thread names, and every format on the same capture."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

from conftest import MiB, line_of, site_bytes

VIEWS = """
import threading
import memlens

def churn():
    for _ in range(50):
        tmp = bytearray(2 * 1024 * 1024)   # TEMP
        del tmp

kept = []
def keep():
    kept.append(bytearray(3 * 1024 * 1024))   # KEEP

churn()
memlens.checkpoint("before")
keep()
memlens.checkpoint("after")
late = bytearray(5 * 1024 * 1024)   # LATE

def worker():
    kept.append(bytearray(4 * 1024 * 1024))   # WORKER
t = threading.Thread(target=worker, name="loader <1>")
t.start()
t.join()
"""


def run_views(runner):
    script = runner.write("views.py", VIEWS)
    proc = runner.memlens("run", "--exact", "-q", "-o", "views.mlens", "views.py")
    assert proc.returncode == 0, proc.stderr
    return script


def near(got: int, want: int, tolerance: float = 0.02) -> bool:
    return abs(got - want) <= tolerance * want


def test_temporary_view_finds_the_churning_line(runner):
    script = run_views(runner)
    report = runner.report("views.mlens", "temporary")
    assert report["view"] == "temporary"
    temp = site_bytes(report, script, line_of(script, "# TEMP"), "temporary_bytes")
    assert near(temp, 50 * 2 * MiB), temp
    assert report["sites"][0]["line"] == line_of(script, "# TEMP")
    # Kept blocks are never temporary.
    assert site_bytes(report, script, line_of(script, "# KEEP"), "temporary_bytes") == 0
    # A strict time bound alone still finds them (freed within the same 20 ms tick or so).
    proc = runner.memlens("report", "views.mlens", "--format", "json", "--view", "temporary",
                          "--temporary-ms", "1000")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert near(site_bytes(report, script, line_of(script, "# TEMP"), "temporary_bytes"),
                100 * MiB)


def test_leaks_between_checkpoints(runner):
    script = run_views(runner)
    proc = runner.memlens("report", "views.mlens", "--format", "json", "--view", "leaks",
                          "--from", "before", "--to", "after")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["leak_window"]["from"] == "before"
    keep = site_bytes(report, script, line_of(script, "# KEEP"), "leaked_bytes")
    assert near(keep, 3 * MiB), keep
    assert site_bytes(report, script, line_of(script, "# LATE"), "leaked_bytes") == 0
    assert site_bytes(report, script, line_of(script, "# TEMP"), "leaked_bytes") == 0
    labels = [c["label"] for c in report["checkpoints"]]
    assert labels == ["before", "after"]
    # Default: live at exit includes the late block and the worker's.
    report = runner.report("views.mlens", "leaks")
    assert near(site_bytes(report, script, line_of(script, "# LATE"), "leaked_bytes"), 5 * MiB)
    proc = runner.memlens("report", "views.mlens", "--from", "nope")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and 'no checkpoint "nope"' in proc.stderr


def test_threads_are_named_in_json_and_text(runner):
    script = run_views(runner)
    report = runner.report("views.mlens", "allocations")
    names = [t["name"] for t in report["threads"]]
    assert "loader <1>" in names, names
    assert near(site_bytes(report, script, line_of(script, "# WORKER"), "allocated_bytes"), 4 * MiB)
    proc = runner.memlens("report", "views.mlens", "--view", "allocations")
    assert proc.returncode == 0, proc.stderr
    assert "by thread:" in proc.stdout and "loader <1>" in proc.stdout
    assert "\x1b[" not in proc.stdout  # no colour when piped


def test_every_format_on_a_real_capture(runner, tmp_path):
    script = run_views(runner)
    keep_line = line_of(script, "# KEEP")
    proc = runner.memlens("report", "views.mlens", "--format", "collapsed", "--view", "leaks")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if f"views.py:{keep_line})" in line]
    assert lines, proc.stdout
    assert near(sum(int(line.rsplit(" ", 1)[1]) for line in lines), 3 * MiB)
    proc = runner.memlens("report", "views.mlens", "--format", "speedscope", "-o", "s.json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["profiles"][doc["activeProfileIndex"]]["unit"] == "bytes"
    proc = runner.memlens("report", "views.mlens", "--format", "pprof", "-o", "p.pb.gz")
    assert proc.returncode == 0, proc.stderr
    raw = gzip.decompress((tmp_path / "p.pb.gz").read_bytes())
    assert b"inuse_space" in raw and b"views.py" in raw
    # Binary output is not written to a terminal, and piping it works.
    piped = subprocess.run([sys.executable, "-m", "memlens", "report", "views.mlens",
                            "--format", "pprof"], cwd=tmp_path, capture_output=True)
    assert piped.returncode == 0 and piped.stdout[:2] == b"\x1f\x8b"

