"""The HTML report end to end: `memlens run`/`memlens report` write it, and Debian's Chromium
(driven by playwright-core through tests/browser/check-report.mjs, all network blocked) loads it
without errors, draws the flame graph, highlights search matches, switches views, filters by
thread, shows the live set at a clicked moment and shows hostile names as text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import line_of

ROOT = Path(__file__).resolve().parent.parent
BROWSER = ROOT / "tests" / "browser"
HOSTILE_FILE = "</script><img src=x onerror=alert(1)>\"'&.py"
HOSTILE_FUNC = "<img src=y onerror=alert(2)>"

PROGRAM = f"""
import sys
import threading
import types

SRC = "def evil():\\n    return bytearray(3_000_000)\\n"
ns = {{}}
exec(compile(SRC, {HOSTILE_FILE!r}, "exec"), ns)
names = {{"co_name": {HOSTILE_FUNC!r}}}
if sys.version_info >= (3, 11):
    names["co_qualname"] = names["co_name"]
evil = types.FunctionType(ns["evil"].__code__.replace(**names), ns)


def build_list():
    return [bytearray(1000) for _ in range(20_000)]  # BUILD


def worker():
    data = bytearray(8_000_000)  # WORKER
    return len(data)


kept = build_list()
held = evil()
t = threading.Thread(target=worker, name="<b>worker</b>")
t.start()
t.join()
"""


def check_page(page: Path, search: str) -> dict:
    """Runs the browser checker on `page`; fails (never skips) when its tools are missing."""
    node = shutil.which("node")
    assert node, "node is not installed: run scripts/install-test-deps"
    assert (BROWSER / "node_modules" / "playwright-core").is_dir(), (
        "playwright-core is not installed: run scripts/install-test-deps"
    )
    assert Path("/usr/bin/chromium").exists(), "Chromium is missing: run scripts/install-test-deps"
    proc = subprocess.run(
        [node, str(BROWSER / "check-report.mjs"), str(page), search],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["network"] == [], "the page tried to reach the network"
    assert seen["consoleErrors"] == [] and seen["pageErrors"] == [], seen
    assert seen["dialogs"] == [], "a name from the program ran as script"
    assert seen["injected"]["img"] == 0
    return seen


def near(a: float, b: float, rel: float = 0.01) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1)


def test_run_writes_a_report_that_works_in_the_browser(runner):
    prog = runner.write("prog.py", PROGRAM)
    build_line = line_of(prog, "# BUILD")
    proc = runner.memlens("run", "--exact", "-o", "p.mlens", "--html", "p.html", "prog.py")
    assert proc.returncode == 0, proc.stderr
    assert "Report:  p.html" in proc.stderr
    json_report = runner.report("p.mlens", "peak")
    sites = json_report["sites"]
    build = sum(s["peak_bytes"] for s in sites if s["file"] == str(prog) and s["line"] == build_line)
    assert build >= 20_000 * 1000

    seen = check_page(runner.dir / "p.html", "build_list")

    # The flame graph is drawn, with the known line among its frames, and the top-lines table
    # starts with that line and its source, read from the file.
    first = seen["initial"]
    assert first["view"] == "peak"
    assert first["painted"] > 1000 and first["rects"] >= 3
    # (The comprehension is its own frame before 3.12, named `<listcomp>` before 3.11.)
    assert any(lab.endswith(f"  prog.py:{build_line}") for lab in first["labels"]), first["labels"]
    top = first["lines"][0]
    assert top[3] == f"{prog}:{build_line}"
    assert "bytearray(1000) for _ in range(20_000)" in top[5]

    # Each view's flame graph holds that view's bytes.
    for view, key in [("peak", "peak_bytes"), ("leaks", "leaked_bytes"), ("allocations", "allocated_bytes")]:
        expected = sum(s[key] for s in runner.report("p.mlens", view)["sites"])
        assert seen["views"][view]["view"] == view
        assert near(seen["views"][view]["total"], expected), (view, seen["views"][view]["total"], expected)
    assert seen["views"]["allocations"]["total"] > seen["views"]["peak"]["total"]
    # A click on the top line shows its function line by line, with the line's bytes.
    # (Before 3.12 the comprehension is a function of its own, shown by its recorded lines.)
    title = seen["functionTitle"]
    assert title.startswith(("build_list in ", "build_list.<locals>.<listcomp> in ", "<listcomp> in ")), title
    rows = {row[0]: row for row in seen["functionView"] if row and row[0].isdigit()}
    if title.startswith("build_list in "):
        assert "def build_list" in rows[str(line_of(prog, "def build_list"))][5]
    build_row = rows[str(build_line)]
    assert build_row[1].endswith("MiB") and build_row[2].endswith("MiB"), build_row
    assert seen["functionViewsAfterClose"] == 0
    # The Allocations column is filled in every view (it was empty but in one).
    for view in ("peak", "leaks", "allocations"):
        rows = seen["views"][view]["lines"]
        assert rows and all(re.fullmatch(r"[\d,]+", row[2]) for row in rows), (view, rows[:3])
    # memlens's own lines (its start and stop) are hidden with its frames, as in the text
    # report; shown when asked.
    assert not any("/memlens/" in row[3] for row in first["lines"]), first["lines"]
    assert not any("/memlens/" in row[3] for row in seen["inverted"]["lines"])
    text = runner.memlens("report", "p.mlens", "--top", "100").stdout
    assert "/memlens/" not in text, text

    # Search highlights build_list and reports its share of the peak.
    found = seen["search"]
    assert found["highlighted"] > 0
    assert near(found["share"], build / first["total"], rel=0.02), (found["share"], build, first["total"])
    assert found["searchText"].startswith("matched ")

    # Zoom, inverted mode and the toggle that shows memlens's own frames.
    assert "Zoomed into" in seen["zoom"]["caption"]
    # Stacks start at the program (`memlens run` roots the walk below its runner), so the
    # program's line is drawn with memlens's own frames hidden or shown; the fixture page
    # below checks that the toggle reveals runner frames where a capture has them.
    assert not any("_runner.py" in lab for lab in first["labels"])
    assert any(lab.endswith(f"  prog.py:{build_line}") for lab in seen["unhidden"]["labels"])
    inverted_row = seen["inverted"]["labels"][1:3]
    assert any(lab.endswith(f"  prog.py:{build_line}") for lab in inverted_row), inverted_row

    # Hostile names appear as text, never as markup.
    assert HOSTILE_FILE in seen["text"]
    assert HOSTILE_FUNC in seen["text"]

    # Thread filter and moments, when the analysis provides them (the fixture page below
    # always checks both).
    if seen["threads"]:
        totals = {t["name"]: t["total"] for t in seen["threads"]}
        assert near(sum(v for k, v in totals.items() if k != "All threads"), totals["All threads"])
        assert any("worker" in k for k in totals)
    if seen["moments"]:
        assert all(m["moment"] == i for i, m in enumerate(seen["moments"]))
    else:
        assert "no live sets" in seen["momentInfo"]


def test_fixture_page_filters_threads_and_shows_moments():
    """tests/browser/fixture.html is the renderer's output for a known report (kept current by
    the `browser_fixture_page_is_current` Rust test): every figure below is from that report."""
    seen = check_page(BROWSER / "fixture.html", "build")
    assert {v: (s and s["total"]) for v, s in seen["views"].items()} == {
        "peak": 6_130_000,
        "leaks": 5_302_000,
        "allocations": 8_302_000,
        "temporary": 1_600_000,
    }
    threads = {t["name"]: t["total"] for t in seen["threads"]}
    assert threads == {"All threads": 6_130_000, "MainThread": 6_000_000, "Worker-1": 130_000}
    moments = [(m["moment"], m["total"]) for m in seen["moments"]]
    assert moments == [(0, 1_600_000), (1, 6_000_000)]
    assert "live set at 0.40 s" in seen["moments"][0]["info"]
    assert seen["moments"][0]["labels"][0] == "all: 1.5 MiB (live at 0.40 s)"
    assert seen["search"]["highlighted"] > 0
    assert near(seen["search"]["share"], 5_000_000 / 6_130_000)
    assert "_run_module_as_main  <frozen runpy>:198" not in seen["initial"]["labels"]
    assert "_run_module_as_main  <frozen runpy>:198" in seen["unhidden"]["labels"]
    assert seen["inverted"]["labels"][1] == "build  app.py:3"
    assert "/app/</script><script>alert(1)</script>\"'&.py:7" in seen["text"]
    assert "<img src=x onerror=alert(3)>" in seen["text"]
    # The right-to-left override is shown as an escape, not obeyed.
    assert "\u202e" not in seen["text"] and "\\u{202e}gnp.exe" in seen["text"]


def test_empty_capture_gives_a_valid_empty_page(runner):
    proc = runner.memlens("run", "-o", "e.mlens", "--html", "e.html", "-c", "pass")
    assert proc.returncode == 0, proc.stderr
    seen = check_page(runner.dir / "e.html", "anything")
    assert seen["search"]["searchText"] in ("", "no frame matches")


def test_run_without_output_options_writes_the_page_next_to_the_capture(runner):
    runner.write("app.py", "data = [bytearray(1000) for _ in range(2000)]\n")
    proc = runner.memlens("run", "app.py")
    assert proc.returncode == 0, proc.stderr
    captures = list(runner.dir.glob("memlens-app-*.mlens"))
    assert len(captures) == 1
    page = captures[0].with_suffix(".html")
    assert page.is_file() and page.read_text().startswith("<!DOCTYPE html>")
    assert f"Capture: {captures[0].name}" in proc.stderr
    assert f"Report:  {page.name}" in proc.stderr

    quiet = runner.memlens("run", "-q", "app.py")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert len(list(runner.dir.glob("memlens-app-*.html"))) == 1


def test_unwritable_html_fails_before_the_program_runs(runner):
    runner.write("ok.py", "open('ran', 'w').close()\n")
    proc = runner.memlens("run", "-o", "x.mlens", "--html", "/nonexistent-dir/x.html", "ok.py")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "memlens: error: cannot write HTML report /nonexistent-dir/x.html"
    ]
    assert not (runner.dir / "ran").exists()


def test_report_format_html(runner):
    runner.write("app.py", "keep = bytearray(5_000_000)\n")
    assert runner.memlens("run", "-q", "-o", "a.mlens", "app.py").returncode == 0
    proc = runner.memlens("report", "a.mlens", "--format", "html", "--view", "leaks")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "HTML report: a.html" in proc.stderr
    page = (runner.dir / "a.html").read_text()
    assert '"initial_view":"leaks"' in page
    assert len(page.encode()) < 5_000_000
    to_stdout = runner.memlens("report", "a.mlens", "--format", "html", "-o", "-")
    assert to_stdout.returncode == 0 and to_stdout.stdout.startswith("<!DOCTYPE html>")
    # A capture that is itself named .html is never overwritten by its page.
    (runner.dir / "odd.html").write_bytes((runner.dir / "a.mlens").read_bytes())
    odd = runner.memlens("report", "odd.html", "--format", "html")
    assert odd.returncode == 0, odd.stderr
    assert (runner.dir / "odd.html").read_bytes() == (runner.dir / "a.mlens").read_bytes()
    assert (runner.dir / "odd.html.html").read_text().startswith("<!DOCTYPE html>")


def test_report_on_a_truncated_capture_renders_with_a_warning(runner):
    runner.write("app.py", "keep = [bytearray(100) for _ in range(50_000)]\n")
    assert runner.memlens("run", "-q", "--exact", "-o", "t.mlens", "app.py").returncode == 0
    data = (runner.dir / "t.mlens").read_bytes()
    (runner.dir / "t.mlens").write_bytes(data[: len(data) * 2 // 3])
    proc = runner.memlens("report", "t.mlens", "--format", "html", "-o", "t.html")
    assert proc.returncode == 0, proc.stderr
    page = (runner.dir / "t.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert '"warning":null' not in page


HEAP_PROGRAM = """
class Session:
    def __init__(self, i):
        self.id = i
        self.name = "user-%d" % i


