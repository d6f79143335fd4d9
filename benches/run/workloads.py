"""Benchmark workloads for `memlens run` overhead. Each runs for 1-3 seconds under plain
Python (long enough that start-up costs do not dominate; `empty` measures those alone); pick
one with the first argument."""

import json
import os
import sys

#: Iteration counts are multiplied by this (benches/run/instructions.py runs them smaller under
#: callgrind); data sizes stay as they are.
SCALE = float(os.environ.get("MEMLENS_BENCH_SCALE", "1"))


def n(count: int) -> int:
    return max(1, int(count * SCALE))


def churn():
    # Short-lived dicts, strings and lists: all allocation, nothing kept.
    for i in range(n(4_000_000)):
        d = {"a": i, "b": str(i)}
        lst = [d, i, "x"]
        del d, lst


def json_mix():
    doc = {"users": [{"id": i, "name": f"user{i}", "tags": ["a", "b", str(i)], "score": i * 0.5}
                     for i in range(2000)]}
    for _ in range(n(100)):
        text = json.dumps(doc)
        doc = json.loads(text)


def calls():
    # Deep recursion that hardly allocates: tests per-call costs (profile hooks).
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    fib(31 if SCALE >= 1 else 25)


class Node:
    def __init__(self, value, children):
        self.value = value
        self.children = children


def retained_graph():
    # A large object graph kept alive until exit.
    global KEEP
    KEEP = [Node(i, [Node(j, []) for j in range(3)]) for i in range(n(250_000))]


def numpy_temporaries():
    import numpy as np

    a = np.random.default_rng(0).random(2_000_000)
    for _ in range(n(200)):
        b = a * 2.0 + 1.0  # two temporaries per pass
        a = np.sqrt(b) - 0.5


def empty():
    pass


WORKLOADS = {
    f.__name__: f for f in (empty, churn, json_mix, calls, retained_graph, numpy_temporaries)
}

if __name__ == "__main__":
    WORKLOADS[sys.argv[1]]()
