"""A small program with the memory habits memlens points out: a cache that only grows,
a large temporary copy made again and again, and one line that dominates the peak."""

import json

_CACHE = {}  # module-level cache, never bounded


def load_record(i):
    if i not in _CACHE:
        _CACHE[i] = {"id": i, "payload": str(i) * 400}  # kept forever
    return _CACHE[i]


def total_length(rows):
    total = 0
    for _ in range(20):
        snapshot = [dict(r) for r in rows]  # a full copy per pass, thrown away at once
        total += len(snapshot)
    return total


def main():
    rows = [load_record(i) for i in range(20_000)]
    print("copies:", total_length(rows))
    blob = json.dumps(rows * 2)  # one big string: the peak
    print("json bytes:", len(blob))


if __name__ == "__main__":
    main()
