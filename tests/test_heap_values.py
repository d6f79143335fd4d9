"""Heap snapshots hold no values of the program unless asked (`--heap-values`, `values=True`),
and duplicate strings are equal in full, never by preview."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import Runner

# Built at run time, so that no code object holds the secret as a constant.
PROGRAM = """
import os
import signal
import time
import memlens

SECRET = "".join(["hunter2-", "tok", "en-", "%d" % (6 * 7)])   # a str
SECRET_B = SECRET.encode() + b"-bytes"                         # a bytes
os.environ["APP_PASSWORD"] = SECRET                           # an environment value
# 20,000 different strs sharing a 2,000-character prefix: no duplicates.
PREFIX = "p" * 2000
DIFFERENT = [PREFIX + str(i) for i in range(20_000)]
# 300 equal strs of 3,000 characters, each its own object: one group of 300 copies.
SAME = ["".join(["s" * 2999, "x"]) for _ in range(300)]
"""


def heap(runner: Runner, target: str, *args: str) -> subprocess.CompletedProcess:
    proc = runner.memlens("heap", target, *args)
    assert proc.returncode == 0, proc.stderr
    return proc


def outputs(runner: Runner, target: str) -> dict:
    return {
        "text": heap(runner, target).stdout,
        "json": heap(runner, target, "--format", "json").stdout,
        "heapsnapshot": heap(runner, target, "--format", "heapsnapshot").stdout,
    }


def check_duplicates(report: dict, values: bool) -> None:
    [group] = [d for d in report["duplicate_strings"] if d["count"] >= 300]
    assert group["count"] == 300
    assert group["type"] == "str"
    assert group["truncated"] is False
    # 3,000 one-byte characters after the compact ASCII header.
    assert group["size"] == sys.getsizeof("s" * 3000)
    assert group["wasted_bytes"] == 299 * group["size"]
    if values:
        assert group["value"].startswith("'" + "s" * 40)
        assert group["value"].endswith("s\u2026'")
        assert group["value_cut"] is True
    else:
        assert group["value"] is None
    # The 20,000 strs that share their first 2,000 characters are not duplicates.
    # (With values compared by preview and size they made five groups, one per length.)
    prefixed = range(sys.getsizeof("p" * 2001), sys.getsizeof("p" * 2005) + 1)
    assert not [d for d in report["duplicate_strings"] if d["size"] in prefixed]


def test_run_snapshot_holds_no_values_by_default(runner: Runner) -> None:
    runner.write("app.py", PROGRAM)
    proc = runner.memlens("run", "--heap-snapshot", "exit", "-q", "-o", "app.mlens", "app.py")
    assert proc.returncode == 0, proc.stderr
    out = outputs(runner, "app.mlens")
    for kind, text in out.items():
        assert "hunter2" not in text, kind
    report = json.loads(out["json"])
    assert {"key": "values", "value": "none"} in report["meta"]
    check_duplicates(report, values=False)
    assert "values not stored in the snapshot" in out["text"]
    # The .heapsnapshot names str nodes by their type then.
    nodes = json.loads(out["heapsnapshot"])
    assert "str" in nodes["strings"]


def test_heap_values_opts_in(runner: Runner) -> None:
    runner.write(
        "app.py",
        PROGRAM
        + """
DUP = [SECRET + str(i % 1) for i in range(3)]   # 3 copies of "hunter2-token-420"
os.kill(os.getpid(), signal.SIGUSR2)
time.sleep(0.05)   # the handler runs at the next bytecode boundary
""",
    )
    proc = runner.memlens(
        "run", "--heap-values", "--heap-snapshot", "exit", "-q", "-o", "app.mlens", "app.py"
    )
    assert proc.returncode == 0, proc.stderr
    for snapshot in ("1", "2"):  # SIGUSR2's, then the one at exit
        text = heap(runner, "app.mlens", "--snapshot", snapshot, "--format", "json", "--top", "500").stdout
        report = json.loads(text)
        assert {"key": "values", "value": "stored"} in report["meta"]
        check_duplicates(report, values=True)
        [dup] = [d for d in report["duplicate_strings"] if d["value"] == "'hunter2-token-420'"]
        assert dup["count"] == 3
        assert dup["value_cut"] is False
    assert "hunter2-token-42" in heap(runner, "app.mlens", "--format", "heapsnapshot").stdout


def test_memlens_snapshot_values_argument(runner: Runner) -> None:
    runner.write(
        "snap.py",
        PROGRAM
        + """
memlens.snapshot("plain.mlheap")
memlens.snapshot("values.mlheap", values=True)
""",
    )
    proc = subprocess.run(
        [sys.executable, "snap.py"], cwd=runner.dir, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    plain = outputs(runner, "plain.mlheap")
    for kind, text in plain.items():
        assert "hunter2" not in text, kind
    check_duplicates(json.loads(plain["json"]), values=False)
    values = json.loads(heap(runner, "values.mlheap", "--format", "json").stdout)
    check_duplicates(values, values=True)
    assert {"key": "values", "value": "stored"} in values["meta"]
