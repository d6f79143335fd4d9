"""`memlens report --source FILE[:FUNCTION]`: memory_profiler's per-line view, from a capture."""

from __future__ import annotations

import re

from conftest import line_of

PROGRAM = """
KEEP = []

def helper(n):
    return bytearray(n)

def work():
    tmp = bytearray(50_000_000)           # TEMP LINE
    del tmp
    KEEP.append(helper(20_000_000))       # KEEP LINE
    small = [str(i) for i in range(1000)] # SMALL LINE
    return len(small)

work()
"""


def row(out: str, line: int) -> list:
    m = re.search(rf"^\s*{line}  (.{{11}})  (.{{11}})  (.{{11}})  (.{{10}})  ", out, re.M)
    assert m, out
    return [c.strip() for c in m.groups()]


def test_source_view_of_one_function_exact(runner):
    script = runner.write("prog.py", PROGRAM)
    proc = runner.memlens("run", "--exact", "-q", "-o", "p.mlens", "prog.py")
    assert proc.returncode == 0, proc.stderr
    out = runner.memlens("report", "p.mlens", "--source", "prog.py:work")
    assert out.returncode == 0, out.stderr
    assert "work in " in out.stdout and "helper in " not in out.stdout
    # The whole function, from its def, with its source.
    assert re.search(rf"^\s*{line_of(script, 'def work')}\s+def work\(\):", out.stdout, re.M)
    temp = row(out.stdout, line_of(script, "TEMP LINE"))
    assert temp[0].startswith("47.7 MiB") and temp[2] == "" and temp[3] == "2", temp
    # A line's figures include what it called: helper()'s 20 MB, still alive at exit.
    keep = row(out.stdout, line_of(script, "KEEP LINE"))
    assert keep[0].startswith("19.1 MiB") and keep[2].startswith("19.1 MiB"), keep
    small = row(out.stdout, line_of(script, "SMALL LINE"))
    assert int(small[3]) >= 1000, small
    assert "~" not in out.stdout  # exact figures


def test_without_a_target_the_top_functions_and_sampling_marks_estimates(runner):
    runner.write("prog.py", PROGRAM)
    proc = runner.memlens("run", "-q", "-o", "s.mlens", "prog.py")
    assert proc.returncode == 0, proc.stderr
    out = runner.memlens("report", "s.mlens", "--source")
    assert out.returncode == 0, out.stderr
    assert "work in " in out.stdout
    assert "are estimates, marked ~" in out.stdout and "~" in out.stdout.split("\n", 1)[1]
    missing = runner.memlens("report", "s.mlens", "--source", "prog.py:nothing")
    assert missing.returncode == 1
    assert "no function of the capture matches prog.py:nothing" in missing.stderr
