"""The tracker's process lifecycle never harms the program and never loses its data:
descriptors, full disks, fork, exit and signals (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest
from conftest import line_of, site_bytes


def test_a_program_that_closes_every_descriptor_keeps_its_file_and_the_capture(runner):
    """Daemonizing code closes every descriptor; the next file it opens used to get the
    capture's number, and the writer wrote capture chunks into it."""
    app = runner.write("daemon.py", """
        import os, time
        early = bytearray(10_000_000)
        os.closerange(3, 4096)
        with open("mine.txt", "w") as f:
            for i in range(30):
                f.write(f"line {i}\\n")
                f.flush()
                time.sleep(0.05)   # the writer flushes meanwhile (every second at least)
            late = bytearray(30_000_000)  # LATE
            time.sleep(1.2)
            f.write("end\\n")
    """)
    proc = runner.memlens("run", "--exact", "-q", "-o", "d.mlens", "daemon.py")
    assert proc.returncode == 0, proc.stderr
    mine = (runner.dir / "mine.txt").read_bytes()
    assert mine == b"".join(f"line {i}\n".encode() for i in range(30)) + b"end\n"
    report = runner.report("d.mlens", "leaks")
    assert "warning" not in report["meta"] or not report["meta"]["warning"], report["meta"]
    assert site_bytes(report, app, line_of(app, "LATE"), "leaked_bytes") >= 30_000_000
    assert site_bytes(report, app, 2, "leaked_bytes") >= 10_000_000


def test_the_capture_descriptor_is_not_inherited_by_exec(runner):
    runner.write("child.py", """
        import os, subprocess, sys
        fds = subprocess.run(["ls", "/proc/self/fd"], capture_output=True, text=True).stdout
        print(sorted(int(x) for x in fds.split()))
    """)
    proc = runner.memlens("run", "-q", "-o", "c.mlens", "child.py")
    assert proc.returncode == 0, proc.stderr
    fds = eval(proc.stdout)  # noqa: S307 - our own program's output
    assert max(fds) < 10, fds


@pytest.fixture
def tiny_disk():
    """A 512 KiB tmpfs (root only)."""
    path = tempfile.mkdtemp(prefix="memlens-tiny-")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", path], capture_output=True
    )
    if mounted.returncode != 0:
        os.rmdir(path)
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield path
    subprocess.run(["umount", "-l", path], check=False)
    os.rmdir(path)


def test_a_full_disk_is_named_and_the_program_is_unharmed(runner, tiny_disk):
    runner.write("many.py", """
        import json
        kept = []
        for i in range(300_000):
            kept.append(str(i) * 3)
        print(json.dumps(len(kept)))
    """)
    capture = os.path.join(tiny_disk, "full.mlens")
    proc = runner.memlens("run", "--exact", "-o", capture, "many.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "300000"
    assert "No space left on device" in proc.stderr, proc.stderr
    assert "failed after" in proc.stderr
    assert "was the process killed" not in proc.stderr
    assert os.path.getsize(capture) <= 512 * 1024


def test_a_full_disk_through_the_api_is_named(runner, tiny_disk):
    capture = os.path.join(tiny_disk, "api.mlens")
    code = f"""
import memlens
with memlens.track({capture!r}, exact=True) as t:
    kept = [str(i) * 3 for i in range(300_000)]
print(t.summary["write_failed"], t.summary["write_error"])
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=runner.dir, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("True No space left on device"), proc.stdout
    assert "memlens: writing the capture" in proc.stderr
