"""Runs a program for ``memlens run`` in this interpreter, tracking it (called from Rust)."""

from __future__ import annotations

import os
import runpy
import sys
import threading
import traceback

import memlens


def _exit_status(code: object) -> int:
    """What the interpreter would exit with for ``SystemExit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def run(
    kind: str,
    target: str,
    args: list,
    output: str,
    exact: bool,
    sample_rate: int,
    native: bool,
    follow_fork: bool,
) -> int:
    """Runs the program and returns its exit status; raises only for memlens's own failures."""
    if kind == "script":
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"cannot run {target!r}: no such file")
        sys.argv = [target, *args]
        sys.path[0] = os.path.dirname(path)
    elif kind == "module":
        sys.argv = [target, *args]
        sys.path[0] = os.getcwd()
    else:
        sys.argv = ["-c", *args]
        sys.path[0] = ""

    memlens._start(output, exact, sample_rate, native, follow_fork)
    status = 0
    try:
        if kind == "script":
            runpy.run_path(path, run_name="__main__")
        elif kind == "module":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            main = sys.modules["__main__"]
            code = compile(target, "<string>", "exec")
            exec(code, {"__name__": "__main__", "__builtins__": main.__builtins__})
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        status = 130
    except BaseException:
        # Show the program's traceback as Python would, without memlens's own frames.
        etype, value, tb = sys.exc_info()
        ours = (__file__, runpy.__file__, "<frozen runpy>")
        while tb is not None and tb.tb_frame.f_code.co_filename in ours:
            tb = tb.tb_next
        traceback.print_exception(etype, value, tb)
        status = 1
    finally:
        # Like interpreter exit: wait for the program's non-daemon threads first.
        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            try:
                shutdown()
            except BaseException:
                pass
        sys.stdout.flush()
        sys.stderr.flush()
        if memlens._native.is_active():
            memlens._stop()
    return status
