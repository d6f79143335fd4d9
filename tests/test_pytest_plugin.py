"""The pytest plugin (`pytest --memlens`), run on test files written here, as a user would."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap

import pytest
from memlens._units import parse_size


def run_pytest(runner, source: str, *args: str, name: str = "test_user.py"):
    runner.write(name, source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", name, *args],
        cwd=runner.dir, capture_output=True, text=True, timeout=300,
    )


def outcomes(proc) -> dict:
    """test name -> PASSED/FAILED from pytest's -rA summary lines."""
    found = {}
    for m in re.finditer(r"^(PASSED|FAILED|ERROR) \S+::(\w+)", proc.stdout, re.M):
        found[m.group(2)] = m.group(1)
    return found


LIMIT_MEMORY = """
import pytest

@pytest.mark.limit_memory("40 MB")
def test_over():
    data = bytearray(50_000_000)  # BIG LINE
    del data

@pytest.mark.limit_memory("60 MB")
def test_under():
    data = bytearray(50_000_000)
    del data

def test_unmarked():
    data = bytearray(50_000_000)
"""


def test_limit_memory_fails_over_the_limit_and_names_the_line(runner):
    proc = run_pytest(runner, LIMIT_MEMORY, "--memlens")
    assert outcomes(proc) == {
        "test_over": "FAILED", "test_under": "PASSED", "test_unmarked": "PASSED",
    }, proc.stdout
    line = next(
        i for i, text in enumerate(LIMIT_MEMORY.lstrip().splitlines(), 1) if "BIG LINE" in text
    )
    failure = proc.stdout.split("test_over", 1)[1]
    assert "peak memory 47.7 MiB exceeds limit_memory(40 MB)" in failure, proc.stdout
    # The line that made the 50 MB, with its (sampled, so estimated) size.
    m = re.search(r"~(\d+\.\d) MiB\s+\S*test_user\.py:(\d+) in test_over", failure)
    assert m, proc.stdout
    assert int(m.group(2)) == line
    assert 40 <= float(m.group(1)) <= 56
    assert "bytearray(50_000_000)" in failure


def test_without_the_option_markers_are_registered_but_not_checked(runner):
    proc = run_pytest(runner, LIMIT_MEMORY, "--strict-markers")
    assert proc.returncode == 0, proc.stdout
    assert set(outcomes(proc).values()) == {"PASSED"}


def test_the_ini_option_turns_it_on(runner):
    runner.write("pytest.ini", "[pytest]\nmemlens = true\n")
    proc = run_pytest(runner, LIMIT_MEMORY)
    assert outcomes(proc)["test_over"] == "FAILED", proc.stdout


LEAKS = """
import pytest

KEPT = []

@pytest.mark.limit_leaks("1 MB")
def test_leaks():
    KEPT.append(bytearray(5_000_000))  # LEAK LINE

@pytest.mark.limit_leaks("1 MB")
def test_frees():
    data = bytearray(5_000_000)
    del data

@pytest.mark.limit_leaks("1 MB")
def test_cycle_freed_by_the_collector():
    class Node:
        pass
    a, b = Node(), Node()
    a.other, b.other = b, a
    a.payload = bytearray(5_000_000)
"""


def test_limit_leaks_names_the_line_and_what_holds_it(runner):
    proc = run_pytest(runner, LEAKS, "--memlens")
    assert outcomes(proc) == {
        "test_leaks": "FAILED", "test_frees": "PASSED",
        "test_cycle_freed_by_the_collector": "PASSED",
    }, proc.stdout
    failure = proc.stdout.split("test_leaks", 1)[1]
    assert re.search(r"4\.8 MiB allocated by the test is still alive after it", failure), failure
    line = next(i for i, t in enumerate(LEAKS.lstrip().splitlines(), 1) if "LEAK LINE" in t)
    # Exact tracking: the figure is the line's own, not an estimate.
    assert re.search(rf" 4\.8 MiB\s+\S*test_user\.py:{line} in test_leaks", failure), failure
    assert "held by: module `test_user`, global `KEPT` -> list" in failure, failure


NO_LEAKS = """
import functools
import pytest

REGISTRY = []
CACHE = {}

@pytest.mark.no_leaks(rounds=5)
def test_grows():
    REGISTRY.append([object() for _ in range(2_000)])  # GROWING LINE

@pytest.mark.no_leaks(rounds=5)
def test_warms_a_cache():
    # The first round fills the cache; later rounds find it full: not a leak.
    if "table" not in CACHE:
        CACHE["table"] = [str(i) for i in range(50_000)]
    return sum(len(s) for s in CACHE["table"][:10])

@functools.lru_cache(maxsize=None)
def parse(text):
    return text.split(",")

@pytest.mark.no_leaks(rounds=6)
def test_lru_cache_warm_up():
    assert parse("a,b,c" * 1000)[0] == "a"
"""


def test_no_leaks_fails_on_growth_and_passes_a_warm_up(runner):
    proc = run_pytest(runner, NO_LEAKS, "--memlens")
    assert outcomes(proc) == {
        "test_grows": "FAILED", "test_warms_a_cache": "PASSED",
        "test_lru_cache_warm_up": "PASSED",
    }, proc.stdout
    failure = proc.stdout.split("test_grows", 1)[1]
    assert re.search(r"live memory grows by \d+\.\d KiB per round over 5 rounds", failure)
    line = next(i for i, t in enumerate(NO_LEAKS.lstrip().splitlines(), 1) if "GROWING" in t)
    assert f"test_user.py:{line} in " in failure, failure
    assert "held by: module `test_user`, global `REGISTRY` -> list" in failure, failure


