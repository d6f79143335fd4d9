"""Stacks are told apart exactly: the same helper reached through different callers keeps each
caller's stack (the tracker reuses the ids of the outer frames a stack shares with the
previous one, so this guards that reuse)."""

from __future__ import annotations

import pytest
from conftest import line_of

TWO_CALLERS = """
def f(n, small):
    if small:
        return list(map(str, range(n)))  # ALLOC_SMALL
    return bytearray(n)  # ALLOC_LARGE

def g(n, small):
    return f(n, small)

def a(n, small):
    return g(n, small)  # VIA_A

def b(n, small):
    return g(n, small)  # VIA_B

keep = []
for _ in range(3):
    # b's stacks hold twice a's memory; calls alternate so that each stack follows the other.
    keep.append(a(SMALL_A, True))
    keep.append(b(2 * SMALL_A, True))
    keep.append(a(LARGE_A, False))
    keep.append(b(2 * LARGE_A, False))
""".replace("SMALL_A", "50_000").replace("LARGE_A", "4_000_000")


def heaviest_caller(report: dict, script, marker: str) -> tuple[str, int]:
    line = line_of(script, f"# {marker}")
    sites = [s for s in report["sites"] if s["file"] == str(script) and s["line"] == line]
    assert len(sites) == 1, sites
    stack = sites[0]["stack"]
    assert [fr["function"] for fr in stack[:2]] == ["f", "g"], stack
    return stack[2]["function"], stack[2]["line"]


def test_same_helper_through_two_callers_keeps_both_stacks(runner):
    script = runner.write("callers.py", TWO_CALLERS)
    proc = runner.memlens("run", "--exact", "-q", "-o", "callers.mlens", "callers.py")
    assert proc.returncode == 0, proc.stderr
    report = runner.report("callers.mlens", "peak")
    # Each site's stack is its heaviest one: b's, which holds two thirds of the memory. Were
    # b's allocations filed under a's stack, a's would be the only (and so heaviest) one.
    for marker in ("ALLOC_SMALL", "ALLOC_LARGE"):
        assert heaviest_caller(report, script, marker) == ("b", line_of(script, "# VIA_B"))
    large = next(
        s for s in report["sites"] if s["line"] == line_of(script, "# ALLOC_LARGE")
    )
    want = 3 * 3 * 4_000_000
    assert abs(large["peak_bytes"] - want) <= 0.05 * want, large


ONE_CALLER_TWO_LINES = """
def f(n, small):
    if small:
        return list(map(str, range(n)))  # ALLOC_SMALL
    return bytearray(n)  # ALLOC_LARGE

def caller(keep):
    for _ in range(3):
        # The helper's frame is the same frame at the same instruction both times; only the
        # caller's line differs, and the second line's stacks hold twice the first's memory.
        keep.append(f(50_000, True))  # FIRST_SMALL
        keep.append(f(100_000, True))  # SECOND_SMALL
        keep.append(f(4_000_000, False))  # FIRST_LARGE
        keep.append(f(8_000_000, False))  # SECOND_LARGE

keep = []
caller(keep)
"""


def test_same_helper_from_two_lines_of_one_caller_keeps_both_stacks(runner):
    script = runner.write("lines.py", ONE_CALLER_TWO_LINES)
    proc = runner.memlens("run", "--exact", "-q", "-o", "lines.mlens", "lines.py")
    assert proc.returncode == 0, proc.stderr
    report = runner.report("lines.mlens", "peak")
    for alloc, second in (("ALLOC_SMALL", "SECOND_SMALL"), ("ALLOC_LARGE", "SECOND_LARGE")):
        line = line_of(script, f"# {alloc}")
        sites = [s for s in report["sites"] if s["file"] == str(script) and s["line"] == line]
        assert len(sites) == 1, sites
        stack = sites[0]["stack"]
        assert (stack[1]["function"], stack[1]["line"]) == ("caller", line_of(script, f"# {second}"))


ROOTED = """
import threading

def build(n):
    return bytearray(n)  # ROOTED_ALLOC

def worker(keep):
    keep.append(build(3_000_000))  # WORKER_CALL

keep = [build(5_000_000)]  # MAIN_CALL
t = threading.Thread(target=worker, args=(keep,))
t.start()
t.join()
"""


@pytest.mark.parametrize("mode", [[], ["--exact"]], ids=["sampling", "exact"])
def test_stacks_start_at_the_program_not_at_memlens(runner, mode):
    """`memlens run` roots every main-thread stack at the program's own `<module>` frame: no
    memlens runner or runpy frame above it (the walk stops there), in either mode. A thread's
    stack still reaches its own outermost frame."""
    script = runner.write("rooted.py", ROOTED)
    proc = runner.memlens("run", *mode, "-q", "-o", "r.mlens", "rooted.py")
    assert proc.returncode == 0, proc.stderr
    report = runner.report("r.mlens", "peak")
    line = line_of(script, "# ROOTED_ALLOC")
    sites = [s for s in report["sites"] if s["file"] == str(script) and s["line"] == line]
    assert len(sites) == 1, sites
    stacks = [sites[0]["stack"]]
    # The site's heaviest stack is the main thread's (5 MB against 3 MB); every stack of the
    # capture that reaches this line is checked through the allocations view's sites too.
    main = stacks[0]
    assert [(f["function"], f["line"]) for f in main] == [
        ("build", line),
        ("<module>", line_of(script, "# MAIN_CALL")),
    ], main
    # Every stack through the program's code ends at its `<module>` (main thread) or at the
    # thread's own bootstrap frame (the worker).
    through_program = [s for s in report["sites"] if any(f["file"] == str(script) for f in s["stack"])]
    assert through_program, report["sites"]
    for site in through_program:
        outer = site["stack"][-1]
        main_thread = (outer["file"], outer["function"]) == (str(script), "<module>")
        thread = outer["file"].endswith("threading.py") and outer["function"].endswith("_bootstrap")
        assert main_thread or thread, site


def test_stacks_of_module_and_code_runs_start_at_the_program(runner):
    runner.write("modrun.py", "keep = bytearray(4_000_000)\n")
    for args, name in ((["-m", "modrun"], "modrun.py"), (["-c", "keep = bytearray(4_000_000)"], "<string>")):
        proc = runner.memlens("run", "--exact", "-q", "-o", "m.mlens", *args)
        assert proc.returncode == 0, proc.stderr
        report = runner.report("m.mlens", "peak")
        top = report["sites"][0]
        assert top["file"].endswith(name) and top["line"] == 1, top
        assert [f["function"] for f in top["stack"]] == ["<module>"], top
