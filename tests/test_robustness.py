"""Programs that do unusual things under the tracker: no crash, no deadlock, right totals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

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


# A test hook of the tracker (crates/memlens-tracker, `STALL_WRITER_ENV`): the writer thread
# waits this many milliseconds before it first drains, as a stuck writer would.
STALL = "MEMLENS_TEST_STALL_WRITER_MS"

# Churns small objects for 3.5 s: the thread's ring (128K events) fills within the writer's
# 3 s stall, the thread waits 2 s for room, then drops events until the writer wakes.
CHURN = """
import textwrap
import time
t0 = time.monotonic()
while time.monotonic() - t0 < 3.5:
    junk = [str(i) for i in range(1000)]
"""


def lost_line(stderr: str) -> list:
    return [line for line in stderr.splitlines() if "lost" in line]


def test_dropped_events_reach_the_summary_and_the_json(runner):
    runner.write("churn.py", CHURN)
    env = dict(os.environ, **{STALL: "3000"})
    proc = runner.memlens("run", "--exact", "-o", "d.mlens", "churn.py", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = lost_line(proc.stderr)
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert "warning:" in line and "totals are exact, but sites may be incomplete" in line
    shown = int(line.split("warning:")[1].split()[0])
    report = runner.report("d.mlens")
    assert report["meta"]["dropped_events"] == shown > 0
    assert report["meta"]["warning"] is None, "the capture itself is complete"


def test_dropped_events_match_the_recorders_count(runner):
    # The API's summary reads the recorder's own counter; the report reads the capture.
    runner.write("api.py", """
        import json, time, memlens
        with memlens.track("a.mlens", exact=True) as t:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 3.5:
                junk = [str(i) for i in range(1000)]
        print(json.dumps(t.summary))
    """)
    env = dict(os.environ, **{STALL: "3000"})
    proc = subprocess.run(
        [sys.executable, "api.py"], cwd=runner.dir, capture_output=True, text=True,
        env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    counted = json.loads(proc.stdout)["dropped_events"]
    assert counted > 0
    assert runner.report("a.mlens")["meta"]["dropped_events"] == counted


def test_a_normal_run_drops_nothing(runner):
    runner.write("churn.py", CHURN.replace("3.5", "0.5"))
    env = {k: v for k, v in os.environ.items() if k != STALL}
    proc = runner.memlens("run", "--exact", "-o", "n.mlens", "churn.py", env=env)
    assert proc.returncode == 0, proc.stderr
    assert lost_line(proc.stderr) == [], proc.stderr
    assert runner.report("n.mlens")["meta"]["dropped_events"] == 0


SLEEPER = """
import sys, time
data = bytearray(40_000_000)   # JUST_BEFORE
print("ready", flush=True)
time.sleep(60)
"""


def test_sigterm_from_outside_flushes_at_once(runner):
    # The program is idle (its writer asleep between ticks) when another process sends
    # SIGTERM; the handler rings the writer awake, so the flush holding the allocation made
    # just before is written and the process dies at once, not after a tick or a timeout.
    script = runner.write("sleeper.py", SLEEPER)
    proc = subprocess.Popen(
        [sys.executable, "-m", "memlens", "run", "-o", "s.mlens", "sleeper.py"],
        cwd=runner.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.communicate()
    assert status in (-signal.SIGTERM, 128 + signal.SIGTERM), status
    assert took < 0.5, f"the process took {took:.3f} s to flush and die"
    report = runner.report("s.mlens", "leaks")
    got = site_bytes(report, script, line_of(script, "# JUST_BEFORE"), "leaked_bytes")
    assert abs(got - 40_000_000) < 0.25 * 40_000_000


# Objects of every pymalloc size class and some larger, replaced at random; each carries its
# own content, so a block handed out twice would show as a clobbered object. A first pass
# outside tracking fills the free lists and caches that would otherwise move the count.
POOLS_PROGRAM = """
import random, sys, memlens

