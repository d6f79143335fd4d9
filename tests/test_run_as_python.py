"""`memlens run` runs a program as `python` would: its command line, its `__main__`, its exit
status and error output, its streams (issue 15, "The command line belongs to the program";
issue 16, "It changes what the program sees or does")."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest

PROBE = """
import inspect, json, sys
import __main__
names = {k: type(v).__name__ for k, v in vars(__main__).items()
         if k not in ("inspect", "json", "sys", "__main__")}
print(json.dumps({
    "argv": sys.argv,
    "path0": sys.path[0],
    "main": names,
    "file": vars(__main__).get("__file__"),
    "cached": vars(__main__).get("__cached__"),
    "package": __main__.__package__,
    "loader": type(__main__.__loader__).__name__ if not isinstance(__main__.__loader__, type)
              else __main__.__loader__.__name__,
    "spec": getattr(__main__.__spec__, "name", None),
    "stack": [f.function for f in inspect.stack()],
    "outermost": [f.filename for f in inspect.stack()][-1],
}))
"""


def python(runner, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=runner.dir, capture_output=True, text=True, timeout=120, **kw
    )


def probe_output(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_programs_options_are_never_memlenss(runner):
    """`memlens run app.py -o results.csv` used to overwrite the user's results.csv with a
    capture, and `app.py --help` showed memlens's help."""
    runner.write("argv.py", "import sys\nprint(sys.argv)\n")
    results = runner.dir / "results.csv"
    results.write_text("the user's data\n")
    proc = runner.memlens("run", "-q", "argv.py", "-o", "results.csv", "--help", "-h", "--exact")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['argv.py', '-o', 'results.csv', '--help', '-h', '--exact']"
    assert results.read_text() == "the user's data\n"


def test_script_argv_and_main_are_pythons(runner):
    runner.write("probe.py", PROBE)
    args = ("probe.py", "a", "--flag", "--", "-x")
    ours = probe_output(runner.memlens("run", "-q", *args))
    theirs = probe_output(python(runner, *args))
    assert ours == theirs
    assert ours["stack"] == ["<module>"]
    assert ours["loader"] == "SourceFileLoader"


def test_module_argv_and_main_are_pythons(runner):
    (runner.dir / "pkg").mkdir()
    (runner.dir / "pkg" / "__init__.py").write_text("")
    (runner.dir / "pkg" / "probe.py").write_text(PROBE)
    args = ("-m", "pkg.probe", "--indent", "1", "-h")
    ours = probe_output(runner.memlens("run", "-q", *args))
    theirs = probe_output(python(runner, *args))
    # python -m runs the module under runpy's own frames; memlens runs it with none under it.
    assert theirs["stack"][0] == "<module>" and ours["stack"] == ["<module>"]
    del ours["stack"], theirs["stack"], ours["outermost"], theirs["outermost"]
    assert ours == theirs
    assert ours["argv"] == [str(runner.dir / "pkg" / "probe.py"), "--indent", "1", "-h"]
    assert ours["spec"] == "pkg.probe"


def test_code_argv_and_main_are_pythons(runner):
    args = ("-c", PROBE, "a", "-o", "b")
    ours = probe_output(runner.memlens("run", "-q", *args))
    theirs = probe_output(python(runner, *args))
    assert ours == theirs
    assert ours["argv"] == ["-c", "a", "-o", "b"]
    assert ours["loader"] == "BuiltinImporter"


