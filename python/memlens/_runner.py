"""Runs a program for ``memlens run`` in this interpreter, tracking it (called from Rust)."""

from __future__ import annotations

import builtins
import io
import os
import sys
import types

import memlens

try:  # the C module: `signal` itself imports `enum` for its constants, before every program
    import _signal as signal
except ImportError:  # pragma: no cover - other interpreters
    import signal  # type: ignore[no-redef]

# `runpy`, `traceback` and `zipfile` are imported only when needed: everything imported here
# runs before every program `memlens run` starts (zipfile alone pulls in shutil, bz2, ...).


def _is_zip(data: bytes) -> bool:
    """True for a zip application (what `python app.pyz` runs): its end-of-central-directory
    record sits in the last 64 KiB."""
    if b"PK\x05\x06" not in data[-65557:]:
        return False
    import zipfile

    return zipfile.is_zipfile(io.BytesIO(data))


def _exit_status(code: object) -> int:
    """What the interpreter would exit with for ``SystemExit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _on_snapshot_signal(signum: int, frame: object) -> None:
    """SIGUSR2: add a heap snapshot to the capture (runs between bytecodes, in the main thread).

    A signal that arrives while the garbage collector runs (its handler then runs inside a
    ``__del__`` or a gc callback) is sent again a moment later, after the collection.
    """
    if memlens._native.is_active():
        try:
            memlens._take_snapshot(None)
        except RuntimeError as exc:
            if "during a garbage collection" not in str(exc):
                print(f"memlens: heap snapshot failed: {exc}", file=sys.stderr)
                return
            import threading

            retry = threading.Timer(0.02, os.kill, (os.getpid(), signum))
            retry.daemon = True
            retry.start()
        except Exception as exc:
            print(f"memlens: heap snapshot failed: {exc}", file=sys.stderr)


def _install_snapshot_signal() -> bool:
    """Takes a heap snapshot on SIGUSR2 unless something already handles that signal.

    The handler is a Python one, so the walk runs at a safe point of the main thread, never
    inside the C signal handler. A handler the program installs later replaces it.
    """
    sig = getattr(signal, "SIGUSR2", None)
    threading = sys.modules.get("threading")
    if sig is None or (
        threading is not None and threading.current_thread() is not threading.main_thread()
    ):
        return False
    try:
        if signal.getsignal(sig) not in (signal.SIG_DFL, None):
            return False
        signal.signal(sig, _on_snapshot_signal)
    except (ValueError, OSError):
        return False
    return True


def _uninstall_snapshot_signal(installed: bool) -> None:
    if installed and signal.getsignal(signal.SIGUSR2) is _on_snapshot_signal:
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)


def run(
    kind: str,
    target: str,
    args: list,
    output: str,
    exact: bool,
    sample_rate: int,
    native: bool,
    follow_fork: bool,
    heap_snapshot: bool = False,
) -> int:
    """Runs the program and returns its exit status; raises only for memlens's own failures."""
    if kind == "script":
        path = os.path.abspath(target)
        if not os.path.exists(path):
            raise FileNotFoundError(f"cannot run {target!r}: no such file")
        sys.argv = [target, *args]
        sys.path[0] = os.path.dirname(path)
    elif kind == "module":
        sys.argv = [target, *args]
        sys.path[0] = os.getcwd()
    else:
        sys.argv = ["-c", *args]
        sys.path[0] = ""

    # Compile before tracking starts, so the report shows the program, not its loading.
    main_module = None
    code = None
    source = None
    if kind == "script" and os.path.isfile(path):
        with io.open_code(path) as f:
            source = f.read()
        if _is_zip(source):
            source = None
    if source is not None:
        code = compile(source, path, "exec", dont_inherit=True)
        main_module = types.ModuleType("__main__")
        main_module.__file__ = path
        main_module.__cached__ = None
        main_module.__builtins__ = builtins
    elif kind == "module":
        import runpy

        details = getattr(runpy, "_get_module_details", None)
        if details is not None:
            # As `python -m` does: find the module (importing its parent packages) and run its
            # code in a fresh __main__.
            _, spec, code = details(target)
            main_module = types.ModuleType("__main__")
            main_module.__file__ = spec.origin
            main_module.__spec__ = spec
            main_module.__loader__ = spec.loader
            main_module.__package__ = spec.parent
            main_module.__cached__ = spec.cached
            main_module.__builtins__ = builtins
            sys.argv[0] = spec.origin or target
    elif kind == "code":
        code = compile(target, "<string>", "exec", dont_inherit=True)
        main_module = types.ModuleType("__main__")
        main_module.__builtins__ = builtins

    if main_module is None:  # imported before tracking starts, to stay out of the report
        import runpy

    # The program's globals stay alive until tracking stops, as they would until interpreter
    # shutdown, so "leaks" means what the program still held when it ended.
    held = None
    failure = None
    saved_main = sys.modules.get("__main__")
    # The handler goes in before tracking starts, so that installing it is not in the report.
    usr2 = _install_snapshot_signal()
    try:
        memlens._start(output, exact, sample_rate, native, follow_fork)
    except BaseException:
        _uninstall_snapshot_signal(usr2)
        raise
    status = 0
    try:
        # Recorded stacks start below this frame, at the program's own code (the walks then
        # also skip memlens's outer frames). Cleared before anything else runs here.
        memlens._native.set_stack_root(True)
        try:
            if main_module is not None:
                sys.modules["__main__"] = main_module
                held = main_module
                exec(code, main_module.__dict__)
            elif kind == "script":
                held = runpy.run_path(path, run_name="__main__")
            else:
                held = runpy.run_module(target, run_name="__main__", alter_sys=True)
        finally:
            memlens._native.set_stack_root(False)
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except KeyboardInterrupt:
        import traceback

        traceback.print_exc()
        status = 130
    except BaseException:
        # Printed once tracking has stopped, so the printing is not in the report.
        failure = sys.exc_info()
        status = 1
    finally:
        # Like interpreter exit: wait for the program's non-daemon threads first.
        # (Without `threading` imported there are none: `_thread` threads are not waited for.)
        shutdown = getattr(sys.modules.get("threading"), "_shutdown", None)
        if shutdown is not None:
            try:
                shutdown()
            except BaseException:
                pass
        sys.stdout.flush()
        sys.stderr.flush()
        _uninstall_snapshot_signal(usr2)
        if heap_snapshot and memlens._native.is_active():
            # The program's globals are still held (`held`), as at interpreter exit.
            try:
                memlens._take_snapshot(None)
            except Exception as exc:
                print(f"memlens: no heap snapshot at exit: {exc}", file=sys.stderr)
        if memlens._native.is_active():
            memlens._stop()
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        del held
    if failure is not None:
        # Show the program's traceback as Python would, without memlens's own frames.
        etype, value, tb = failure
        import traceback

        runpy = sys.modules.get("runpy")
        ours = (__file__, getattr(runpy, "__file__", None), "<frozen runpy>")
        while tb is not None and tb.tb_frame.f_code.co_filename in ours:
            tb = tb.tb_next
        traceback.print_exception(etype, value, tb)
        sys.stderr.flush()
    return status