def pattern(step, size):
    return (step.to_bytes(4, "little") * (size // 4 + 1))[:size]

def churn(seed, steps=200_000, slots=20_000):
    # Lists of bytes and ints only: freed tuples would stay in CPython's free list.
    rng = random.Random(seed)
    live, made = [b""] * slots, [0] * slots
    for step in range(1000, steps + 1000):
        i = rng.randrange(slots)
        live[i] = pattern(step, rng.randrange(1, 700))
        made[i] = step
    return sum(1 for b, step in zip(live, made) if b != pattern(step, len(b)))

churn(1)
with memlens.track("pools.mlens", sample_rate=SAMPLE_RATE):
    hooks = memlens._native.python_hooks()
    blocks = sys.getallocatedblocks()
    before = memlens.current()["live_bytes"]
    bad = churn(2)
    drift_blocks = sys.getallocatedblocks() - blocks
    drift_bytes = memlens.current()["live_bytes"] - before
print(hooks, bad, drift_blocks, drift_bytes)
"""


@pytest.mark.parametrize("sample_rate", [512 * 1024, 64])
def test_blocks_served_on_pymallocs_fast_path_stay_distinct_and_counted(runner, sample_rate):
    """With plain pymalloc the sampling hooks take pymalloc's common case themselves (pop from
    or push to a pool's free list in our arenas): 200,000 objects of random sizes replaced at
    random keep their contents, pymalloc's own count of allocated blocks (the sum of its pool
    headers' counts) comes back to where it was, and so do live bytes; also when nearly every
    block is sampled and served by malloc instead."""
    runner.write("pools.py", POOLS_PROGRAM.replace("SAMPLE_RATE", str(sample_rate)))
    proc = subprocess.run([sys.executable, "pools.py"], cwd=runner.dir, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    hooks, bad, drift_blocks, drift_bytes = proc.stdout.split()
    assert hooks == "pools"
    assert int(bad) == 0
    assert abs(int(drift_blocks)) <= 64, drift_blocks
    assert abs(int(drift_bytes)) <= 64 * 1024, drift_bytes


@pytest.mark.parametrize(
    "env, mode, expected",
    [
        pytest.param({}, [], "pools", id="pymalloc-sampling"),
        pytest.param({}, ["--exact"], "general", id="pymalloc-exact"),
        pytest.param({"PYTHONMALLOC": "pymalloc_debug"}, [], "general", id="debug-hooks"),
        pytest.param({"PYTHONMALLOC": "malloc"}, [], "general", id="malloc"),
    ],
)
def test_which_python_hooks_run(runner, env, mode, expected):
    """The fast path is taken wherever it can be (plain pymalloc, sampling), on every
    interpreter version, and nowhere else."""
    runner.write("which.py", "import memlens; print(memlens._native.python_hooks())\n")
    proc = runner.memlens("run", *mode, "-q", "-o", "w.mlens", "which.py",
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [expected]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="interpreters with their own obmalloc")
def test_an_isolated_subinterpreter_is_never_served_from_the_main_pools(runner):
    """From 3.12 an interpreter can have its own obmalloc state (and GIL): its blocks must come
    from its own pools, never from the main interpreter's lists, or its pymalloc would later
    hand one of ours to libc's free (3.13 aborted so, before the guard). The main interpreter
    and an isolated one take turns allocating and freeing; the program runs to the end."""
    runner.write("sub.py", """
import sys, memlens
interp = __import__("_interpreters" if sys.version_info >= (3, 13) else "_xxsubinterpreters")
run = getattr(interp, "run_string", None) or interp.exec
with memlens.track("sub.mlens"):
    keep = [str(i) for i in range(100_000)]
    iid = interp.create()
    for _ in range(3):
        run(iid, "x = [str(i) * 3 for i in range(100_000)]\\ny = {i: [i] for i in range(50_000)}")
        keep += [str(i) for i in range(50_000)]
        run(iid, "del x, y")
    interp.destroy(iid)
    more = [str(i) for i in range(100_000)]
    print(memlens._native.python_hooks(), len(keep) + len(more))
""")
    proc = subprocess.run([sys.executable, "sub.py"], cwd=runner.dir, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["pools", "350000"]
