"""Heap snapshots of real heaps where references hide: generator and coroutine locals,
`__slots__`, value stacks of running frames, numpy object arrays, snapshots asked for during a
garbage collection, and leak suspects on a program that imports part of the standard library.
"""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import Runner
from test_heap_walker import heap, take, why_examples


def test_generator_and_coroutine_locals_are_named(runner: Runner) -> None:
    take(
        runner,
        """
        import memlens

        class GenLocal: pass
        class CoroLocal: pass

        def produce():
            held = GenLocal()
            yield 1
            yield held

        async def wait():
            kept = CoroLocal()
            await Pending()
            return kept

        class Pending:
            def __await__(self):
                yield None

        GEN = produce()
        next(GEN)
        CORO = wait()
        CORO.send(None)
        memlens.snapshot("s.mlheap")
        CORO.close()
        """,
    )
    gen = heap(runner, "s.mlheap", "--why", "GenLocal")
    [example] = why_examples(gen)
    assert example.startswith("module `__main__`, global `GEN` -> generator, "), example
    assert example.endswith("local `held` -> __main__.GenLocal"), example
    coro = heap(runner, "s.mlheap", "--why", "CoroLocal")
    [example] = why_examples(coro)
    assert example.startswith("module `__main__`, global `CORO` -> coroutine, "), example
    assert example.endswith("local `kept` -> __main__.CoroLocal"), example


def test_slots_members_and_attributes_are_named(runner: Runner) -> None:
    take(
        runner,
        """
        import memlens

        class Payload: pass

        class Point:
            __slots__ = ("x", "payload")
            def __init__(self):
                self.x = 1
                self.payload = Payload()

        class Sub(Point):
            __slots__ = ("extra",)
            def __init__(self):
                super().__init__()
                self.extra = [Payload()]

        P = Point()
        S = Sub()

        class Held: pass
        class Owner:
            def __init__(self):
                self.first = 1
                self.held = Held()

        O = Owner()
        memlens.snapshot("s.mlheap")
        """,
    )
    # An ordinary instance's attributes (values kept without a dict on 3.11+) are named too.
    held = heap(runner, "s.mlheap", "--why", "Held")
    assert why_examples(held) == [
        "module `__main__`, global `O` -> __main__.Owner, attribute `held` -> __main__.Held"
    ]
    report = heap(runner, "s.mlheap", "--why", "Payload")
    assert report["why"]["matched"] == 3
    assert sorted(why_examples(report)) == sorted(
        [
            "module `__main__`, global `P` -> __main__.Point, attribute `payload` -> __main__.Payload",
            "module `__main__`, global `S` -> __main__.Sub, attribute `payload` -> __main__.Payload",
            "module `__main__`, global `S` -> __main__.Sub, attribute `extra` -> list, index 0 "
            "-> __main__.Payload",
        ]
    )


def test_objects_only_on_a_running_frames_value_stack(runner: Runner) -> None:
    # The list a comprehension is building lives only on the comprehension's value stack (its
    # own frame before 3.12, the enclosing function's frame from 3.12, PEP 709) while `make`
    # takes the snapshot from inside it.
    take(
        runner,
        """
        import memlens

        class Built: pass

        def make(i):
            if i == 3:
                memlens.snapshot("s.mlheap")
            return Built()

        def build():
            return [make(i) for i in range(5)]

        OUT = build()
        """,
    )
    report = heap(runner, "s.mlheap", "--why", "Built")
    assert report["why"]["matched"] == 3
    [group] = report["why"]["groups"]
    assert group["count"] == 3
    path = group["path"]
    assert path.startswith('thread "MainThread" frame `'), path
    assert "`value stack` -> list, index * -> __main__.Built" in path, path
    assert "refcount surplus" not in path, path


def test_numpy_object_array_elements_are_followed(runner: Runner) -> None:
    take(
        runner,
        """
        import numpy as np
        import memlens

        class Cell: pass

        GRID = np.empty((2, 3), dtype=object)
        for i in range(2):
            for j in range(3):
                GRID[i, j] = Cell()
        memlens.snapshot("s.mlheap")
        """,
    )
    report = heap(runner, "s.mlheap", "--why", "Cell")
    assert report["why"]["matched"] == 6
    assert sorted(why_examples(report)) == sorted(
        f"module `__main__`, global `GRID` -> numpy.ndarray, index {i} -> __main__.Cell" for i in range(6)
    )[:1]
    [group] = report["why"]["groups"]
    assert group["path"] == "module `__main__`, global `GRID` -> numpy.ndarray, index * -> __main__.Cell"
    assert group["count"] == 6


