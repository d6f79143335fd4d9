"""The IPython extension (`%load_ext memlens`, `%%memlens`, `%memlens_snapshot`), driven
through IPython's own InteractiveShell as a terminal or a notebook would run it."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("IPython") is None, reason="IPython is not installed"
)

SHELL = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
import memlens

ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "memlens")
results = {}

def cell(key, source, notebook=False):
    ip.kernel = object() if notebook else None
    with capture_output() as out:
        ip.run_cell(source)
    results[key] = {
        "stdout": out.stdout, "stderr": out.stderr,
        "html": [o.data.get("text/html", "") for o in out.outputs],
        "active": memlens._native.is_active(),
    }
"""


def drive(runner, body: str) -> dict:
    source = SHELL + textwrap.dedent(body) + "\nprint(json.dumps(results))\n"
    proc = subprocess.run(
        [sys.executable, "-c", source], cwd=runner.dir, capture_output=True, text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_cell_magic_names_the_cells_lines_and_their_sizes(runner):
    results = drive(runner, '''
        cell("big", """%%memlens
        small = [str(i) for i in range(1000)]
        big = bytearray(50_000_000)
        del big
        kept = bytearray(20_000_000)
        """)
    ''')
    out = results["big"]["stdout"]
    assert not results["big"]["active"]
    m = re.search(r"cell peak (\d+\.\d) MiB, (\d+\.\d) MiB still alive after it", out)
    assert m, out
    assert 47.6 <= float(m.group(1)) <= 48.5  # the 50 MB, freed before the 20 MB: 47.7 MiB
    assert 19 <= float(m.group(2)) <= 19.2  # 20 MB: 19.1 MiB
    m = re.search(r"~(\d+\.\d) MiB  cell \[\d+\] line 2: big = bytearray\(50_000_000\)", out)
    assert m, out
    assert 40 <= float(m.group(1)) <= 56  # sampled: an estimate, marked `~`
    assert "line 4: kept = bytearray(20_000_000)" in out, out


def test_exact_leaks_and_tracking_off_after_a_cell_that_raises(runner):
    results = drive(runner, '''
        cell("raises", """%%memlens --exact --leaks
        keep = [bytearray(1000) for _ in range(3000)]
        raise ValueError("boom")
        """)
        cell("after", "x = 1")
    ''')
    raised = results["raises"]
    assert not raised["active"]
    assert "ValueError" in raised["stdout"] + raised["stderr"]
    assert "boom" in raised["stdout"] + raised["stderr"]
    # The traceback is the cell's, not memlens's.
    assert "_ipython.py" not in raised["stdout"] + raised["stderr"]
    # Exact: 3,000 bytearrays of 1,000 bytes (1,057-byte blocks) and the list.
    m = re.search(r"\n\s+(\d+\.\d) MiB  cell \[\d+\] line 1: keep = ", raised["stdout"])
    assert m, raised["stdout"]
    assert float(m.group(1)) == pytest.approx(3000 * (1057 + 8) / 2**20, abs=0.15)
    assert not results["after"]["active"]


def test_in_a_notebook_the_html_report_is_shown_inline(runner):
    results = drive(runner, '''
        cell("nb", """%%memlens
        data = bytearray(30_000_000)
        """, notebook=True)
    ''')
    pages = [h for h in results["nb"]["html"] if h]
    assert len(pages) == 1, results["nb"]
    page = pages[0]
    assert page.startswith('<iframe sandbox="allow-scripts" srcdoc="')
    # The whole report is in the page (self-contained) and escaped for the attribute.
    assert "&lt;script" in page and "<script" not in page
    assert "line 1: data = bytearray(30_000_000)" in results["nb"]["stdout"]


def test_snapshot_magic_shows_the_top_holders(runner):
    results = drive(runner, '''
        ip.run_cell("HOLDER = [bytearray(10_000) for _ in range(2_000)]")
        cell("snap", "%memlens_snapshot 5")
    ''')
    out = results["snap"]["stdout"]
    assert "Top dominators" in out, out
    assert re.search(r"(19|20)\.\d MiB\s+2,001\s+list\s+module `__main__`, global `HOLDER`", out), out


def test_bad_options_are_refused_with_the_usage(runner):
    results = drive(runner, '''
        cell("bad", """%%memlens --bogus
        x = 1
        """)
    ''')
    assert "%%memlens: bad options" in results["bad"]["stderr"]
    assert "usage: %%memlens" in results["bad"]["stderr"]
    assert not results["bad"]["active"]
