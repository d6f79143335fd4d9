"""Helpers for the end-to-end tests: run `python -m memlens` on a script in a temp dir."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MiB = 1024 * 1024


class Runner:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path

    def write(self, name: str, source: str) -> Path:
        path = self.dir / name
        path.write_text(textwrap.dedent(source).lstrip())
        return path

    def memlens(self, *args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "memlens", *args],
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kw,
        )

    def report(self, capture: str | Path, view: str = "peak") -> dict:
        proc = self.memlens("report", str(capture), "--format", "json", "--view", view)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


def site_bytes(report: dict, path: Path, line: int, key: str) -> int:
    """Sum of `key` over the sites at `path:line`."""
    return sum(
        s[key] for s in report["sites"] if s["file"] == str(path) and s["line"] == line
    )


def line_of(path: Path, marker: str) -> int:
    """1-based line number of the first line containing `marker`."""
    for i, text in enumerate(path.read_text().splitlines(), 1):
        if marker in text:
            return i
    raise AssertionError(f"{marker!r} not in {path}")
