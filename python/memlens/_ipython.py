"""IPython and Jupyter: ``%load_ext memlens``, then ``%%memlens`` on a cell and
``%memlens_snapshot``.

The cell runs as IPython would run it (its source registered under a cell name, so tracebacks
and memlens's lines show the cell's source) inside a tracking session of its own: the report
is the cell's alone. In a terminal the magic prints a summary naming the cell's lines; in a
notebook it also shows the HTML report inline (self-contained, in a sandboxed frame).
"""

from __future__ import annotations

import argparse
import html
import json
import linecache
import os
import re
import shlex
import shutil
import sys
import tempfile

import memlens

from ._units import format_size

_CELL_NAME = re.compile(r"<ipython-input-(\d+)-[0-9a-f]+>")


def load(ipython) -> None:
    ipython.register_magic_function(_cell_magic(ipython), "cell", "memlens")
    ipython.register_magic_function(_snapshot_magic(ipython), "line", "memlens_snapshot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%memlens", add_help=False)
    parser.add_argument("--exact", action="store_true", help="record every allocation")
    parser.add_argument("--leaks", action="store_true", help="rank lines by memory still alive")
    parser.add_argument("--top", type=int, default=10, help="lines to show")
    parser.add_argument("-o", "--output", help="keep the capture at this path")
    parser.add_argument("--text", action="store_true", help="no HTML report in a notebook")
    return parser


def _in_notebook(ipython) -> bool:
    return getattr(ipython, "kernel", None) is not None


def _cell_magic(ipython):
    def memlens_cell(line: str, cell: str) -> None:
        try:
            options = _parser().parse_args(shlex.split(line))
        except SystemExit:
            print(f"%%memlens: bad options {line!r}\n{_parser().format_usage()}", file=sys.stderr)
            return
        if memlens._native.is_active():
            print("%%memlens: memlens is already tracking this process", file=sys.stderr)
            return
        workdir = tempfile.mkdtemp(prefix="memlens-cell-")
        capture = os.path.abspath(options.output) if options.output else os.path.join(
            workdir, "cell.mlens"
        )
        number = getattr(ipython, "execution_count", 0)
        source = ipython.transform_cell(cell)
        name = ipython.compile.cache(source, number)
        try:
            code = compile(source, name, "exec", ipython.compile.flags, True)
        except SyntaxError:
            ipython.showsyntaxerror(filename=name)
            return
        tracker = memlens.track(capture, exact=options.exact)
        try:
            tracker.__enter__()
        except RuntimeError as exc:
            print(f"%%memlens: cannot track: {exc}", file=sys.stderr)
            return
        raised = None
        try:
            exec(code, ipython.user_ns)
        except BaseException:
            etype, value, tb = sys.exc_info()
            raised = (etype, value, tb.tb_next if tb is not None else None)  # not this frame
        finally:
            tracker.__exit__(None, None, None)  # tracking never outlives the cell
        try:
            if raised is not None:
                ipython.showtraceback(exc_tuple=raised)
            _show(ipython, tracker.summary, capture, options, workdir, name)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    memlens_cell.__doc__ = "Run the cell under memlens and show where its memory went.\n\n" + (
        _parser().format_help()
    )
    return memlens_cell


def _snapshot_magic(ipython):
    def memlens_snapshot(line: str) -> None:
        """Take a heap snapshot and show the objects that keep the most memory alive."""
        path = os.path.join(tempfile.mkdtemp(prefix="memlens-heap-"), "notebook.mlheap")
        memlens.snapshot(path)
        out = path + ".txt"
        args = ["memlens", "heap", path, "--top", line.strip() or "10", "-o", out]
        try:
            if memlens._native.cli_main(args) == 0:
                with open(out) as f:
                    print(f.read(), end="")
        finally:
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)

    return memlens_snapshot


def _cell_label(file: str, line: int) -> str:
    m = _CELL_NAME.fullmatch(file)
    if m:
        return f"cell [{m.group(1)}] line {line}"
    # ipykernel names a cell after a temporary file holding its source.
    return f"cell line {line}" if file.startswith(tempfile.gettempdir()) else f"{file}:{line}"


def _cell_lines(report: dict, key: str, cell_files: set) -> list:
    """Bytes per line of the cell: each site counted at its innermost frame in the cell (the
    cell's line that called into libraries or earlier cells' functions), so that what numpy
    allocates for `a = np.ones(n)` is that line's."""
    per_line: dict = {}
    for site in report.get("sites", []):
        amount = site.get(key, 0)
        if not amount:
            continue
        frame = next((f for f in site.get("stack", []) if f.get("file") in cell_files), None)
        if frame is None:
            continue
        where = (frame["file"], frame["line"])
        per_line[where] = per_line.get(where, 0) + amount
    return sorted(per_line.items(), key=lambda kv: -kv[1])


def _report(capture: str, view: str, workdir: str) -> dict | None:
    out = os.path.join(workdir, f"{view}.json")
    if memlens._native.cli_main(
        ["memlens", "report", capture, "--view", view, "--format", "json", "-o", out]
    ) != 0:
        return None
    with open(out) as f:
        return json.load(f)


def _show(ipython, summary: dict, capture: str, options, workdir: str, cell: str) -> None:
    estimated = "" if options.exact else "~"
    lines = [
        f"memlens: cell peak {format_size(summary['peak_bytes'])}, "
        f"{format_size(summary['live_bytes'])} still alive after it, "
        f"{format_size(summary['allocated_bytes'])} allocated in "
        f"{summary['allocations']:,} allocations"
    ]
    # The peak's lines, then what outlives the cell when that is more than a trace of it.
    views = [("leaks", "leaked_bytes", "still alive after the cell")]
    if not options.leaks:
        views.insert(0, ("peak", "peak_bytes", "at the peak"))
        if summary["live_bytes"] < max(1 << 20, summary["peak_bytes"] / 100):
            views.pop()
    view = views[0][0]
    for name, key, what in views:
        report = _report(capture, name, workdir)
        rows = _cell_lines(report or {}, key, {cell})[: options.top]
        if report is None:
            lines.append("  (the capture could not be read)")
        elif not rows:
            lines.append(f"  no line of the cell holds memory {what}")
        else:
            note = " (estimated from samples)" if estimated else ""
            lines.append(f"  cell lines by memory {what}{note}:")
        for (file, line), amount in rows:
            source = linecache.getline(file, line).strip()
            lines.append(
                f"  {estimated + format_size(amount):>12}  {_cell_label(file, line)}"
                + (f": {source}" if source else "")
            )
    if options.output:
        lines.append(f"  capture: {capture} (memlens report {capture})")
    print("\n".join(lines))
    if _in_notebook(ipython) and not options.text:
        page = os.path.join(workdir, "report.html")
        if memlens._native.cli_main(
            ["memlens", "report", capture, "--view", view, "--format", "html", "-o", page]
        ) == 0:
            from IPython.display import HTML, display

            with open(page, encoding="utf-8") as f:
                document = f.read()
            display(HTML(
                f'<iframe sandbox="allow-scripts" srcdoc="{html.escape(document, quote=True)}" '
                'style="width:100%;height:640px;border:1px solid #ddd"></iframe>'
            ))
