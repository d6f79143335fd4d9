"""`memlens gc`: the collector's pauses, what it reclaimed and the lines that made the cycles,
on real programs in both modes."""

from __future__ import annotations

import json
import re

import pytest
from conftest import MiB, line_of

CYCLES = """
import gc, time

class Node:
    def __init__(self, parent=None):
        self.parent = parent
        self.children = []
        self.payload = bytearray(10_000)  # PAYLOAD LINE
        if parent is not None:
            parent.children.append(self)

def build_tree():
    root = Node()
    for _ in range(100):
        Node(root)
    return root

for _ in range(60):
    build_tree()  # each tree is a cycle: only the collector frees it
gc.collect()

gc.disable()
time.sleep(0.3)
gc.enable()
print("done")
"""


def gc_report(runner, capture: str) -> dict:
    proc = runner.memlens("gc", capture, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("exact", [True, False])
def test_cycles_are_attributed_to_the_line_that_allocated_them(runner, exact):
    script = runner.write("cycles.py", CYCLES)
    mode = ["--exact"] if exact else []
    proc = runner.memlens("run", *mode, "-q", "-o", "c.mlens", "cycles.py")
    assert proc.returncode == 0, proc.stderr
    report = gc_report(runner, "c.mlens")
    assert report["format"] == "memlens-gc" and report["version"] == 1
    assert report["recorded"] is True
    # 60 trees of 101 nodes, each with a 10,000-byte payload: 58 MiB of payloads, all of it
    # reclaimed by collections (reference counting cannot free a tree).
    payloads = 60 * 101 * 10_000
    garbage = report["cyclic_garbage"]
    assert payloads <= garbage["bytes"] <= payloads * 1.25, garbage["bytes"]
    assert garbage["objects"] >= 60 * 101 * 2  # each node and its list of children
    assert garbage["sites_estimated"] is (not exact)
    top = garbage["sites"][0]
    assert (top["file"], top["line"]) == (str(script), line_of(script, "PAYLOAD LINE"))
    if exact:
        assert payloads <= top["bytes"] <= payloads * 1.02, top
        assert sum(s["bytes"] for s in garbage["sites"]) == pytest.approx(garbage["bytes"], 0.02)
    else:
        # About 115 samples at the default rate: within 40% (over 4 standard deviations).
        assert 0.6 * payloads <= top["bytes"] <= 1.4 * payloads, top
    # The figures agree with each other.
    gens = report["generations"]
    assert [g["generation"] for g in gens] == [0, 1, 2]
    pauses = report["pauses"]
    assert pauses["count"] == sum(g["collections"] for g in gens) > 0
    assert pauses["total_s"] == pytest.approx(sum(g["pause_total_s"] for g in gens))
    assert 0 < pauses["p50_s"] <= pauses["p99_s"] <= pauses["max_s"]
    assert pauses["max_s"] == max(g["pause_max_s"] for g in gens)
    assert garbage["bytes"] == sum(g["freed_bytes"] for g in gens)
    assert pauses["total_s"] < report["duration_s"]
    # gc.disable() for the 0.3 s sleep.
    assert 0.29 <= report["disabled_s"] <= 0.6, report["disabled_s"]
    assert report["enabled_at_end"] is True

    text = runner.memlens("gc", "c.mlens")
    assert text.returncode == 0, text.stderr
    assert "Cyclic garbage: " in text.stdout
    # Qualified names from 3.11 (`co_qualname`), plain names before.
    assert re.search(
        rf"cycles\.py:{line_of(script, 'PAYLOAD LINE')} in (Node\.)?__init__", text.stdout
    ), text.stdout
    assert "weakref" in text.stdout  # the fix
    assert "gc.disable()" in text.stdout


def test_a_program_without_cycles_has_no_cyclic_garbage(runner):
    runner.write("flat.py", """
        rows = []
        for i in range(200):
            rows.append(bytearray(100_000))
            if len(rows) > 10:
                rows.pop(0)
        import gc
        gc.collect()
    """)
    proc = runner.memlens("run", "--exact", "-q", "-o", "f.mlens", "flat.py")
    assert proc.returncode == 0, proc.stderr
    report = gc_report(runner, "f.mlens")
    assert report["pauses"]["count"] >= 1  # the explicit collection
    assert report["cyclic_garbage"]["bytes"] < 1 * MiB, report["cyclic_garbage"]
    assert not any(s["file"].endswith("flat.py") for s in report["cyclic_garbage"]["sites"])
    assert report["disabled_s"] == 0


def test_collector_left_off_and_gc_garbage_are_reported(runner):
    runner.write("off.py", """
        import gc, time
        gc.set_debug(gc.DEBUG_SAVEALL)
        class A:
            pass
        for _ in range(100):
            a, b = A(), A()
            a.b, b.a = b, a
        gc.collect()
        gc.set_debug(0)
        gc.freeze()
        gc.disable()
        time.sleep(0.2)
    """)
    proc = runner.memlens("run", "-q", "-o", "o.mlens", "off.py")
    assert proc.returncode == 0, proc.stderr
    report = gc_report(runner, "o.mlens")
    assert report["garbage"] >= 198  # DEBUG_SAVEALL keeps every collected pair (not the last)
    assert report["frozen"] > 0
    assert report["enabled_at_end"] is False
    assert report["disabled_s"] >= 0.19
    text = runner.memlens("gc", "o.mlens").stdout
    assert "still off when tracking stopped" in text
    assert "gc.garbage holds" in text
    assert "frozen (gc.freeze())" in text


def test_the_program_sees_gc_as_it_is(runner):
    runner.write("probe.py", """
        import gc
        before = list(gc.callbacks)
        gc.disable()
        off = gc.isenabled()
        gc.enable()
        print(off, gc.isenabled(), gc.enable.__name__, gc.disable.__name__, len(before))
    """)
    plain = runner.memlens("run", "-q", "-o", "p.mlens", "probe.py")
    assert plain.returncode == 0, plain.stderr
    off, on, enable_name, disable_name, _ = plain.stdout.split()
    assert (off, on, enable_name, disable_name) == ("False", "True", "enable", "disable")


def test_bad_input_is_one_line(runner):
    (runner.dir / "junk.mlens").write_bytes(b"definitely not a capture")
    proc = runner.memlens("gc", "junk.mlens")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "junk.mlens" in proc.stderr