def test_no_leaks_gives_the_same_verdict_every_time(runner):
    source = NO_LEAKS.replace("rounds=5", "rounds=4")
    for attempt in range(20):
        proc = run_pytest(runner, source, "--memlens", "-k", "grows or warms")
        assert outcomes(proc) == {"test_grows": "FAILED", "test_warms_a_cache": "PASSED"}, (
            attempt, proc.stdout,
        )


ALLOCATIONS = """
import pytest

@pytest.mark.limit_allocations(1_000)
def test_many():
    items = [str(i) for i in range(10_000)]  # MANY LINE

@pytest.mark.limit_allocations(1_000)
def test_few():
    items = [i for i in range(10)]
"""


def test_limit_allocations_counts_every_allocation(runner):
    proc = run_pytest(runner, ALLOCATIONS, "--memlens")
    assert outcomes(proc) == {"test_many": "FAILED", "test_few": "PASSED"}, proc.stdout
    failure = proc.stdout.split("test_many", 1)[1]
    m = re.search(r"([\d,]+) allocations exceed limit_allocations\(1,000\)", failure)
    assert m and int(m.group(1).replace(",", "")) >= 10_000, failure
    line = next(i for i, t in enumerate(ALLOCATIONS.lstrip().splitlines(), 1) if "MANY" in t)
    m = re.search(rf"([\d,]+)\s+\S*test_user\.py:{line} in ", failure)
    assert m and int(m.group(1).replace(",", "")) >= 10_000, failure


BAD_MARKERS = """
import pytest

@pytest.mark.limit_memory("lots")
def test_bad_size():
    pass

@pytest.mark.no_leaks(rounds=1)
def test_bad_rounds():
    pass

@pytest.mark.limit_memory("100 MB")
def test_fine():
    pass
"""


def test_a_malformed_marker_fails_its_test_only(runner):
    proc = run_pytest(runner, BAD_MARKERS, "--memlens")
    assert outcomes(proc) == {
        "test_bad_size": "FAILED", "test_bad_rounds": "FAILED", "test_fine": "PASSED",
    }, proc.stdout
    assert "not a size: 'lots'" in proc.stdout
    assert "no_leaks needs rounds=N with N >= 3, not 1" in proc.stdout


FIXTURES = """
import pytest

@pytest.fixture
def table():
    return bytearray(30_000_000)

@pytest.fixture(scope="module")
def shared():
    return bytearray(30_000_000)

@pytest.mark.limit_memory("20 MB")
def test_fixture_memory_is_not_the_tests(table, shared):
    assert len(table) == len(shared)

@pytest.mark.limit_memory("20 MB")
def test_own_memory_with_a_fixture(table):
    data = bytearray(25_000_000)
"""


def test_fixture_memory_is_not_counted_and_the_failure_says_so(runner):
    proc = run_pytest(runner, FIXTURES, "--memlens")
    assert outcomes(proc) == {
        "test_fixture_memory_is_not_the_tests": "PASSED",
        "test_own_memory_with_a_fixture": "FAILED",
    }, proc.stdout
    failure = proc.stdout.split("test_own_memory_with_a_fixture", 1)[1]
    assert re.search(r"not counted: 28\.6 MiB held after setup by fixtures \(table\)", failure), (
        failure
    )


def test_top_lists_the_tests_with_the_highest_peaks(runner):
    source = """
    def test_small():
        data = bytearray(1_000_000)

    def test_big():
        data = bytearray(30_000_000)

    def test_medium():
        data = bytearray(10_000_000)
    """
    proc = run_pytest(runner, textwrap.dedent(source), "--memlens", "--memlens-top", "2")
    assert proc.returncode == 0, proc.stdout
    table = proc.stdout.split("memlens: 2 tests by peak memory", 1)[1]
    table = table.split("short test summary", 1)[0]
    rows = [line for line in table.splitlines() if "::test_" in line]
    assert [r.split("::")[-1] for r in rows] == ["test_big", "test_medium"], table
    assert re.match(r"\s*28\.6 MiB", rows[0]), rows


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist missing")
def test_with_xdist_each_worker_tracks_its_own_tests(runner):
    proc = run_pytest(
        runner, LIMIT_MEMORY + LEAKS.replace("import pytest", ""), "--memlens",
        "--memlens-top", "3", "-p", "xdist", "-n", "2",
    )
    found = outcomes(proc)
    assert found["test_over"] == "FAILED" and found["test_leaks"] == "FAILED", proc.stdout
    assert found["test_under"] == "PASSED" and found["test_frees"] == "PASSED", proc.stdout
    assert "memlens: 3 tests by peak memory" in proc.stdout


def test_keeps_captures_in_the_given_directory(runner):
    proc = run_pytest(runner, LIMIT_MEMORY, "--memlens", "--memlens-dir", "caps")
    assert outcomes(proc)["test_over"] == "FAILED"
    captures = sorted(p.name for p in (runner.dir / "caps").iterdir())
    assert "test_user.py_test_over.mlens" in captures, captures
    assert "memlens report " in proc.stdout
    report = runner.report(runner.dir / "caps" / "test_user.py_test_over.mlens")
    assert report["totals"]["peak_bytes"] >= 50_000_000


@pytest.mark.parametrize(
    "text,expected",
    [
        ("100 MB", 100_000_000), ("1.5GiB", 1_610_612_736), ("500KB", 500_000),
        ("500 kB", 500_000), ("2 MiB", 2_097_152), ("123", 123), (4096, 4096), ("1 B", 1),
    ],
)
def test_sizes_as_people_write_them(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "10 parsecs", "-1 MB", "", "MB", True, None])
def test_malformed_sizes_are_refused(text):
    with pytest.raises(ValueError, match="size"):
        parse_size(text)
