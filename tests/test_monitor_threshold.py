"""`memlens monitor --threshold` never misses a short peak: the kernel's peak RSS of the command
(wait4's ru_maxrss) counts as well as the samples (issue 15)."""

from __future__ import annotations

import sys

SPIKE = (
    "import time\n"
    "time.sleep(0.05)\n"
    "b = bytearray(300 * 1024 * 1024)\n"   # touched: resident
    "del b\n"
    "time.sleep(0.05)\n"
)


def test_a_peak_between_samples_exceeds_the_threshold_every_time(runner):
    runner.write("spike.py", SPIKE)
    for attempt in range(3):
        # One sample per 5 s: the 300 MB lasts a few milliseconds, between samples.
        proc = runner.memlens(
            "monitor", "--interval", "5", "--threshold", "200MB", "--", sys.executable, "spike.py"
        )
        assert proc.returncode == 3, (attempt, proc.stderr)
        assert "the kernel's peak RSS for the command was" in proc.stderr, proc.stderr


def test_under_the_threshold_passes(runner):
    runner.write("spike.py", SPIKE)
    proc = runner.memlens(
        "monitor", "--interval", "5", "--threshold", "2GB", "--", sys.executable, "spike.py"
    )
    assert proc.returncode == 0, proc.stderr
