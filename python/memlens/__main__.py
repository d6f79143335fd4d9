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
    sys.stdout.flush()
    sys.exit(status)


if __name__ == "__main__":
    main()
