"""`python -m memlens` and the `memlens` console script: hand argv to the Rust CLI."""

import os
import sys


def main() -> None:
    import memlens
    from memlens import _native

    if sys.argv and sys.argv[0]:
        memlens._launcher = os.path.abspath(sys.argv[0])

    argv = ["memlens", *sys.argv[1:]]
    status = _native.cli_main(argv)
    runner = sys.modules.get("memlens._runner")
    signum = getattr(runner, "pending_signal", None)
    if signum is not None:
        # The program died of an unhandled Ctrl-C: end as python does, by the signal itself
        # with its default action, so the parent (a shell loop) sees it.
        import signal

        _flush()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    _flush()
    sys.exit(status)


def _flush() -> None:
    """Flushes what is still open of the standard streams (the program may have closed
    them)."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and not getattr(stream, "closed", False):
            try:
                stream.flush()
            except Exception:
                pass


if __name__ == "__main__":
    main()
