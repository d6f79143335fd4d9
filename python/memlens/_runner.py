"""Runs a program for ``memlens run`` in this interpreter, tracking it (called from Rust)."""

from __future__ import annotations

import builtins
import io
import os
import sys
import types

import memlens

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

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
    """What the interpreter would exit with for ``SystemExit(code)`` (Python/pythonrun.c,
    `_Py_HandleSystemExit`): None is 0, an int is itself, anything else is printed on
    sys.stderr and exits 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    stream = sys.stderr if sys.stderr is not None else sys.__stderr__
    try:
        print(code, file=stream)
    except Exception:
        pass
    return 1


# `memlens run --heap-values`: snapshots store the first 64 characters of str and bytes values.
heap_values = False


def _on_snapshot_signal(signum: int, frame: object) -> None:
    """SIGUSR2: add a heap snapshot to the capture (runs between bytecodes, in the main thread).

    A signal that arrives while the garbage collector runs (its handler then runs inside a
    ``__del__`` or a gc callback) is sent again a moment later, after the collection.
    """
    if memlens._native.is_active():
        try:
            memlens._take_snapshot(None, values=heap_values)
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


#: Set when the program ended by an unhandled KeyboardInterrupt: after memlens's summary,
#: `memlens.__main__` ends the process by this signal, as python does, so a shell loop around
#: the command stops too.
pending_signal: Optional[int] = None


def _main_namespace(kind: str, path: Optional[str]) -> dict:
    """`__main__`'s namespace before the program runs, as python builds it (same names, same
    order): a script gets a SourceFileLoader and its absolute `__file__`, `-c` the built-in
    importer."""
    namespace = {
        "__name__": "__main__",
        "__doc__": None,
        "__package__": None,
        "__loader__": None,
        "__spec__": None,
        "__annotations__": {},
        "__builtins__": builtins,
    }
    if kind == "script":
        external = sys.modules["_frozen_importlib_external"]
        namespace["__loader__"] = external.SourceFileLoader("__main__", path)
        namespace["__file__"] = path
        namespace["__cached__"] = None
    else:
        namespace["__loader__"] = sys.modules["_frozen_importlib"].BuiltinImporter
    return namespace


def _flush_standard_streams() -> bool:
    """Flushes sys.stdout and sys.stderr as the interpreter does at exit: a stream the program
    closed or removed is skipped. False when a flush failed (python then exits 120)."""
    ok = True
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name, None)
        if stream is None or getattr(stream, "closed", False):
            continue
        try:
            stream.flush()
        except Exception:
            ok = False
    return ok


def _print_exception(etype: type, value: BaseException, tb: object) -> None:
    """Prints the program's exception as python would, without memlens's frames, on the
    program's sys.stderr (python's own choice), or fd 2 if that is gone."""
    import traceback

    runpy = sys.modules.get("runpy")
    ours = (__file__, getattr(runpy, "__file__", None), "<frozen runpy>")
    while tb is not None and tb.tb_frame.f_code.co_filename in ours:  # type: ignore[attr-defined]
        tb = tb.tb_next  # type: ignore[attr-defined]
    stream = sys.stderr
    if stream is None or getattr(stream, "closed", False):
        stream = sys.__stderr__
    try:
        traceback.print_exception(etype, value, tb, file=stream)
        stream.flush()
    except Exception:
        pass


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
    heap_values: bool = False,
) -> tuple:
    """Runs the program; returns (exit status, whether it ran under tracking, why writing the
    capture failed or None). Raises only for memlens's own failures."""
    global pending_signal
    globals()["heap_values"] = heap_values
    path = None
    if kind == "script":
        path = os.path.abspath(target)
        if not os.path.exists(path):
            raise FileNotFoundError(f"cannot run {target!r}: no such file")
        sys.argv = [target, *args]
        sys.path[0] = os.path.dirname(os.path.realpath(path))
    elif kind == "module":
        sys.argv = ["-m", *args]
        sys.path[0] = os.getcwd()
    else:
        sys.argv = ["-c", *args]
        sys.path[0] = ""

    # Compile before tracking starts, so the report shows the program, not its loading.
    namespace = None
    code = None
    source = None
    try:
        if kind == "script" and os.path.isfile(path):
            with io.open_code(path) as f:
                source = f.read()
            if _is_zip(source):
                source = None
        if source is not None:
            code = compile(source, path, "exec", dont_inherit=True)
            namespace = _main_namespace(kind, path)
        elif kind == "module":
            import runpy

            details = getattr(runpy, "_get_module_details", None)
            if details is not None:
                # As `python -m` does: find the module (importing its parent packages) and
                # run its code in a fresh __main__.
                try:
                    _, spec, code = details(target, runpy._Error)  # type: ignore[attr-defined]
                except runpy._Error as exc:  # type: ignore[attr-defined]
                    # python's own words and status for a module it cannot run.
                    print(f"{sys.executable}: {exc}", file=sys.stderr)
                    return 1, False, None
                namespace = {
                    "__name__": "__main__",
                    "__doc__": None,
                    "__package__": spec.parent,
                    "__loader__": spec.loader,
                    "__spec__": spec,
                    "__annotations__": {},
                    "__builtins__": builtins,
                    "__file__": spec.origin,
                    "__cached__": spec.cached,
                }
                sys.argv[0] = spec.origin or target
        elif kind == "code":
            code = compile(target, "<string>", "exec", dont_inherit=True)
            namespace = _main_namespace(kind, None)
    except SyntaxError:
        # The program's error, not memlens's: shown as python shows it (the caret, no
        # traceback of memlens's), with python's status.
        etype, value, _ = sys.exc_info()
        _print_exception(etype, value, None)  # type: ignore[arg-type]
        return 1, False, None

    if namespace is None:  # imported before tracking starts, to stay out of the report
        import runpy

    main_module = None
    if namespace is not None:
        main_module = types.ModuleType("__main__")
        main_module.__dict__.clear()
        main_module.__dict__.update(namespace)

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
    write_error = None
    try:
        if main_module is not None:
            sys.modules["__main__"] = main_module
            held = main_module
            # The code runs with no frame of ours under it: the program's `<module>` is the
            # outermost frame (tracebacks, inspect.stack() and recorded stacks start there).
            memlens._native.run_code(code, main_module.__dict__)
        else:
            # A zip application or a -m target runpy must find: runpy's frames and ours sit
            # under the program; recorded stacks start below this frame.
            memlens._native.set_stack_root(True)
            try:
                if kind == "script":
                    held = runpy.run_path(path, run_name="__main__")
                else:
                    held = runpy.run_module(target, run_name="__main__", alter_sys=True)
            finally:
                memlens._native.set_stack_root(False)
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except KeyboardInterrupt:
        # As python: the traceback, then death by SIGINT (after memlens's summary).
        failure = sys.exc_info()
        status = 130
        pending_signal = getattr(signal, "SIGINT", None)
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
        if not _flush_standard_streams() and status == 0:
            status = 120
        _uninstall_snapshot_signal(usr2)
        if heap_snapshot and memlens._native.is_active():
            # The program's globals are still held (`held`), as at interpreter exit.
            try:
                memlens._take_snapshot(None, values=heap_values)
            except Exception as exc:
                print(f"memlens: no heap snapshot at exit: {exc}", file=sys.__stderr__)
        if memlens._native.is_active():
            summary = memlens._stop(warn=False)
            if summary.get("write_error"):
                write_error = memlens._write_failure(summary)
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        del held
    if failure is not None:
        _print_exception(*failure)
    return status, True, write_error