def test_snapshot_during_a_collection_is_refused_clearly(runner: Runner) -> None:
    out = take(
        runner,
        """
        import gc, os
        import memlens

        results = []

        class Finalized:
            def __init__(self):
                self.me = self          # a cycle: only the collector frees it
            def __del__(self):
                try:
                    memlens.snapshot("del.mlheap")
                    results.append("taken")
                except RuntimeError as exc:
                    results.append("refused: " + str(exc))

        def callback(phase, info):
            if phase == "start":
                try:
                    memlens.snapshot("cb.mlheap")
                    results.append("taken")
                except RuntimeError as exc:
                    results.append("refused: " + str(exc))

        Finalized()
        gc.callbacks.append(callback)
        gc.collect()
        gc.callbacks.remove(callback)
        memlens.snapshot("after.mlheap")
        print(len(results))
        for r in results:
            print(r)
        print(os.path.exists("del.mlheap"), os.path.exists("cb.mlheap"), os.path.exists("after.mlheap"))
        """,
    )
    lines = out.splitlines()
    assert lines[0] == "2", out
    for line in lines[1:3]:
        assert line.startswith("refused: cannot take a heap snapshot during a garbage collection"), line
    assert lines[3] == "False False True", out
    report = heap(runner, "after.mlheap")
    assert report["objects"] > 1000


def test_accumulation_suspects_on_a_real_program(runner: Runner) -> None:
    take(
        runner,
        """
        import collections, decimal, email.message, http.client, json, logging, re, urllib.parse
        import xml.etree.ElementTree
        import memlens

        class Entry:
            def __init__(self, key):
                self.key = key
                self.tags = {"k": key}

        _CACHE = [Entry("entry-%d" % i) for i in range(20000)]
        memlens.snapshot("s.mlheap")
        """,
    )
    report = heap(runner, "s.mlheap")
    suspects = report["suspects"]
    assert suspects, "the cache is a suspect"
    blamed = [s["type"] for s in suspects]
    # The interpreter's own dicts, functions, types and strings are spread over modules and
    # classes: nothing a user would act on.
    for own in ("function", "type", "str", "dict", "tuple", "code"):
        kinds = [s for s in suspects if s["type"] == own and s["kind"] == "accumulation"]
        assert not kinds, (own, kinds)
    assert any(
        "global `_CACHE`" in s["path"] for s in suspects
    ), [(s["kind"], s["type"], s["path"]) for s in suspects]
    if sys.version_info >= (3, 11):
        assert "__main__.Entry" in " ".join(s["message"] for s in suspects) or "list" in blamed


def test_instances_read_without_traverse_match_it(runner: Runner) -> None:
    # Instances of classes defined in Python are read without calling tp_traverse; with
    # MEMLENS_HEAP_VERIFY=1 the walker checks each against it and fails the snapshot on any
    # difference. Shapes: shared-key values, a materialised __dict__ (read through vars()),
    # keys that outgrow the shared table, deleted attributes, slots with and without a
    # __dict__, inheritance, and the standard library's own classes.
    script = runner.write(
        "prog.py",
        """
        import argparse, asyncio, collections, dataclasses, decimal, email.message, http.client
        import json, logging, typing, xml.etree.ElementTree
        import memlens

        class Plain:
            def __init__(self, i):
                self.a = i
                self.b = str(i)

        class Grown(Plain):
            pass

        class Slotted:
            __slots__ = ("x", "y")

        class SlottedWithDict:
            __slots__ = ("x", "__dict__")

        @dataclasses.dataclass
        class Point:
            x: int
            y: list

        items = [Plain(i) for i in range(50)]
        for i, p in enumerate(items[:10]):
            vars(p)                           # a dict made from the values
        for i, p in enumerate(items[10:20]):
            setattr(p, "extra%d" % i, [i])    # keys beyond the shared table
        for p in items[20:30]:
            del p.a
        grown = [Grown(i) for i in range(5)]
        for i in range(40):
            setattr(grown[0], "attr%d" % i, i)
        s = Slotted(); s.x = [1]
        d = SlottedWithDict(); d.x = 1; d.other = {"k": 1}
        points = [Point(i, [i]) for i in range(5)]
        logging.getLogger("app").info("x")
        memlens.snapshot("s.mlheap")
        print("ok")
        """,
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=runner.dir,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MEMLENS_HEAP_VERIFY": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    report = heap(runner, "s.mlheap", "--why", "Plain")
    assert report["why"]["matched"] == 50
