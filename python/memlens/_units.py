"""Sizes as people write them ("100 MB", "1.5GiB", "500 kB") and as memlens prints them."""

from __future__ import annotations

import re

# Decimal prefixes are powers of 1000 and binary ones powers of 1024, as the SI and IEC define
# them (and as `ls --si`, pip and most cloud limits read "MB"); the case of the letters does
# not matter ("500 KB" and "500 kB" are the same), "B" alone and a bare number are bytes.
_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*")


def parse_size(text: object) -> int:
    """Bytes in ``text``: an int, or a number with an optional unit. Raises ``ValueError``
    naming what is wrong."""
    if isinstance(text, bool):
        raise ValueError(f"not a size: {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"a size cannot be negative: {text!r}")
        return text
    if isinstance(text, float):
        if text < 0 or text != text:
            raise ValueError(f"not a size: {text!r}")
        return int(text)
    if not isinstance(text, str):
        raise ValueError(f"not a size: {text!r} (write it as \"100 MB\" or a number of bytes)")
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"not a size: {text!r} (write a number and a unit: B, kB, MB, GB, KiB, MiB, GiB)"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(n: float) -> str:
    """``n`` bytes in binary units with one decimal (as the reports print them)."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{sign}{n:.0f} B" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
