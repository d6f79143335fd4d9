"""Heap snapshots during `memlens run`: at exit, on SIGUSR2, and joined with an exact capture."""

from __future__ import annotations

import json

from conftest import Runner, line_of


def heap(runner: Runner, target: str, *args: str) -> dict:
    proc = runner.memlens("heap", target, "--format", "json", *args, *(() if "--top" in args else ("--top", "200")))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_exit_snapshot_names_the_allocating_line(runner: Runner) -> None:
    script = runner.write(
        "app.py",
        """
        class Record:
            def __init__(self, i):
                self.payload = "p" * 1000 + str(i)   # payload line

        CACHE = {}

        def load():
            for i in range(500):
                CACHE["k%d" % i] = Record(i)   # record line

        BLOB = bytes(4_000_000)   # blob line
        load()
        """,
    )
    proc = runner.memlens(
        "run", "--exact", "--heap-snapshot", "exit", "-q", "-o", "app.mlens", "app.py"
    )
    assert proc.returncode == 0, proc.stderr
    report = heap(runner, "app.mlens", "--why", "app.py:" + str(line_of(script, "# record line")))
    # The Records, and (where the interpreter keeps them apart) their keys' strs.
    [group] = [g for g in report["why"]["groups"] if g["type"] == "__main__.Record"]
    assert group["count"] == 500
    assert group["path"] == "module `__main__`, global `CACHE` -> dict, key * -> __main__.Record"
    top = report["dominators"][0]
    assert top["type"] == "bytes"
    assert top["path"] == "module `__main__`, global `BLOB` -> bytes"
    assert top["alloc_site"] == {"file": str(script), "line": line_of(script, "# blob line")}
    payloads = heap(runner, "app.mlens", "--why", "app.py:" + str(line_of(script, "# payload")))
    [group] = [g for g in payloads["why"]["groups"] if g["type"] == "str"]
    assert group["count"] == 500


def test_no_snapshot_by_default(runner: Runner) -> None:
    runner.write("app.py", "X = [1, 2, 3]\n")
    proc = runner.memlens("run", "-q", "-o", "app.mlens", "app.py")
    assert proc.returncode == 0, proc.stderr
    proc = runner.memlens("heap", "app.mlens")
    assert proc.returncode == 2
    assert "the capture holds no heap snapshot" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_sigusr2_adds_snapshots(runner: Runner) -> None:
    runner.write(
        "service.py",
        """
        import os
        import signal
        import time

        class Job:
            pass

        JOBS = []
        for round in range(3):
            JOBS.extend(Job() for _ in range(100))
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(0.05)   # the handler runs at the next bytecode boundary
        """,
    )
    proc = runner.memlens("run", "-q", "-o", "svc.mlens", "service.py")
    assert proc.returncode == 0, proc.stderr
    counts = []
    for n in (1, 2, 3):
        report = heap(runner, "svc.mlens", "--snapshot", str(n), "--why", "Job")
        counts.append(report["why"]["matched"])
    assert counts == [100, 200, 300]
    assert heap(runner, "svc.mlens", "--why", "Job")["why"]["matched"] == 300


def test_sigusr2_during_a_collection_is_taken_after_it(runner: Runner) -> None:
    # The signal's handler runs inside __del__ during gc.collect(): the walk is refused there
    # and the signal sent again, so the snapshot comes once the collection is over.
    runner.write(
        "gcsvc.py",
        """
        import gc, os, signal, time

        class Job:
            pass

        class Cycle:
            def __init__(self):
                self.me = self
            def __del__(self):
                os.kill(os.getpid(), signal.SIGUSR2)
                for _ in range(100):    # let the handler run here, inside the collection
                    pass

        JOBS = [Job() for _ in range(42)]
        Cycle()
        gc.collect()
        for _ in range(100):
            time.sleep(0.01)
        """,
    )
    proc = runner.memlens("run", "-q", "-o", "gc.mlens", "gcsvc.py")
    assert proc.returncode == 0, proc.stderr
    assert "heap snapshot failed" not in proc.stderr, proc.stderr
    assert heap(runner, "gc.mlens", "--why", "Job")["why"]["matched"] == 42
    proc = runner.memlens("heap", "gc.mlens", "--snapshot", "2")
    assert proc.returncode == 2 and "holds 1 heap snapshot" in proc.stderr, proc.stderr


def test_program_handler_for_sigusr2_is_kept(runner: Runner) -> None:
    runner.write(
        "own.py",
        """
        import os
        import signal
        import time

        got = []
        signal.signal(signal.SIGUSR2, lambda s, f: got.append(s))
        os.kill(os.getpid(), signal.SIGUSR2)
        time.sleep(0.05)
        print("handled", len(got))
        """,
    )
    proc = runner.memlens("run", "-q", "-o", "own.mlens", "own.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "handled 1"
    proc = runner.memlens("heap", "own.mlens")
    assert "the capture holds no heap snapshot" in proc.stderr


def test_why_answers_alone_and_exits_1_when_nothing_matches(runner: Runner) -> None:
    runner.write(
        "app.py",
        """
        class Record:
            pass

        RECORDS = [Record() for _ in range(250)]
        """,
    )
    proc = runner.memlens("run", "--heap-snapshot", "exit", "-q", "-o", "app.mlens", "app.py")
    assert proc.returncode == 0, proc.stderr
    proc = runner.memlens("heap", "app.mlens", "--why", "Record")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Why `Record` is alive: 250 objects, ")
    assert "250 x `__main__.Record`" in lines[1]
    assert lines[1].endswith("module `__main__`, global `RECORDS` -> list, index * -> __main__.Record")
    assert "Top dominators" not in proc.stdout
    proc = runner.memlens("heap", "app.mlens", "--why", "NoSuchType")
    assert proc.returncode == 1
    assert proc.stdout.startswith("Why `NoSuchType` is alive: 0 objects")
    assert "no object matches" in proc.stdout
    full = runner.memlens("heap", "app.mlens")
    assert full.returncode == 0 and "Top dominators" in full.stdout
