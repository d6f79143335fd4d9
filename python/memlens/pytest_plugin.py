"""pytest plugin: memory limits and leak checks per test (``pytest --memlens``).

Each test's call runs in its own tracking session (sampling, with exact totals; exact when a
marker needs every allocation), so its figures are its own: memory allocated while the test
ran, never what earlier tests or fixtures set up before it left behind. Markers:

- ``limit_memory("100 MB")``: the test's peak (its memory live at its high-water mark);
- ``limit_leaks("1 MB")``: memory allocated by the test and still alive after it;
- ``no_leaks(rounds=5)``: repeats the test and fails only when live memory grows round after
  round (a one-off cache filled in the first rounds is not a leak);
- ``limit_allocations(N)``: how many allocations the test makes.

Loaded by every pytest through the ``pytest11`` entry point, it only registers its options
and markers unless ``--memlens`` or the ini option ``memlens = true`` is given.
"""

from __future__ import annotations

import gc
import inspect
import json
import linecache
import os
import re
import shutil
import tempfile
from array import array
from dataclasses import dataclass, field

import pytest

from ._units import format_size, parse_size

_MARKERS = {
    "limit_memory": "limit_memory(size): fail when the test's peak memory exceeds size "
    '("100 MB", "1.5 GiB"; with --memlens)',
    "limit_leaks": "limit_leaks(size): fail when memory allocated by the test and still alive "
    "after it exceeds size (exact tracking; with --memlens)",
    "no_leaks": "no_leaks(rounds=5, min_growth='1 KiB'): run the test rounds times and fail when "
    "live memory grows with the rounds (with --memlens)",
    "limit_allocations": "limit_allocations(n): fail when the test makes more than n allocations "
    "(exact tracking; with --memlens)",
}
_MEMLENS_DIR = os.path.dirname(os.path.abspath(__file__))
# pytest's and pluggy's own frames: what they allocate while a test runs is not the test's.
_RUNNER_DIRS = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep
    for m in (pytest, __import__("pluggy"), __import__("_pytest"))
    if getattr(m, "__file__", None)
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memlens", "memory limits and leak checks (memlens)")
    group.addoption(
        "--memlens", action="store_true", default=False,
        help="track each test's memory and check the memlens markers",
    )
    group.addoption(
        "--memlens-top", type=int, default=0, metavar="N",
        help="list the N tests with the highest peak memory at the end (with --memlens)",
    )
    group.addoption(
        "--memlens-dir", default=None, metavar="DIR",
        help="keep each test's capture in DIR (for `memlens report`); default: a temporary "
        "directory removed at the end",
    )
    parser.addini("memlens", type="bool", default=False, help="as --memlens")


def pytest_configure(config: pytest.Config) -> None:
    for text in _MARKERS.values():
        config.addinivalue_line("markers", text)
    if config.getoption("memlens") or config.getini("memlens"):
        config.pluginmanager.register(_Plugin(config), "memlens-tracking")


@dataclass
class _Spec:
    """What the markers of one test ask for, or why they cannot be honoured."""

    limit_memory: int | None = None
    limit_leaks: int | None = None
    # The limits as the test wrote them ("1 MB" stays "1 MB" in messages).
    written: dict = field(default_factory=dict)
    limit_allocations: int | None = None
    rounds: int = 0
    min_growth: int = 1024
    error: str | None = None
    fixtures: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return (
            self.limit_leaks is not None or self.limit_allocations is not None
            or self.rounds > 0
        )

    @property
    def checks(self) -> bool:
        return self.exact or self.limit_memory is not None


def _one_argument(marker: pytest.Mark, name: str) -> object:
    if len(marker.args) + len(marker.kwargs) != 1:
        raise ValueError(f"{marker.name} takes one argument, {name}")
    return marker.args[0] if marker.args else marker.kwargs.get(name, marker.kwargs)


