"""Programs that do unusual things under the tracker: no crash, no deadlock, right totals."""

from __future__ import annotations

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
