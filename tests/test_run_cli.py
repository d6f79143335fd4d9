"""`memlens run` as a command: exit statuses, the three ways to name a program, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import line_of, site_bytes


def test_exit_status_passes_through(runner):
    runner.write("exits.py", "import sys\nsys.exit(3)\n")
    proc = runner.memlens("run", "-o", "e.mlens", "exits.py")
    assert proc.returncode == 3, proc.stderr


def test_uncaught_exception_prints_traceback_and_exits_1(runner):
    runner.write("boom.py", "def f():\n    raise ValueError('boom')\nf()\n")
    proc = runner.memlens("run", "-o", "b.mlens", "boom.py")
    assert proc.returncode == 1
    assert "ValueError: boom" in proc.stderr
    assert 'boom.py", line 2, in f' in proc.stderr
    # The traceback shows no memlens frame. (The summary after it may list a line of the
    # runner: a sample can fall in an allocation the runner makes, filed under its own frame.)
    traceback = proc.stderr.split("memlens report:")[0]
    assert "ValueError: boom" in traceback
    assert "_runner.py" not in traceback


def test_script_arguments_reach_the_program(runner):
    runner.write("args.py", "import sys\nprint(sys.argv)\n")
    proc = runner.memlens("run", "-q", "-o", "a.mlens", "args.py", "--flag", "x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['args.py', '--flag', 'x']"
    assert proc.stderr == ""


def test_dash_c_and_dash_m(runner):
    proc = runner.memlens("run", "-o", "c.mlens", "-c", "x = bytearray(30_000_000)")
    assert proc.returncode == 0, proc.stderr
    report = runner.report("c.mlens", "leaks")
    assert report["sites"][0]["file"] == "<string>"
    assert report["sites"][0]["line"] == 1
    assert report["sites"][0]["leaked_bytes"] >= 30_000_000

    runner.write("mod_target.py", "import sys\nkeep = bytearray(40_000_000)\nsys.exit(5)\n")
    proc = runner.memlens("run", "-o", "m.mlens", "-m", "mod_target")
    assert proc.returncode == 5, proc.stderr
    report = runner.report("m.mlens", "leaks")
    assert report["sites"][0]["file"].endswith("mod_target.py")
    assert report["sites"][0]["line"] == 2


def test_default_capture_name_and_summary(runner):
    runner.write("app.py", "data = [bytearray(1000) for _ in range(20000)]\n")
    proc = runner.memlens("run", "app.py")
    assert proc.returncode == 0, proc.stderr
    captures = list(runner.dir.glob("memlens-app-*.mlens"))
    assert len(captures) == 1
    assert f"Capture: {captures[0].name}" in proc.stderr
    assert "app.py:1" in proc.stderr


def test_missing_script_is_one_line_and_status_2(runner):
    proc = runner.memlens("run", "nope.py")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["memlens: error: cannot run nope.py: no such file"]


def test_unknown_option_is_status_2(runner):
    runner.write("ok.py", "open('ran', 'w').close()\n")
    proc = runner.memlens("run", "--bogus", "ok.py")
    assert proc.returncode == 2
    assert "--bogus" in proc.stderr
    assert not (runner.dir / "ran").exists()


def test_unwritable_output_does_not_run_the_program(runner):
    runner.write("ok.py", "open('ran', 'w').close()\n")
    proc = runner.memlens("run", "-o", "/nonexistent-dir/x.mlens", "ok.py")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memlens: error: cannot write capture /nonexistent-dir/x.mlens")
    assert not (runner.dir / "ran").exists()


def test_report_on_a_foreign_file_is_one_line(runner):
    (runner.dir / "x.mlens").write_bytes(b"PK\x03\x04 not a capture at all")
    proc = runner.memlens("report", "x.mlens")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "memlens: error: cannot read capture x.mlens: not a memlens capture (bad magic at offset 0)"


def test_report_on_a_cut_capture_reports_what_is_there(runner):
    script = runner.write("big.py", "import time\nx = bytearray(20_000_000)\ntime.sleep(1.3)\ny = bytearray(10)\n")
    proc = runner.memlens("run", "--exact", "-o", "big.mlens", "big.py")
    assert proc.returncode == 0
    data = (runner.dir / "big.mlens").read_bytes()
    (runner.dir / "cut.mlens").write_bytes(data[: len(data) - 7])
    report = runner.report("cut.mlens", "leaks")
    assert "truncated" in report["meta"]["warning"]
    assert site_bytes(report, script, 2, "leaked_bytes") >= 20_000_000


def test_names_from_the_program_are_escaped_in_text(runner):
    runner.write("esc.py", '''
        import sys
        def f():
            return bytearray(5_000_000)
        names = {"co_name": "\\x1b[31mred"}
        if sys.version_info >= (3, 11):
            names["co_qualname"] = "\\x1b[31mred"
        f.__code__ = f.__code__.replace(**names)
        keep = f()
    ''')
    proc = runner.memlens("run", "--exact", "-o", "esc.mlens", "esc.py")
    assert proc.returncode == 0, proc.stderr
    text = runner.memlens("report", "esc.mlens").stdout
    assert "\x1b" not in text
    json_report = runner.report("esc.mlens", "leaks")
    assert any("\x1b[31mred" in s["function"] for s in json_report["sites"])
    assert json.dumps(json_report)  # valid JSON


def test_bundled_example_shows_findings_with_evidence(runner):
    import shutil
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"
    script = runner.dir / "quickstart.py"
    shutil.copy(example, script)
    proc = runner.memlens("run", "-o", "q.mlens", "quickstart.py")
    assert proc.returncode == 0, proc.stderr
    report = runner.report("q.mlens")
    by_rule = {f["rule"]: f for f in report["findings"]}
    assert by_rule["MR001"]["line"] == line_of(script, "kept forever")
    assert by_rule["MR002"]["line"] == line_of(script, "a full copy per pass")
    assert by_rule["MR003"]["line"] == line_of(script, "one big string: the peak")
    assert "MR001" in proc.stderr and "fix:" in proc.stderr


def test_native_stacks_is_refused_not_ignored(runner):
    runner.write("ok.py", "open('ran', 'w').close()\n")
    proc = runner.memlens("run", "--native-stacks", "-o", "n.mlens", "ok.py")
    assert proc.returncode == 2
    assert "--native-stacks is not available yet" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (runner.dir / "ran").exists()


def test_start_up_imports_little_and_leaves_the_import_system_as_it_was(runner):
    """What memlens imports runs before every program: not `threading` (patched when the
    program imports it), `sysconfig`, `runpy` or `re` (the installed command is a plain script,
    not an entry-point launcher, which imports `re`). A `threading` imported later names its
    threads, keeps its own loader, and the import watch is gone from `sys.meta_path`."""
    runner.write("imports.py", """
        import sys
        early = sorted(m for m in ("threading", "sysconfig", "runpy", "re") if m in sys.modules)
        finders = len(sys.meta_path)
        import threading
        print(early, finders - len(sys.meta_path), type(threading.__loader__).__name__,
              threading.__spec__.loader is threading.__loader__)
    """)
    command = os.path.join(os.path.dirname(sys.executable), "memlens")
    assert os.access(command, os.X_OK), "the memlens command is installed beside python"
    with open(command, encoding="utf-8") as f:
        assert "import re" not in f.read()
    proc = subprocess.run([command, "run", "-q", "-o", "i.mlens", "imports.py"],
                          cwd=runner.dir, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "1", "SourceFileLoader", "True"], proc.stdout
