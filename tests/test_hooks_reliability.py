"""The allocator hooks never harm the program, whatever else wraps the allocators (issue 16)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# Small objects only (pymalloc blocks): what the Python-domain hooks count.
PRELUDE = """
import json, memlens, tracemalloc

def small_objects():
    return [str(i) * 3 for i in range(100_000)]

def python_bytes(session):
    with memlens.track(session + ".mlens", exact=EXACT) as t:
        keep = small_objects()
        now = memlens.current()
    return now["allocated_bytes"], keep
"""


def run_program(runner, body: str, exact: bool = False) -> subprocess.CompletedProcess:
    source = (PRELUDE + textwrap.dedent(body)).replace("EXACT", str(exact))
    return subprocess.run(
        [sys.executable, "-c", source], cwd=runner.dir, capture_output=True, text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "first_exact,second_exact", [(False, False), (True, True), (True, False), (False, True)]
)
def test_tracemalloc_started_while_tracking_then_tracking_again(
    runner, first_exact, second_exact
):
    """The second start used to wrap a chain that already held memlens's hook below
    tracemalloc: every allocation then recursed until the stack overflowed (SIGSEGV)."""
    proc = run_program(runner, f"""
        with memlens.track("a.mlens", exact={first_exact}):
            tracemalloc.start()
            first = small_objects()
        try:
            with memlens.track("b.mlens", exact={second_exact}):
                keep = small_objects()
                counted = memlens.current()["allocated_bytes"]
            second = "tracked"
        except RuntimeError as exc:
            counted, second = 0, str(exc)
        traced = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        counted_after, keep = python_bytes("c")
        print(json.dumps([counted, second, traced, counted_after, len(first)]))
    """)
    assert proc.returncode == 0, proc.stderr
    counted, second, traced, counted_after, n = json.loads(proc.stdout)
    assert n == 100_000
    if second_exact and not first_exact:
        # The sampling hooks left below tracemalloc cannot record every allocation: the
        # exact session is refused with what to do, not a crash, and works once it stopped.
        assert "tracemalloc.stop()" in second
    else:
        # The hooks left in the chain are reused (exact ones serve a sampling session too).
        assert second == "tracked"
        assert counted >= 4_000_000, counted
    assert traced >= 4_000_000, traced  # tracemalloc's own figures are intact
    assert counted_after >= 4_000_000, counted_after


@pytest.mark.parametrize(
    "order",
    [
        # memlens, then tracemalloc on top; tracemalloc stops first.
        "m.start t.start t.stop m.stop",
        # tracemalloc first, memlens on top; memlens stops first.
        "t.start m.start m.stop t.stop",
        # tracemalloc first; it stops while memlens tracks (it takes memlens out of the chain).
        "t.start m.start t.stop m.stop",
        # memlens, tracemalloc on top; memlens stops first (its hooks stay below tracemalloc).
        "m.start t.start m.stop t.stop",
    ],
)
@pytest.mark.parametrize("exact", [False, True])
def test_every_order_of_tracemalloc_and_memlens(runner, order, exact):
    body = ["tracker = memlens.track('o.mlens', exact=EXACT)", "results = []"]
    for step in order.split():
        body.append({
            "m.start": "tracker.__enter__()",
            "m.stop": "tracker.__exit__(None, None, None)",
            "t.start": "tracemalloc.start()",
            "t.stop": "tracemalloc.stop()",
        }[step])
        body.append("results.append(len(small_objects()))")
    body.append("again, keep = python_bytes('again')")
    body.append("print(json.dumps([results, again, tracemalloc.is_tracing()]))")
    proc = run_program(runner, "\n".join(body), exact=exact)
    assert proc.returncode == 0, proc.stderr
    results, again, tracing = json.loads(proc.stdout)
    assert results == [100_000] * 4
    assert not tracing
    assert again >= 4_000_000, again


def test_python_hooks_names_the_hooks_in_use_after_a_stop_that_could_not_unwrap(runner):
    proc = run_program(runner, """
        t = memlens.track("h.mlens")
        t.__enter__()
        tracemalloc.start()
        t.__exit__(None, None, None)
        t2 = memlens.track("h2.mlens")
        t2.__enter__()
        during = memlens._native.python_hooks()
        t2.__exit__(None, None, None)
        tracemalloc.stop()
        print(json.dumps([during, memlens._native.python_hooks()]))
    """)
    assert proc.returncode == 0, proc.stderr
    during, after = json.loads(proc.stdout)
    assert during in ("plain", "pools", "general")
    assert after == "none"