SESSIONS = []


def fill():
    for i in range(100_000):
        SESSIONS.append(Session(i))  # ALLOC


fill()
"""


def test_heap_panel_shows_the_snapshot_of_an_exact_run(runner):
    prog = runner.write("heapy.py", HEAP_PROGRAM)
    alloc_line = line_of(prog, "# ALLOC")
    proc = runner.memlens(
        "run", "--exact", "--heap-snapshot", "exit", "-o", "h.mlens", "--html", "h.html", "heapy.py"
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    seen = check_page(runner.dir / "h.html", "fill")
    heap = seen["heap"]
    assert not heap["emptyShown"]
    assert "No heap snapshot" not in heap["text"]

    # The totals are the snapshot's own (as `memlens heap --format json` gives them).
    expected = json.loads(runner.memlens("heap", "h.mlens", "--format", "json").stdout)
    assert heap["totals"][0] == f"Objects{expected['objects']:,} ({human(expected['bytes'])})"

    # The list of 100,000 sessions is the leak suspect and the top dominator, with its path.
    path = "module `__main__`, global `SESSIONS` -> list"
    assert any(f"Path: {path}" in s for s in heap["suspects"]), heap["suspects"]
    if sys.version_info >= (3, 11):
        # Before 3.11 each instance has its own `__dict__`, and those dicts are most of what
        # the list keeps, so the suspect's text names `dict` first.
        assert any("__main__.Session" in s for s in heap["suspects"]), heap["suspects"]
    top = heap["dominators"][0]
    assert top[2] == "list" and top[3] == path
    assert int(top[1].replace(",", "")) > 100_000
    assert len(heap["dominators"]) <= 20 and len(heap["types"]) <= 20

    # The types histogram names the class, its count and the line that allocated it.
    [row] = [r for r in heap["types"] if r[3] == "__main__.Session"]
    assert row[0] == "100,000"
    assert row[4] == f"{prog}:{alloc_line}"


def test_heap_panel_without_a_snapshot_keeps_its_note(runner):
    runner.write("app.py", "keep = [bytearray(100) for _ in range(1000)]\n")
    assert runner.memlens("run", "-q", "-o", "n.mlens", "app.py").returncode == 0
    proc = runner.memlens("report", "n.mlens", "--format", "html", "-o", "n.html")
    assert proc.returncode == 0, proc.stderr
    assert '"heap":' not in (runner.dir / "n.html").read_text()
    heap = check_page(runner.dir / "n.html", "anything")["heap"]
    assert heap["emptyShown"] and "No heap snapshot in this report" in heap["text"]
    assert heap["dominators"] == [] and heap["types"] == []


def test_heap_panel_of_a_damaged_snapshot_is_left_out_with_a_warning(runner):
    runner.write("app.py", "keep = [bytearray(100) for _ in range(1000)]\n")
    proc = runner.memlens("run", "-q", "--heap-snapshot", "exit", "-o", "d.mlens", "app.py")
    assert proc.returncode == 0, proc.stderr
    data = bytearray((runner.dir / "d.mlens").read_bytes())
    # The snapshot is the last large chunk (only the small final events chunk, with the
    # collector's state and the end marker, may follow it): flip a byte inside it.
    data[len(data) - 4000] ^= 0xFF
    (runner.dir / "d.mlens").write_bytes(bytes(data))
    proc = runner.memlens("report", "d.mlens", "--format", "html", "-o", "d.html")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "heap panel" in line]
    assert len(warnings) == 1, proc.stderr
    assert (runner.dir / "d.html").read_text().startswith("<!DOCTYPE html>")


def human(b: float) -> str:
    """The page's own byte formatting (report.js `human`)."""
    if b < 1024:
        return f"{round(b)} B"
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    u = 0
    while b >= 1024 and u < len(units) - 1:
        b /= 1024
        u += 1
    return f"{b:.1f} {units[u]}"
