"""What the garbage collector does while tracking: each collection's start and stop (through
``gc.callbacks``), ``gc.disable()``/``gc.enable()``, and its state at the end. The capture
keeps them in order with the frees, so ``memlens gc`` can say how long the collector paused
the program and, in exact captures, which lines allocated the cycles it reclaimed."""

from __future__ import annotations

import gc

from . import _native

_patched = False


def _callback(phase: str, info: dict) -> None:
    # Runs inside every collection: nothing here may raise or allocate much.
    try:
        _native.gc_event(
            phase == "start", info.get("generation", 0), info.get("collected", 0),
            info.get("uncollectable", 0),
        )
    except Exception:
        pass


def _watch_switches() -> None:
    """Wraps ``gc.enable``/``gc.disable`` once per process so that time with the collector off
    is seen (the wrappers do what the originals do, then record it)."""
    global _patched
    if _patched:
        return
    _patched = True
    enable, disable = gc.enable, gc.disable

    def gc_enable() -> None:
        enable()
        _native.gc_enabled(True)

    def gc_disable() -> None:
        disable()
        _native.gc_enabled(False)

    for wrapper, original in ((gc_enable, enable), (gc_disable, disable)):
        wrapper.__name__ = original.__name__
        wrapper.__qualname__ = original.__qualname__
        wrapper.__doc__ = original.__doc__
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    gc.enable, gc.disable = gc_enable, gc_disable


def prepare() -> None:
    """Called just before tracking starts: what it allocates is memlens's, not the program's
    (the callback records nothing until tracking runs)."""
    _watch_switches()
    if _callback not in gc.callbacks:
        gc.callbacks.append(_callback)


def started() -> None:
    """Called once tracking runs: the collector's state at the start."""
    _native.gc_enabled(gc.isenabled())


def stop() -> None:
    """Called just before tracking stops: the collector's state at the end."""
    _native.gc_final(len(gc.garbage), gc.get_freeze_count(), gc.isenabled())


def stopped() -> None:
    """Called once tracking stopped."""
    try:
        gc.callbacks.remove(_callback)
    except ValueError:
        pass
