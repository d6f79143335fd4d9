#!/usr/bin/env python3
"""CPU cost of `memlens monitor` itself, as a percentage of one core.

Starts a process tree (a parent and N workers, each touching M MiB and running T idle threads),
monitors it with `memlens monitor --pid PARENT --duration S --interval I`, and reads the monitor's
own user+system CPU time from wait4()'s rusage (the kernel's accounting of that one child).
Prints one line per run and a summary line:

    overhead: 0.31% of one core at 0.1 s (9 processes, 450 MiB)

Usage:
    benches/monitor/overhead.py [--memlens PATH] [--procs 8] [--mib 50] [--threads 4]
                                [--seconds 30] [--interval 0.1] [--runs 3] [-- MONITOR-OPTIONS]

Build the binary first: `cargo build --release -p memlens-cli` (the default PATH is
target/release/memlens; set CARGO_TARGET_DIR-relative paths with --memlens).
"""

import argparse
import os
import subprocess
import sys
import tempfile

WORKER = r"""
import sys, threading, time
mib, threads = int(sys.argv[1]), int(sys.argv[2])
block = b"x" * (mib * 1024 * 1024)
stop = threading.Event()
for _ in range(threads):
    threading.Thread(target=stop.wait, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""

PARENT = r"""
import subprocess, sys
n, mib, threads = int(sys.argv[1]), sys.argv[2], sys.argv[3]
workers = [subprocess.Popen([sys.executable, "-c", sys.argv[4], mib, threads],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(n)]
for w in workers:
    w.stdout.readline()
print("ready", flush=True)
sys.stdin.read()
for w in workers:
    w.stdin.close()
    w.wait()
"""


def one_run(args, workdir):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(args.procs), str(args.mib), str(args.threads), WORKER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    parent.stdout.readline()  # every worker has touched its memory
    csv = os.path.join(workdir, "samples.csv")
    monitor = subprocess.Popen(
        [args.memlens, "monitor", "-q", "--pid", str(parent.pid),
         "--duration", str(args.seconds), "--interval", str(args.interval), "-o", csv]
        + args.extra,
    )
    _, status, usage = os.wait4(monitor.pid, 0)
    monitor.returncode = os.waitstatus_to_exitcode(status)
    parent.stdin.close()
    parent.wait()
    if monitor.returncode != 0:
        sys.exit(f"memlens monitor exited with {monitor.returncode}")
    with open(csv) as f:
        rows = f.read().splitlines()[1:]
    last = rows[-1].split(",")
    cpu = usage.ru_utime + usage.ru_stime
    return cpu, len(rows), int(last[5]), int(last[1])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "..", "target", "release", "memlens")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--memlens", default=os.environ.get("MEMLENS", default))
    p.add_argument("--procs", type=int, default=8, help="workers under the parent")
    p.add_argument("--mib", type=int, default=50, help="MiB touched by each worker")
    p.add_argument("--threads", type=int, default=4, help="idle threads per worker")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("extra", nargs="*", help="more memlens monitor options, after --")
    args = p.parse_args()
    if not os.access(args.memlens, os.X_OK):
        sys.exit(f"no memlens binary at {args.memlens}: build it or pass --memlens")

    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for run in range(args.runs):
            cpu, samples, procs, rss = one_run(args, workdir)
            pct = 100.0 * cpu / args.seconds
            results.append(pct)
            print(f"run {run + 1}: {cpu * 1000:.0f} ms CPU in {args.seconds:g} s = {pct:.2f}% of "
                  f"one core; {samples} samples, {procs} processes, tree RSS "
                  f"{rss / 2**20:.0f} MiB")
    results.sort()
    median = results[len(results) // 2]
    print(f"overhead: {median:.2f}% of one core at {args.interval:g} s "
          f"({args.procs + 1} processes, {args.procs * args.mib} MiB; median of {args.runs})")


if __name__ == "__main__":
    main()