def test_a_double_dash_before_the_script(runner):
    runner.write("argv.py", "import sys\nprint(sys.argv)\n")
    proc = runner.memlens("run", "-q", "--", "argv.py", "--", "x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['argv.py', '--', 'x']"


def test_json_tool_with_arguments_and_with_stdin(runner):
    """`python -m json.tool` closes its stdout when done; memlens's summary goes on."""
    (runner.dir / "in.json").write_text('{"a": [1, 2]}')
    proc = runner.memlens("run", "-m", "json.tool", "--indent", "1", "in.json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '{\n "a": [\n  1,\n  2\n ]\n}\n'
    assert "Traceback" not in proc.stderr
    assert "peak" in proc.stderr

    proc = runner.memlens("run", "-m", "json.tool", input='{"b": 3}')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '{\n    "b": 3\n}\n'
    assert "Traceback" not in proc.stderr
    assert "Capture:" in proc.stderr


def test_a_program_that_replaces_its_streams(runner):
    code = "import io, sys\nsys.stdout = io.StringIO()\nsys.stderr = None\nx = bytearray(10**7)\n"
    proc = runner.memlens("run", "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "<string>:4" in proc.stderr  # the summary reaches the real stderr


@pytest.mark.parametrize(
    "code",
    [
        "raise SystemExit(3)",
        "raise SystemExit('bye')",
        "raise SystemExit(None)",
        "raise SystemExit(256 + 4)",
        "raise SystemExit(-1)",
        "import os; os._exit(7)",
        "import sys; sys.exit(True)",
    ],
)
def test_exit_status_and_message_are_pythons(runner, code):
    ours = runner.memlens("run", "-q", "-c", code)
    theirs = python(runner, "-c", code)
    assert ours.returncode == theirs.returncode
    assert ours.stderr == theirs.stderr


def test_a_syntax_error_is_shown_as_python_shows_it(runner):
    runner.write("bad.py", "x = 1\ny = (\n")
    ours = runner.memlens("run", "bad.py")
    theirs = python(runner, "bad.py")
    assert ours.returncode == theirs.returncode == 1
    if sys.version_info >= (3, 10):
        assert ours.stderr == theirs.stderr
    # 3.9's parser names a different line for an error at the end of a file read from disk
    # than for the same source compiled from bytes (python's own `compile` does the same).
    assert "^" in ours.stderr and "SyntaxError" in ours.stderr
    assert not list(runner.dir.glob("*.mlens"))


def test_a_module_python_cannot_find(runner):
    ours = runner.memlens("run", "-m", "no_such_module_here")
    theirs = python(runner, "-m", "no_such_module_here")
    assert ours.returncode == theirs.returncode == 1
    assert "No module named no_such_module_here" in ours.stderr
    assert "memlens: error" not in ours.stderr


def test_an_uncaught_exception_shows_no_memlens_frame(runner):
    runner.write("boom.py", "import inspect\ndef f():\n    raise ValueError(len(inspect.stack()))\nf()\n")
    ours = runner.memlens("run", "-q", "boom.py")
    theirs = python(runner, "boom.py")
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr == theirs.stderr  # the same frames, the same count of frames
    assert "ValueError: 2" in ours.stderr


def test_an_unhandled_ctrl_c_ends_by_sigint(runner):
    """As python: the traceback, then death by SIGINT (a shell loop stops), after the
    summary."""
    runner.write("kb.py", "x = bytearray(10**7)\ndef f():\n    raise KeyboardInterrupt\nf()\n")
    ours = runner.memlens("run", "kb.py")
    theirs = python(runner, "kb.py")
    assert theirs.returncode == ours.returncode == -signal.SIGINT
    traceback = ours.stderr.split("memlens report:")[0]
    assert traceback == theirs.stderr
    assert "kb.py:1" in ours.stderr  # the summary was printed before the process ended


def test_a_program_that_changes_directory_still_gets_its_summary_and_report(runner):
    runner.write("cd.py", "import os\nos.chdir('/')\nkeep = bytearray(20_000_000)\n")
    proc = runner.memlens("run", "-o", "cd.mlens", "cd.py")
    assert proc.returncode == 0, proc.stderr
    assert "cannot summarize" not in proc.stderr
    assert "cd.py:3" in proc.stderr
    assert "Capture: cd.mlens" in proc.stderr
    assert (runner.dir / "cd.mlens").is_file()
    assert (runner.dir / "cd.html").is_file()


def test_output_and_html_options_do_what_help_says(runner):
    runner.write("app.py", "keep = bytearray(5_000_000)\n")
    proc = runner.memlens("run", "-o", "mine.mlens", "app.py")
    assert proc.returncode == 0, proc.stderr
    assert (runner.dir / "mine.html").is_file()
    assert "Report:  mine.html" in proc.stderr

    proc = runner.memlens("run", "-o", "two.mlens", "--html", "elsewhere.html", "app.py")
    assert proc.returncode == 0, proc.stderr
    assert (runner.dir / "elsewhere.html").is_file()
    assert not (runner.dir / "two.html").exists()

    proc = runner.memlens("run", "-q", "-o", "quiet.mlens", "app.py")
    assert proc.returncode == 0 and proc.stderr == ""
    assert (runner.dir / "quiet.mlens").is_file()
    assert not (runner.dir / "quiet.html").exists()


def test_run_help_is_written_for_users(runner):
    proc = runner.memlens("run", "--help")
    assert proc.returncode == 0
    for words in ("--exact", "sampl", ".html", "sys.argv", "-m mypkg.cli", "Examples"):
        assert words in proc.stdout, words


def test_every_listed_command_works(runner):
    # `gc` was listed while it did nothing; it is listed now that it works (tests/test_gc.py).
    proc = runner.memlens("--help")
    assert proc.returncode == 0
    commands = proc.stdout.split("Commands:")[1].split("Options:")[0]
    # `  name  description`; wrapped descriptions continue further indented.
    names = [m.group(1) for m in re.finditer(r"^  ([a-z]+)\b", commands, re.M)]
    assert "run" in names and "gc" in names
    for name in names:
        if name == "help":
            continue
        usage = runner.memlens(name, "--help")
        assert usage.returncode == 0, (name, usage.stderr)
        assert "is not available in this build" not in usage.stdout + usage.stderr
