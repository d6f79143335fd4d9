"""Tracking in `multiprocessing` spawn and forkserver children when the parent runs with
``follow_fork``.

The parent rewrites the child's ``-c`` program to call :func:`start` first (a spawn child) or
:func:`start_forkserver` (the forkserver); the settings come through the ``MEMLENS_CHILD``
environment variable, and each tracked child writes ``NAME.<pid>.mlens`` beside the parent's
capture, finished at interpreter exit (or at ``os._exit``).
"""

from __future__ import annotations

import atexit
import os
import sys

ENV = "MEMLENS_CHILD"


def start() -> None:
    """Starts tracking in this child if the parent asked for it; never raises."""
    raw = os.environ.get(ENV)
    if not raw:
        return
    try:
        import json  # only in a spawn child: keeps `import memlens` light

        import memlens

        config = json.loads(raw)
        root, ext = os.path.splitext(config["path"])
        path = f"{root}.{os.getpid()}{ext or '.mlens'}"
        memlens._start(path, config["exact"], config["sample_rate"], config["native"], True)
        atexit.register(_stop)
    except Exception as exc:  # the child must run even if tracking cannot
        print(f"memlens: not tracking child {os.getpid()}: {exc}", file=sys.stderr)


def start_forkserver() -> None:
    """In the forkserver: tracks nothing here, but every child it forks starts its own capture
    (as a forked child of a tracked parent does); never raises."""
    raw = os.environ.get(ENV)
    if not raw:
        return
    try:
        import json

        import memlens

        config = json.loads(raw)
        memlens._follow_forks_only(config["path"], config["exact"], config["sample_rate"],
                                   config["native"])
    except Exception as exc:  # the server must run even if its children cannot be tracked
        print(f"memlens: not tracking forkserver children: {exc}", file=sys.stderr)


def _stop() -> None:
    import memlens

    if memlens._native.is_active():
        memlens._stop()