def _spec_of(item: pytest.Item) -> _Spec:
    spec = _Spec()
    try:
        for name in _MARKERS:
            marker = item.get_closest_marker(name)
            if marker is None:
                continue
            if name in ("limit_memory", "limit_leaks"):
                size = _one_argument(marker, "size")
                setattr(spec, name, parse_size(size))
                spec.written[name] = size if isinstance(size, str) else f"{size:,} B"
            elif name == "limit_allocations":
                n = _one_argument(marker, "n")
                if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    raise ValueError(f"limit_allocations takes a number of allocations, not {n!r}")
                spec.limit_allocations = n
            else:
                unknown = set(marker.kwargs) - {"rounds", "min_growth"}
                if marker.args or unknown:
                    raise ValueError(
                        "no_leaks takes keyword arguments only: rounds=N, min_growth=SIZE"
                    )
                rounds = marker.kwargs.get("rounds", 5)
                if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 3:
                    raise ValueError(f"no_leaks needs rounds=N with N >= 3, not {rounds!r}")
                spec.rounds = rounds
                spec.min_growth = parse_size(marker.kwargs.get("min_growth", "1 KiB"))
                if not isinstance(item, pytest.Function) or inspect.iscoroutinefunction(item.obj):
                    raise ValueError("no_leaks repeats plain test functions only (not async ones)")
    except ValueError as exc:
        spec.error = f"memlens: bad marker on {item.nodeid}: {exc}"
    info = getattr(item, "_fixtureinfo", None)
    if info is not None:
        spec.fixtures = [
            name for name, defs in info.name2fixturedefs.items()
            if defs and defs[-1].scope == "function" and name != "request"
        ]
    return spec


_SPEC = pytest.StashKey[_Spec]()
_FAILURE = pytest.StashKey[str]()
_ROUNDS = pytest.StashKey[list]()
_SETUP_HELD = pytest.StashKey[int]()


