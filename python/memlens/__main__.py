"""`python -m memlens` and the `memlens` console script: hand argv to the Rust CLI."""

import sys


def main() -> None:
    from memlens import _native

    argv = ["memlens", *sys.argv[1:]]
    status = _native.cli_main(argv)
    sys.stdout.flush()
    sys.exit(status)


if __name__ == "__main__":
    main()
