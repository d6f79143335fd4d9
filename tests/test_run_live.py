"""`memlens run --live`: the panel on a real pseudo-terminal names the line holding memory
while the program runs; the program's output, capture and exit status are kept."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

from conftest import line_of

PROGRAM = """
import sys, time
held = bytearray(50_000_000)  # HELD
print("program says hello", flush=True)
time.sleep(4)
sys.exit(3)
"""


def run_on_pty(args, cwd, timeout=60, interrupt_after=None):
    """Runs `args` with stdin/stdout/stderr on a new pseudo-terminal; returns (status, output).
    With `interrupt_after`, sends SIGINT to its process group then, as Ctrl-C would."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, stdin=follower, stdout=follower, stderr=follower,
                            start_new_session=True)
    os.close(follower)
    chunks = []
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if interrupt_after is not None and time.monotonic() - started > interrupt_after:
            os.killpg(proc.pid, signal.SIGINT)
            interrupt_after = None
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    status = proc.wait(timeout=10)
    return status, b"".join(chunks).decode("utf-8", "replace")


def test_live_panel_shows_the_line_holding_memory(runner):
    script = runner.write("held.py", PROGRAM)
    status, screen = run_on_pty(
        [sys.executable, "-m", "memlens", "run", "--live", "--sample-rate", "65536",
         "-o", "held.mlens", "held.py"],
        runner.dir,
    )
    assert status == 3, screen
    assert "\x1b[?1049h" in screen and "\x1b[?1049l" in screen  # alternate screen, restored
    assert f"{script}:{line_of(script, '# HELD')} in <module>" in screen, screen
    assert "MiB" in screen and "Lines holding the most memory now" in screen
    # The program's output went to the log, shown in the panel and named at the end.
    assert "program says hello" in (runner.dir / "held.log").read_text()
    assert "program says hello" in screen
    assert "held.log" in screen
    # The capture is complete: the summary after the panel, and `memlens report`, name the line.
    report = runner.report("held.mlens", "peak")
    assert any(s["line"] == line_of(script, "# HELD") for s in report["sites"])


def test_live_without_a_terminal_is_one_clear_error(runner):
    runner.write("held.py", PROGRAM)
    proc = runner.memlens("run", "--live", "-o", "x.mlens", "held.py", stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert "--live needs a terminal" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (runner.dir / "x.log").exists()


def test_ctrl_c_stops_the_program_and_memlens_quietly(runner):
    runner.write("held.py", PROGRAM)
    status, screen = run_on_pty(
        [sys.executable, "-m", "memlens", "run", "--live", "-q", "-o", "held.mlens", "held.py"],
        runner.dir,
        interrupt_after=2.5,
    )
    # The program died of the interrupt (Python re-raises SIGINT at exit: 128 + 2) and memlens
    # passed that on without a traceback of its own.
    assert status == 130, screen
    assert "Traceback" not in screen, screen
    assert "KeyboardInterrupt" in (runner.dir / "held.log").read_text()