class _Plugin:
    def __init__(self, config: pytest.Config) -> None:
        import memlens  # the tracker: only once the plugin is on

        self.memlens = memlens
        self.keep = config.getoption("memlens_dir")
        self.dir = os.path.abspath(self.keep) if self.keep else tempfile.mkdtemp(
            prefix="memlens-pytest-"
        )
        os.makedirs(self.dir, exist_ok=True)
        self.top = config.getoption("memlens_top")
        self.rows: list[tuple[int, int, int, str]] = []
        self.unavailable: str | None = None

    # -- tracking ------------------------------------------------------------------------

    def _capture(self, item: pytest.Item, phase: str) -> str:
        if not self.keep:
            return os.path.join(self.dir, f"{phase}.mlens")
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid).strip("_")[:150]
        suffix = "" if phase == "call" else f".{phase}"
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        return os.path.join(self.dir, f"{name}{suffix}{'.' + worker if worker else ''}.mlens")

    def _tracker(self, path: str, exact: bool):
        if self.memlens._native.is_active():
            # `memlens run -m pytest --memlens`: the whole run is tracked already.
            self.unavailable = "memlens is already tracking this process (memlens run?)"
            return None
        tracker = self.memlens.track(path, exact=exact)
        tracker.__enter__()
        return tracker

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item):
        spec = item.stash[_SPEC] = _spec_of(item)
        tracker = None
        if spec.checks and spec.fixtures and spec.error is None:
            try:
                tracker = self._tracker(self._capture(item, "setup"), exact=False)
            except RuntimeError:
                tracker = None
        try:
            yield
        finally:
            if tracker is not None:
                tracker.__exit__(None, None, None)
                item.stash[_SETUP_HELD] = tracker.summary["live_bytes"]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        spec = item.stash.get(_SPEC, None) or _spec_of(item)
        if spec.error is not None:
            item.stash[_FAILURE] = spec.error
            yield
            return
        path = self._capture(item, "call")
        try:
            tracker = self._tracker(path, exact=spec.exact)
        except RuntimeError as exc:
            if spec.checks:
                item.stash[_FAILURE] = f"memlens: cannot track this test: {exc}"
            yield
            return
        if tracker is None:
            yield
            return
        held_at_end = None
        try:
            yield
        finally:
            try:
                if spec.limit_leaks is not None or spec.rounds:
                    gc.collect()  # memory only a cycle held is not a leak
                    now = self.memlens.current()["live_bytes"]
                    if spec.limit_leaks is not None:
                        held_at_end = now
                    if self._leak_suspected(item, spec, now):
                        # The holders, while the objects are still alive.
                        self.memlens.snapshot()
            finally:
                tracker.__exit__(None, None, None)
        summary = tracker.summary
        if held_at_end is not None:
            summary = dict(summary, live_bytes=held_at_end)
        item.user_properties.append(("memlens", {
            "peak_bytes": summary["peak_bytes"], "live_bytes": summary["live_bytes"],
            "allocations": summary["allocations"],
        }))
        failure = self._verdict(item, spec, summary, path)
        if failure:
            item.stash[_FAILURE] = failure

    def _leak_suspected(self, item: pytest.Item, spec: _Spec, live: int) -> bool:
        if spec.limit_leaks is not None and live > spec.limit_leaks:
            return True
        rounds = item.stash.get(_ROUNDS, None)
        return bool(rounds) and _growth(rounds, spec.min_growth) is not None

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function):
        spec = pyfuncitem.stash.get(_SPEC, None)
        if spec is None:
            return None
        if spec.error is not None:
            return True  # the test fails with the marker's error, without running
        if not spec.rounds or not self.memlens._native.is_active():
            return None
        info = pyfuncitem._fixtureinfo
        args = {name: pyfuncitem.funcargs[name] for name in info.argnames}
        # Preallocated, so that recording a round allocates nothing that stays alive.
        live = array("q", bytes(8 * spec.rounds))
        for i in range(spec.rounds):
            self.memlens.checkpoint(f"memlens-round-{i + 1}")
            pyfuncitem.obj(**args)
            gc.collect()
            live[i] = self.memlens.current()["live_bytes"]
        pyfuncitem.stash[_ROUNDS] = list(live)
        return True

    # -- verdicts ------------------------------------------------------------------------

    def _verdict(self, item: pytest.Item, spec: _Spec, summary: dict, path: str) -> str | None:
        problems = []
        if spec.limit_memory is not None and summary["peak_bytes"] > spec.limit_memory:
            problems.append((
                f"peak memory {format_size(summary['peak_bytes'])} exceeds "
                f"limit_memory({spec.written['limit_memory']})",
                "peak", "peak_bytes", "at the peak", summary["peak_bytes"],
            ))
        if spec.limit_leaks is not None and summary["live_bytes"] > spec.limit_leaks:
            problems.append((
                f"{format_size(summary['live_bytes'])} allocated by the test is still alive "
                f"after it, over limit_leaks({spec.written['limit_leaks']})",
                "leaks", "leaked_bytes", "still alive", summary["live_bytes"],
            ))
        if (
            spec.limit_allocations is not None
            and summary["allocations"] > spec.limit_allocations
        ):
            problems.append((
                f"{summary['allocations']:,} allocations exceed "
                f"limit_allocations({spec.limit_allocations:,})",
                "allocations", "allocations", "allocations", summary["allocations"],
            ))
        rounds = item.stash.get(_ROUNDS, None)
        growth = _growth(rounds, spec.min_growth) if rounds else None
        if growth is not None:
            shown = ", ".join(format_size(b) for b in rounds)
            problems.append((
                f"live memory grows by {format_size(growth)} per round over {spec.rounds} "
                f"rounds (no_leaks; live after each round: {shown})",
                "leaks", "leaked_bytes", "allocated in later rounds and still alive",
                rounds[-1] - rounds[0],
            ))
        if not problems:
            return None
        lines = []
        for headline, view, key, label, total in problems:
            lines.append(f"memlens: {headline}")
            extra = []
            if growth is not None and view == "leaks" and not spec.limit_leaks:
                extra = ["--from", f"memlens-round-{3 if spec.rounds >= 4 else 2}"]
            lines.extend(self._top_lines(path, view, key, label, spec.exact, extra, total))
        held = item.stash.get(_SETUP_HELD, None)
        if held:
            lines.append(
                f"  not counted: {format_size(held)} held after setup by fixtures "
                f"({', '.join(spec.fixtures)})"
            )
        if self.keep:
            lines.append(f"  capture: {path} (memlens report {path})")
        else:
            lines.append("  (pytest --memlens-dir DIR keeps each test's capture)")
        return "\n".join(lines)

    def _top_lines(
        self, path: str, view: str, key: str, label: str, exact: bool, extra: list, total: int
    ) -> list:
        """The lines that account for a failure's figure, with their source and holder:
        the test's own, not memlens's nor pytest's, and none below 1% of the figure."""
        report = _run_json(self.memlens, ["report", path, "--view", view, *extra], path + ".json")
        if report is None:
            return ["  (the capture could not be read)"]
        sites = [
            s for s in report.get("sites", [])
            if s.get(key, 0) >= max(total, 0) / 100 and s.get(key)
            and not s.get("file", "").startswith(_RUNNER_DIRS)
            and not any(_in_memlens(f.get("file", "")) for f in s.get("stack", []))
        ]
        sites.sort(key=lambda s: -s[key])
        out = [f"  top lines ({label}{'' if exact else ', estimated from samples'}):"]
        for site in sites[:5]:
            amount = f"{site[key]:,}" if key == "allocations" else format_size(site[key])
            if not exact:
                amount = "~" + amount
            source = linecache.getline(site["file"], site["line"]).strip()
            where = f"{site['file']}:{site['line']} in {site['function']}"
            out.append(f"    {amount:>12}  {where}" + (f"\n{'':18}{source}" if source else ""))
            holder = self._holder(path, site) if view == "leaks" else None
            if holder:
                out.append(f"{'':18}held by: {holder}")
        if len(out) == 1:
            out.append("    (no line: the memory was allocated by memlens or the interpreter)")
        return out

    def _holder(self, path: str, site: dict) -> str | None:
        why = _run_json(
            self.memlens, ["heap", path, "--why", f"{site['file']}:{site['line']}"],
            path + ".heap.json",
        )
        groups = ((why or {}).get("why") or {}).get("groups") or []
        if not groups:
            return None
        top = max(groups, key=lambda g: g.get("retained_bytes", 0))
        return f"{top.get('path')} ({top.get('count', 0):,} × {top.get('type', 'object')})"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        if call.when != "call":
            return
        failure = item.stash.get(_FAILURE, None)
        report = outcome.get_result()
        if failure and report.passed:
            report.outcome = "failed"
            report.longrepr = failure
        elif failure:
            report.sections.append(("memlens", failure))

    # -- summary -------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == "memlens" and isinstance(value, dict):
                self.rows.append((
                    value["peak_bytes"], value["live_bytes"], value["allocations"],
                    report.nodeid,
                ))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.unavailable:
            terminalreporter.write_line(f"memlens: markers not checked: {self.unavailable}")
        if not self.top or not self.rows:
            return
        terminalreporter.section(f"memlens: {min(self.top, len(self.rows))} tests by peak memory")
        terminalreporter.write_line(f"{'PEAK':>10}  {'LIVE AFTER':>10}  {'ALLOCS':>10}  TEST")
        for peak, live, allocations, nodeid in sorted(self.rows, reverse=True)[: self.top]:
            terminalreporter.write_line(
                f"{format_size(peak):>10}  {format_size(live):>10}  {allocations:>10,}  {nodeid}"
            )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def _in_memlens(file: str) -> bool:
    """True for memlens's own code (this plugin's frames sit under every repeated round)."""
    return file.startswith(_MEMLENS_DIR) and file != os.path.abspath(__file__)


def _growth(live: list, min_growth: int) -> float | None:
    """Bytes per round by which live memory grows, or None when it does not grow. The first
    round is warm-up (caches, interned names, specialised bytecode); after it, a leak grows
    in most rounds and by at least ``min_growth`` per round on a least-squares fit."""
    series = live[1:]
    n = len(series)
    if n < 2:
        return None
    mean_x = (n - 1) / 2
    mean_y = sum(series) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(series)) / sum(
        (x - mean_x) ** 2 for x in range(n)
    )
    rises = sum(1 for a, b in zip(series, series[1:]) if b - a >= min_growth / 2)
    if slope >= max(min_growth, 1) and rises * 3 >= (n - 1) * 2:
        return slope
    return None


def _run_json(memlens, args: list, out: str) -> dict | None:
    """Runs a memlens command writing JSON to ``out`` and reads it back."""
    status = memlens._native.cli_main(["memlens", *args, "--format", "json", "-o", out])
    try:
        if status != 0:
            return None
        with open(out) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
    finally:
        try:
            os.unlink(out)
        except OSError:
            pass
