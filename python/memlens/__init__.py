"""memlens: where a Python program's memory goes, who keeps it alive, and how to fix it.

Track a block of code (every byte, Python objects and native memory alike) and write a
capture that ``memlens report`` turns into answers::

    import memlens

    with memlens.track("build.mlens"):
        build_index()
    print(memlens.current())      # live/peak bytes while tracking

or run a whole program with ``memlens run script.py``.
"""

from __future__ import annotations

import atexit
import os
import sys

from . import _child, _gc, _native

# Annotations only (they are strings here): `typing` costs milliseconds to import, and every
# `memlens run` pays for what `import memlens` loads before the program starts.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import types
    from typing import Any, Callable, Optional, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["DEFAULT_SAMPLE_RATE", "Tracker", "checkpoint", "current", "snapshot", "track"]
__version__ = _native.__version__

#: Mean bytes between samples in the default (sampling) mode.
DEFAULT_SAMPLE_RATE = 512 * 1024

_fork_config: Optional[dict] = None
#: The launcher script (`memlens` console script); its frames belong to memlens, not the user.
_launcher: Optional[str] = None
_hooks_installed = False
_spawn_patched = False


def _library_prefixes() -> list:
    """Path prefixes whose frames are folded into the calling user code in reports."""
    site = sys.modules.get("site")
    if site is not None and hasattr(site, "getsitepackages"):
        # What `sysconfig.get_paths()` names, without importing sysconfig and its build data
        # (1-2 ms of every `memlens run`): the standard library and the site directories.
        dirs = {os.path.dirname(os.__file__), *site.getsitepackages()}
        if site.ENABLE_USER_SITE:
            dirs.add(site.getusersitepackages())
    else:  # python -S: no site module, ask sysconfig
        import sysconfig

        paths = sysconfig.get_paths()
        dirs = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    prefixes = {p + os.sep for p in dirs if p}
    prefixes.add(os.path.dirname(os.path.abspath(__file__)) + os.sep)
    if _launcher:
        prefixes.add(_launcher)
    return sorted(prefixes)


def _install_process_hooks() -> None:
    """Names threads as they start and keeps tracking sane across fork (once per process)."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    threading = sys.modules.get("threading")
    if threading is not None:
        _name_threads(threading)
    else:
        # `threading` costs ~5 ms to import (functools, collections, weakref sets) and a
        # program that never imports it starts no threads that have names: patch it when it
        # is imported, if ever.
        sys.meta_path.insert(0, _ThreadingImportWatch)
    atexit.register(_stop_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _name_threads(threading: types.ModuleType) -> None:
    """Tells the tracker each `threading.Thread`'s name as the thread starts."""
    original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def _bootstrap_inner(self: Any) -> None:
        try:
            _native.set_thread_name(self.name)
        except Exception:  # never let naming break the program's thread
            pass
        original(self)

    threading.Thread._bootstrap_inner = _bootstrap_inner  # type: ignore[attr-defined]


class _ThreadingImportWatch:
    """A meta path finder that only waits for `threading` to be imported, then steps aside:
    it lets the other finders find the module and patches it once it has run (see
    `_install_process_hooks`)."""

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "threading":
            return None
        try:
            sys.meta_path.remove(cls)
        except ValueError:
            pass
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        run = getattr(loader, "exec_module", None)
        if run is None:
            return spec

        class _Patching:
            # Only for this one import: the module keeps the real loader.
            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: types.ModuleType) -> None:
                module.__loader__ = loader
                spec.loader = loader
                run(module)
                _name_threads(module)

        spec.loader = _Patching()
        return spec


def _stop_at_exit() -> None:
    """Finishes a capture that the program left open (a tracker started without `with`)."""
    if _native.is_active():
        try:
            _stop()
        except Exception as exc:
            print(f"memlens: could not finish the capture: {exc}", file=sys.stderr)


