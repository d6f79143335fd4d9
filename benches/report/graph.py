"""Builds and drops a 400k-node object graph: the workload of the report benchmark.

Each node is an instance with a name, a payload dict and a list of children, linked to an
earlier node, so building the graph makes about 2.5M allocations and dropping it as many
frees (about 5M allocation events in an exact capture).
"""

import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 400_000


class Node:
    def __init__(self, i, parent):
        self.name = f"node-{i}"
        self.payload = {"index": i, "weight": i * 1.5}
        self.children = []
        if parent is not None:
            parent.children.append(self)


def build(n):
    nodes = [Node(0, None)]
    for i in range(1, n):
        nodes.append(Node(i, nodes[(i * 7919) % i]))
    return nodes


def main():
    graph = build(N)
    total = sum(len(node.children) for node in graph)
    del graph
    print(f"built and dropped {N} nodes ({total} edges)")


if __name__ == "__main__":
    main()
