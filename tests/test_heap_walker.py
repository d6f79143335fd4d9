"""Heap snapshots of real Python heaps: the walker (memlens.snapshot) read back by `memlens heap`.

Each test runs a small program in a fresh interpreter, takes a snapshot, and checks what
`memlens heap --format json` says about objects the program made on purpose.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import Runner, line_of


def take(runner: Runner, source: str, name: str = "prog.py", timeout: float = 300) -> str:
    """Runs `source` (which calls memlens.snapshot) in a fresh interpreter; returns stdout."""
    script = runner.write(name, source)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=runner.dir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def heap(runner: Runner, snapshot: str, *args: str) -> dict:
    proc = runner.memlens("heap", snapshot, "--format", "json", *args, *(() if "--top" in args else ("--top", "200")))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def type_row(report: dict, name: str) -> dict:
    rows = [t for t in report["types"] if t["type"] == name]
    assert rows, f"no type {name!r} in the snapshot"
    return rows[0]


def why_examples(report: dict) -> list:
    return [g["example"] for g in report["why"]["groups"]]


def test_exact_instance_count_and_global_path(runner: Runner) -> None:
    take(
        runner,
        """
        import memlens

        class Record:
            def __init__(self, i):
                self.name = "r%d" % i

        _RESULTS = [Record(i) for i in range(1234)]
        memlens.snapshot("s.mlheap")
        """,
    )
    report = heap(runner, "s.mlheap", "--why", "Record")
    assert type_row(report, "__main__.Record")["count"] == 1234
    assert report["why"]["matched"] == 1234
    [group] = report["why"]["groups"]
    assert group["count"] == 1234
    assert group["path"] == "module `__main__`, global `_RESULTS` -> list, index * -> __main__.Record"
    assert group["example"].startswith("module `__main__`, global `_RESULTS` -> list, index ")


def test_leaks_are_explained_by_their_paths(runner: Runner) -> None:
    take(
        runner,
        """
        import memlens

        class ClosurePayload: pass
        class MethodOwner:
            def run(self): pass
        class TracebackRow: pass
        class ClassHeld: pass

        def make_handler():
            payload = ClosurePayload()
            def handler():
                return payload
            return handler

        handler = make_handler()
        callbacks = [MethodOwner().run]

        class Registry:
            instances = [ClassHeld()]

        def fail():
            rows = [TracebackRow()]
            raise ValueError("boom")

        try:
            fail()
        except ValueError as exc:
            saved = exc

        memlens.snapshot("s.mlheap")
        """,
    )
    expect = {
        "ClosurePayload": "module `__main__`, global `handler` -> function, `__closure__` -> tuple, "
        "closure cell `payload` -> cell, `cell_contents` -> __main__.ClosurePayload",
        "MethodOwner": "module `__main__`, global `callbacks` -> list, index 0 -> method, "
        "`__self__` -> __main__.MethodOwner",
        "TracebackRow": "module `__main__`, global `saved` -> ValueError, `__traceback__` -> "
        "traceback, `tb_next` -> traceback, `tb_frame` -> frame, local `rows` -> list, "
        "index 0 -> __main__.TracebackRow",
        "ClassHeld": "module `__main__`, global `Registry` -> type, class attribute `instances` "
        "-> list, index 0 -> __main__.ClassHeld",
    }
    for name, path in expect.items():
        report = heap(runner, "s.mlheap", "--why", name)
        assert report["why"]["matched"] == 1, name
        assert why_examples(report) == [path], name


def test_thread_frames_locals_and_names(runner: Runner) -> None:
    take(
        runner,
        """
        import threading
        import memlens

        class InWorker: pass
        class InMain: pass
        started = threading.Event()
        release = threading.Event()

        def worker():
            mine = [InWorker() for _ in range(3)]
            started.set()
            release.wait()

        t = threading.Thread(target=worker, name="bg-worker")
        t.start()
        started.wait()

        def main():
            here = InMain()
            memlens.snapshot("s.mlheap")

        main()
        release.set()
        t.join()
        """,
    )
    report = heap(runner, "s.mlheap", "--why", "InWorker")
    assert report["why"]["matched"] == 3
    [example] = why_examples(report)
    assert example.startswith('thread "bg-worker" frame `worker` (')
    assert example.endswith("local `mine` -> list, index 0 -> __main__.InWorker")
    report = heap(runner, "s.mlheap", "--why", "InMain")
    [example] = why_examples(report)
    script = runner.dir / "prog.py"
    line = line_of(script, 'memlens.snapshot("s.mlheap")')
    assert example == (
        f'thread "MainThread" frame `main` ({script}:{line}), local `here` -> __main__.InMain'
    )


def test_frozen_objects_still_appear(runner: Runner) -> None:
    take(
        runner,
        """
        import gc
        import memlens

        class Frozen:
            pass

        def make():
            # Cycles that nothing else holds: after gc.freeze() only the permanent
            # generation knows them.
            for _ in range(17):
                a = Frozen()
                a.me = a

        gc.disable()
        make()
        gc.freeze()
        assert gc.get_freeze_count() > 0
        memlens.snapshot("s.mlheap")
        """,
    )
    report = heap(runner, "s.mlheap")
    assert type_row(report, "__main__.Frozen")["count"] == 17


def test_numpy_arrays_carry_their_buffer(runner: Runner) -> None:
    pytest.importorskip("numpy", reason="numpy is installed by scripts/test-all")
    take(
        runner,
        """
        import numpy as np
        import memlens

        BIG = np.zeros(1_000_000)           # owns 8,000,000 bytes
        VIEW = BIG[::2]                     # a view: owns nothing, keeps BIG alive
        del BIG
        memlens.snapshot("s.mlheap")
        """,
    )
    report = heap(runner, "s.mlheap", "--why", "numpy.ndarray", "--top", "100000")
    shallow = {g["path"]: (g["count"], g["shallow_bytes"]) for g in report["why"]["groups"]}
    view = "module `__main__`, global `VIEW` -> numpy.ndarray"
    count, size = shallow[view + ", `base` -> numpy.ndarray"]
    assert count == 1 and 8_000_000 <= size < 8_000_000 + 1024
    count, size = shallow[view]
    assert count == 1 and size < 1024
    # The view only passes the buffer through: the array that owns it is the top dominator.
    top = report["dominators"][0]
    assert top["type"] == "numpy.ndarray"
    assert top["path"] == view + ", `base` -> numpy.ndarray"
    assert 8_000_000 <= top["retained_bytes"] < 8_000_000 + 1024


def test_sizes_from_the_layout(runner: Runner) -> None:
    out = take(
        runner,
        """
        import sys
        import memlens

        S = "s" * 100_000
        B = b"b" * 200_000
        L = [None] * 30_000
        D = {i: i for i in range(5000)}
        print(sys.getsizeof(S), sys.getsizeof(B), sys.getsizeof(L), sys.getsizeof(D))
        memlens.snapshot("s.mlheap")
        """,
    )
    sizes = [int(x) for x in out.split()]
    found = []
    for name, type_name in zip("SBLD", ("str", "bytes", "list", "dict")):
        report = heap(runner, "s.mlheap", "--why", type_name, "--top", "100000")
        path = f"module `__main__`, global `{name}` -> {type_name}"
        found += [g["shallow_bytes"] for g in report["why"]["groups"] if g["path"] == path]
    assert found == sizes


def test_walk_leaves_the_program_alone(runner: Runner) -> None:
    out = take(
        runner,
        """
        import gc
        import sys
        import threading
        import memlens
        from memlens import _native

        data = [{"k": [i, str(i)]} for i in range(100_000)]
        probe = data[10]
        stop = False

        def busy():
            n = 0
            while not stop:
                n += len([str(i) for i in range(100)])

        threads = [threading.Thread(target=busy) for _ in range(3)]
        for t in threads:
            t.start()
        before = (sys.getrefcount(probe), sys.getrefcount(data), gc.isenabled(),
                  gc.get_freeze_count(), gc.get_threshold())
        blocks = []
        for i in range(5):
            b0 = sys.getallocatedblocks()
            memlens.snapshot(f"s{i}.mlheap")
            blocks.append(sys.getallocatedblocks() - b0)
        after = (sys.getrefcount(probe), sys.getrefcount(data), gc.isenabled(),
                 gc.get_freeze_count(), gc.get_threshold())
        stop = True
        for t in threads:
            t.join()
        assert before == after, (before, after)
        print(max(blocks))
        """,
    )
    # The walk itself allocates no Python object; the few blocks are the call's arguments and
    # the small result dict (and whatever the busy threads hold at that moment).
    assert int(out.split()[-1]) < 2000
    for i in range(5):
        report = heap(runner, f"s{i}.mlheap")
        assert type_row(report, "dict")["count"] >= 100_000


def test_default_path_outside_tracking(runner: Runner) -> None:
    out = take(
        runner,
        """
        import os
        import memlens
        first = memlens.snapshot()
        second = memlens.snapshot()
        print(first, second, os.getpid())
        """,
    )
    first, second, pid = out.split()
    assert first == f"memlens-{pid}-1.mlheap"
    assert second == f"memlens-{pid}-2.mlheap"
    assert (runner.dir / first).stat().st_size > 0
    heap(runner, first)


def test_bad_path_is_one_clear_error(runner: Runner) -> None:
    script = runner.write(
        "prog.py",
        """
        import memlens
        memlens.snapshot("/nonexistent/dir/s.mlheap")
        """,
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "OSError: cannot write /nonexistent/dir/s.mlheap" in proc.stderr


def test_snapshot_inside_track_goes_into_the_capture(runner: Runner) -> None:
    source = """
        import memlens

        HELD = [None]
        with memlens.track("cap.mlens", exact=True):
            HELD[0] = bytearray(3_000_000)   # first
            memlens.snapshot()
            HELD[0] = bytearray(5_000_000)   # second
            print(memlens.snapshot())
        """
    out = take(runner, source)
    assert out.strip() == "cap.mlens"
    script = runner.dir / "prog.py"
    first_line = line_of(script, "# first")
    second_line = line_of(script, "# second")
    first = heap(runner, "cap.mlens", "--snapshot", "1")
    last = heap(runner, "cap.mlens")
    for report, line, size in ((first, first_line, 3_000_000), (last, second_line, 5_000_000)):
        top = report["dominators"][0]
        assert top["type"] == "bytearray"
        assert top["path"] == "module `__main__`, global `HELD` -> list, index 0 -> bytearray"
        assert size <= top["shallow_bytes"] < size + 100
        assert top["alloc_site"] == {"file": str(script), "line": line}
    proc = runner.memlens("heap", "cap.mlens", "--snapshot", "3")
    assert proc.returncode == 2
    assert "--snapshot 3: the capture holds 2 heap snapshots (1 to 2)" in proc.stderr