def _patch_spawn() -> None:
    """Makes `multiprocessing` spawn children start tracking first, and the forkserver follow
    the children it forks (follow_fork only: importing `multiprocessing` takes longer than the
    rest of memlens's start-up)."""
    global _spawn_patched
    if _spawn_patched:
        return
    _spawn_patched = True
    try:
        from multiprocessing import spawn
    except ImportError:
        return
    original = spawn.get_command_line

    def get_command_line(**kwds):  # type: ignore[no-untyped-def]
        cmd = original(**kwds)
        if os.environ.get(_child.ENV) and "-c" in cmd:
            i = cmd.index("-c") + 1
            cmd = [*cmd[:i], "import memlens._child as m; m.start(); " + cmd[i], *cmd[i + 1 :]]
        return cmd

    spawn.get_command_line = get_command_line
    try:
        from multiprocessing import util
    except ImportError:
        return
    original_spawnv = util.spawnv_passfds

    def spawnv_passfds(path, args, passfds):  # type: ignore[no-untyped-def]
        # The forkserver: its own code is not tracked, the children it forks are.
        if os.environ.get(_child.ENV) and "-c" in args:
            i = args.index("-c") + 1
            if i < len(args) and args[i].startswith("from multiprocessing.forkserver import"):
                prefix = "import memlens._child as m; m.start_forkserver(); "
                args = [*args[:i], prefix + args[i], *args[i + 1 :]]
        return original_spawnv(path, args, passfds)

    util.spawnv_passfds = spawnv_passfds


def _before_fork() -> None:
    if _native.is_active():
        _native.flush()


def _after_fork_in_child() -> None:
    global _fork_config
    if _fork_config is None:
        return
    _native.after_fork_in_child()
    config = dict(_fork_config)
    if config.pop("follow_fork", False):
        root, ext = os.path.splitext(config["path"])
        config["path"] = f"{root}.{os.getpid()}{ext or '.mlens'}"
        try:
            _start(**config, follow_fork=True)
        except Exception as exc:  # the child must go on even if tracking cannot
            print(f"memlens: not tracking child {os.getpid()}: {exc}", file=sys.stderr)
    else:
        _fork_config = None


def _follow_forks_only(path: str, exact: bool, sample_rate: int, native: bool) -> None:
    """Tracks nothing in this process, but every child it forks from now on (the forkserver)."""
    global _fork_config
    _install_process_hooks()
    _fork_config = dict(
        path=path, exact=exact, sample_rate=sample_rate, native=native, follow_fork=True
    )


def _start(path: str, exact: bool, sample_rate: int, native: bool, follow_fork: bool) -> None:
    global _fork_config
    _install_process_hooks()
    command = list(sys.argv) if sys.argv and sys.argv[0] else [sys.executable]
    config = dict(
        path=os.fspath(path),
        exact=exact,
        sample_rate=sample_rate,
        native=native,
        follow_fork=follow_fork,
    )
    prefixes = _library_prefixes()
    threading = sys.modules.get("threading")
    # Without `threading` imported, no thread has a name: this is the main thread.
    name = threading.current_thread().name if threading is not None else "MainThread"
    child_config = None
    if follow_fork:
        import json  # only when spawn children are followed: keeps `import memlens` light

        _patch_spawn()

        child_config = json.dumps(
            {"path": os.path.abspath(config["path"]), "exact": bool(exact),
             "sample_rate": int(sample_rate), "native": bool(native)}
        )
    _gc.prepare()
    # Nothing is allocated between here and the program's own code: memlens stays out of its
    # own report.
    _native.start(
        config["path"],
        bool(exact),
        int(sample_rate),
        bool(native),
        (sys.version_info[0], sys.version_info[1]),
        sys.version.split()[0],
        command,
        prefixes,
    )
    _fork_config = config
    _native.set_thread_name(name)
    _gc.started()
    if child_config is not None:
        os.environ[_child.ENV] = child_config


def _stop(warn: bool = True) -> dict:
    """Stops tracking; with ``warn``, says on stderr when the capture could not be written
    completely (a full disk, say)."""
    global _fork_config
    _gc.stop()
    summary = _native.stop()  # first: the cleanup below is memlens's, not the program's
    _gc.stopped()
    _fork_config = None
    os.environ.pop(_child.ENV, None)
    if warn and summary.get("write_error"):
        print(f"memlens: {_write_failure(summary)}", file=sys.__stderr__)
    return summary


def _write_failure(summary: dict) -> str:
    """One sentence on a capture that could not be written completely."""
    return (
        f"writing the capture {summary['path']} failed after {summary['capture_bytes']} bytes "
        f"({summary['write_error']}); it holds what was written before"
    )


