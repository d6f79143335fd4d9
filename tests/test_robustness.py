"""Programs that do unusual things under the tracker: no crash, no deadlock, right totals."""

from __future__ import annotations

import os

import pytest
from conftest import line_of, site_bytes


def run_ok(runner, name, source, *extra):
    script = runner.write(name, source)
    proc = runner.memlens("run", "--exact", *extra, "-o", "r.mlens", name)
    assert proc.returncode == 0, proc.stderr
    return script, proc


def test_program_using_tracemalloc(runner):
    script, proc = run_ok(runner, "tm.py", """
        import tracemalloc
        tracemalloc.start()
        data = [bytearray(1000) for _ in range(10_000)]   # TM
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(current > 10_000_000)
    """)
    assert proc.stdout.strip() == "True"
    report = runner.report("r.mlens", "leaks")
    got = site_bytes(report, script, line_of(script, "# TM"), "leaked_bytes")
    assert got >= 10_000 * 1000


def test_program_using_setprofile_and_gc_freeze(runner):
    script, proc = run_ok(runner, "prof.py", """
        import gc, sys
        calls = []
        sys.setprofile(lambda frame, event, arg: calls.append(event) if event == "call" else None)
        def f():
            return bytearray(2_000_000)   # PROF
        keep = [f() for _ in range(5)]
        sys.setprofile(None)
        gc.freeze()
        more = [[] for _ in range(100_000)]   # FROZEN
        gc.collect()
        print(len(calls) >= 5)
    """)
    assert proc.stdout.strip() == "True"
    report = runner.report("r.mlens", "leaks")
    assert site_bytes(report, script, line_of(script, "# PROF"), "leaked_bytes") >= 10_000_000
    assert site_bytes(report, script, line_of(script, "# FROZEN"), "leaked_bytes") >= 100_000 * 56


def test_signal_handlers_and_exceptions_in_threads(runner):
    script, proc = run_ok(runner, "sig.py", """
        import os, signal, threading
        got = []
        signal.signal(signal.SIGUSR1, lambda *a: got.append(bytearray(1_000_000)))
        for _ in range(20):
            os.kill(os.getpid(), signal.SIGUSR1)
        def bad():
            x = bytearray(3_000_000)
            raise RuntimeError("in thread")
        t = threading.Thread(target=bad)
        t.start(); t.join()
        print(len(got))
    """)
    assert proc.stdout.strip() == "20"
    assert "RuntimeError: in thread" in proc.stderr


ALLOCATOR_PROGRAM = """
    import memlens
    def churn():
        for i in range(100_000):
            d = {"a": i, "b": str(i)}
            lst = [d, i, "x" * (i % 600)]
            del d, lst
    churn()   # warm up: pools and caches settle
    before = memlens.current()
    churn()
    after = memlens.current()
    keep = [bytearray(200) for _ in range(50_000)]   # KEEP
    grown = memlens.current()["live_bytes"] - after["live_bytes"]
    print(after["live_bytes"] - before["live_bytes"], grown,
          after["allocated_bytes"] - before["allocated_bytes"])
"""


@pytest.mark.parametrize("mode", ["--exact", "--sample-rate=65536"])
@pytest.mark.parametrize(
    "allocator",
    [
        pytest.param({}, id="pymalloc"),
        pytest.param({"PYTHONMALLOC": "pymalloc_debug"}, id="debug-hooks"),
        pytest.param({"PYTHONMALLOC": "malloc"}, id="malloc"),
    ],
)
def test_totals_balance_under_every_allocator(runner, mode, allocator):
    """A loop that allocates and frees ~1M small objects (in pools older than tracking, or
    new ones) leaves the live total where it was, with plain pymalloc, with CPython's debug
    hooks wrapped in between and with pymalloc bypassed; what a program keeps shows at its line
    in every configuration."""
    script = runner.write("alloc.py", ALLOCATOR_PROGRAM)
    env = {**os.environ, **allocator}
    proc = runner.memlens("run", mode, "-o", "r.mlens", "alloc.py", env=env)
    assert proc.returncode == 0, proc.stderr
    drift, grown, allocated = (int(x) for x in proc.stdout.split())
    assert abs(drift) < 256 * 1024, f"live total drifted by {drift} over a balanced loop"
    # 50,000 bytearrays of 200 bytes: each a 200-byte (+1) buffer and a ~56-byte object,
    # plus the list; debug hooks add up to 4 words per block.
    assert 50_000 * 250 <= grown <= 50_000 * 400, grown
    assert allocated >= 100_000 * 3 * 50, allocated
    if mode == "--exact":
        report = runner.report("r.mlens", "leaks")
        at_line = site_bytes(report, script, line_of(script, "# KEEP"), "leaked_bytes")
        assert 50_000 * 250 <= at_line <= 50_000 * 400, at_line
