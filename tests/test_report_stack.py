"""`memlens report --top N` and `--stack FILE:LINE` on a real program."""

from __future__ import annotations

import re

from conftest import line_of

PROGRAM = """
def make(n):
    return bytearray(n)          # MAKE LINE

def small():
    return make(1_000_000)

def large():
    return make(20_000_000)

keep = [small(), large(), large()]
"""


def test_stack_lists_each_caller_of_a_line_with_its_bytes(runner):
    script = runner.write("calls.py", PROGRAM)
    proc = runner.memlens("run", "--exact", "-q", "-o", "c.mlens", "calls.py")
    assert proc.returncode == 0, proc.stderr
    make = line_of(script, "MAKE LINE")
    out = runner.memlens("report", "c.mlens", "--view", "leaks", "--stack", f"calls.py:{make}")
    assert out.returncode == 0, out.stderr
    assert re.search(rf"2 call stacks reach calls\.py:{make} \(leaks: 39\.1 MiB in all\)", out.stdout)
    blocks = out.stdout.split("\n\n")[1:]
    # Heaviest first: the two 20 MB arrays through large(), then small()'s 1 MB.
    assert blocks[0].lstrip().startswith("38.1 MiB") and "large" in blocks[0], out.stdout
    assert re.match(r"\s*9[78]\d\.\d KiB in 2 blocks", blocks[1]) and "small" in blocks[1], out.stdout
    assert f"calls.py:{make}  make  <-" in blocks[0]
    missing = runner.memlens("report", "c.mlens", "--stack", "calls.py:999")
    assert missing.returncode == 1
    assert "no call stack reaches calls.py:999" in missing.stderr


def test_top_sets_how_many_lines_are_listed(runner):
    runner.write("many.py", "\n".join(f"a{i} = bytearray({i + 1} * 100_000)" for i in range(8)))
    proc = runner.memlens("run", "--exact", "-q", "-o", "m.mlens", "many.py")
    assert proc.returncode == 0, proc.stderr
    out = runner.memlens("report", "m.mlens", "--top", "3").stdout
    section = out.split("Top lines at the peak", 1)[1].split("\n\n", 1)[0]
    assert len(re.findall(r"many\.py:\d+", section)) == 3, section
    assert "many.py:8 " in section  # the largest