class Tracker:
    """Tracks memory while active; use as a context manager or a decorator.

    ``summary`` holds the exact totals and the capture path once the block has ended, and
    ``dropped_events``: how many events the capture lacks because the tracker's writer fell
    behind (0 normally; totals stay exact, but sites may then be incomplete).
    """

    def __init__(
        self,
        path: Optional[str] = None,
        *,
        exact: bool = False,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        native: bool = True,
        follow_fork: bool = False,
    ) -> None:
        if sample_rate < 1:
            raise ValueError("sample_rate must be a positive number of bytes")
        self.path = os.fspath(path) if path is not None else f"memlens-{os.getpid()}.mlens"
        self.exact = exact
        self.sample_rate = sample_rate
        self.native = native
        self.follow_fork = follow_fork
        self.summary: Optional[dict] = None

    def __enter__(self) -> Tracker:
        _start(self.path, self.exact, self.sample_rate, self.native, self.follow_fork)
        return self

    def __exit__(self, *exc: object) -> None:
        self.summary = _stop()

    def __call__(self, func: F) -> F:
        import functools

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def track(
    path: Optional[str] = None,
    *,
    exact: bool = False,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    native: bool = True,
    follow_fork: bool = False,
) -> Tracker:
    """Track memory in a ``with`` block or a decorated function, writing a capture to ``path``.

    ``exact=True`` records every allocation and free; by default a byte-weighted sample with a
    mean of ``sample_rate`` bytes is recorded, while the totals stay exact either way.
    """
    return Tracker(
        path, exact=exact, sample_rate=sample_rate, native=native, follow_fork=follow_fork
    )


def current() -> dict:
    """Exact totals while tracking: ``live_bytes``, ``peak_bytes``, ``allocated_bytes``,
    ``allocations`` (all zero before tracking starts; the last session's after it stops)."""
    return _native.current()


def checkpoint(label: str) -> None:
    """Marks this moment in the capture; reports can show what leaked between checkpoints."""
    _native.checkpoint(str(label))


_snapshot_count = 0


def snapshot(path: Optional[str] = None, values: bool = False) -> str:
    """Take a heap snapshot: every object, every reference and the roots that hold them.

    While tracking (inside ``memlens.track()`` or ``memlens run``) and without ``path``, the
    snapshot becomes part of the capture, where ``memlens heap CAPTURE`` finds it and, for an
    ``exact=True`` capture, names the line that allocated each object. Otherwise it is written
    to ``path`` (default: ``memlens-<pid>-<n>.mlheap`` in the current directory, ``n`` counting
    from 1). Returns the path written to. The walk runs with the GIL held, allocates no Python
    objects and leaves refcounts and the garbage collector's state as they were. Called while
    the garbage collector runs (from ``__del__`` or a ``gc.callbacks`` function), it raises
    ``RuntimeError`` and writes nothing.

    The snapshot holds the program's types, attribute and key names, sizes and references, its
    command line (``sys.argv``) and, only with ``values=True``, the first 64 characters of every
    ``str`` and ``bytes`` (which may be tokens or passwords). Without it, each value is kept as
    a hash that only says which values are equal (duplicate strings are still found).
    """
    global _snapshot_count
    if path is None and not _native.is_active():
        while True:
            _snapshot_count += 1
            path = f"memlens-{os.getpid()}-{_snapshot_count}.mlheap"
            if not os.path.exists(path):
                break
    target = None if path is None else os.fspath(path)
    _take_snapshot(target, values=values)
    if target is None:
        return str((_fork_config or {}).get("path", ""))
    return target


class _Plain:
    """A class defined in Python on `object` alone: the heap walker learns from it how the
    interpreter traverses such instances."""


def _take_snapshot(path: Optional[str], values: bool = False) -> dict:
    import builtins
    import time

    threading = sys.modules.get("threading")
    if threading is not None:
        threads = [(t.ident, t.name) for t in threading.enumerate() if t.ident is not None]
    else:  # no `threading.Thread` exists: the caller is the main thread
        import _thread

        threads = [(_thread.get_ident(), "MainThread")]
    meta = [
        ("python", sys.version.split()[0]),
        ("pid", str(os.getpid())),
        ("time", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        ("command", " ".join(sys.argv)),
    ]
    return _native.heap_snapshot(
        path,
        (sys.version_info[0], sys.version_info[1]),
        sys.modules,
        sys.__dict__,
        builtins.__dict__,
        threads,
        meta,
        _Plain,
        bool(values),
    )


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext memlens``: the ``%%memlens`` cell magic and ``%memlens_snapshot``."""
    from . import _ipython

    _ipython.load(ipython)
