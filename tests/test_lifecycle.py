"""The tracker's process lifecycle never harms the program and never loses its data:
descriptors, full disks, fork, exit and signals (issue 16)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

import pytest
from conftest import line_of, site_bytes


def test_a_program_that_closes_every_descriptor_keeps_its_file_and_the_capture(runner):
    """Daemonizing code closes every descriptor; the next file it opens used to get the
    capture's number, and the writer wrote capture chunks into it."""
    app = runner.write("daemon.py", """
        import os, time
        early = bytearray(10_000_000)
        os.closerange(3, 4096)
        with open("mine.txt", "w") as f:
            for i in range(30):
                f.write(f"line {i}\\n")
                f.flush()
                time.sleep(0.05)   # the writer flushes meanwhile (every second at least)
            late = bytearray(30_000_000)  # LATE
            time.sleep(1.2)
            f.write("end\\n")
    """)
    proc = runner.memlens("run", "--exact", "-q", "-o", "d.mlens", "daemon.py")
    assert proc.returncode == 0, proc.stderr
    mine = (runner.dir / "mine.txt").read_bytes()
    assert mine == b"".join(f"line {i}\n".encode() for i in range(30)) + b"end\n"
    report = runner.report("d.mlens", "leaks")
    assert "warning" not in report["meta"] or not report["meta"]["warning"], report["meta"]
    assert site_bytes(report, app, line_of(app, "LATE"), "leaked_bytes") >= 30_000_000
    assert site_bytes(report, app, 2, "leaked_bytes") >= 10_000_000


def test_the_capture_descriptor_is_not_inherited_by_exec(runner):
    runner.write("child.py", """
        import os, subprocess, sys
        fds = subprocess.run(["ls", "/proc/self/fd"], capture_output=True, text=True).stdout
        print(sorted(int(x) for x in fds.split()))
    """)
    proc = runner.memlens("run", "-q", "-o", "c.mlens", "child.py")
    assert proc.returncode == 0, proc.stderr
    fds = eval(proc.stdout)  # noqa: S307 - our own program's output
    assert max(fds) < 10, fds


@pytest.fixture
def tiny_disk():
    """A 512 KiB tmpfs (root only)."""
    path = tempfile.mkdtemp(prefix="memlens-tiny-")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", path], capture_output=True
    )
    if mounted.returncode != 0:
        os.rmdir(path)
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield path
    subprocess.run(["umount", "-l", path], check=False)
    os.rmdir(path)


def test_a_full_disk_is_named_and_the_program_is_unharmed(runner, tiny_disk):
    runner.write("many.py", """
        import json
        kept = []
        for i in range(300_000):
            kept.append(str(i) * 3)
        print(json.dumps(len(kept)))
    """)
    capture = os.path.join(tiny_disk, "full.mlens")
    proc = runner.memlens("run", "--exact", "-o", capture, "many.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "300000"
    assert "No space left on device" in proc.stderr, proc.stderr
    assert "failed after" in proc.stderr
    assert "was the process killed" not in proc.stderr
    assert os.path.getsize(capture) <= 512 * 1024


def test_a_full_disk_through_the_api_is_named(runner, tiny_disk):
    capture = os.path.join(tiny_disk, "api.mlens")
    code = f"""
import memlens
with memlens.track({capture!r}, exact=True) as t:
    kept = [str(i) * 3 for i in range(300_000)]
print(t.summary["write_failed"], t.summary["write_error"])
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=runner.dir, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("True No space left on device"), proc.stdout
    assert "memlens: writing the capture" in proc.stderr


def _complete(report: dict) -> bool:
    return not report["meta"].get("warning")


def test_os_exit_leaves_a_complete_capture(runner):
    """os._exit skips atexit: the capture used to end at the last one-second flush (here:
    the header alone)."""
    app = runner.write("quick.py", """
        import os
        data = bytearray(40_000_000)   # BEFORE_EXIT
        os._exit(3)
    """)
    proc = runner.memlens("run", "--exact", "-q", "-o", "q.mlens", "quick.py")
    assert proc.returncode == 3, proc.stderr
    report = runner.report("q.mlens", "leaks")
    assert _complete(report), report["meta"]
    got = site_bytes(report, app, line_of(app, "BEFORE_EXIT"), "leaked_bytes")
    assert abs(got - 40_000_000) < 0.05 * 40_000_000


POOL = """
import multiprocessing as mp

kept = []

def work(i):
    kept.append(bytearray(20_000_000))   # WORKER_ALLOC
    return i

if __name__ == "__main__":
    ctx = mp.get_context("fork")
    with ctx.Pool(4) as pool:
        print(sum(pool.map(work, range(8), chunksize=1)))
    # and a pool that is closed and joined: its workers end with os._exit
    pool = ctx.Pool(2)
    print(sum(pool.map(work, range(4), chunksize=1)))
    pool.close()
    pool.join()
"""


@pytest.mark.parametrize("mode", ["--exact", "--sample-rate=1000"])
def test_pool_workers_leave_complete_captures(runner, mode):
    """Fork pool workers end with os._exit (close and join) or SIGTERM (the with block's
    terminate): every worker's capture is complete and they hold every task's allocation."""
    app = runner.write("pool.py", POOL)
    proc = runner.memlens("run", mode, "--follow-fork", "-q", "-o", "p.mlens", "pool.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["28", "6"]
    children = sorted(runner.dir.glob("p.*.mlens"))
    assert len(children) == 6, children
    total = 0
    for child in children:
        report = runner.report(child, "allocations")
        assert _complete(report), (child, report["meta"])
        total += site_bytes(report, app, line_of(app, "WORKER_ALLOC"), "allocated_bytes")
    assert abs(total - 12 * 20_000_000) < 0.05 * 12 * 20_000_000, total


CRASH = {
    "SIGUSR1": ("os.kill(os.getpid(), signal.SIGUSR1)", signal.SIGUSR1),
    "abort": ("os.abort()", signal.SIGABRT),
    "SIGSEGV": ("ctypes.string_at(0)", signal.SIGSEGV),
    "SIGALRM": ("signal.alarm(1); time.sleep(5)", signal.SIGALRM),
}


@pytest.mark.parametrize("how", sorted(CRASH))
def test_a_fatal_signal_finishes_the_capture(runner, how):
    """A process killed by a signal whose action is the default loses nothing recorded
    before it, and still dies of that signal."""
    code, sig = CRASH[how]
    app = runner.write("crash.py", f"""
        import ctypes, os, signal, time
        data = bytearray(40_000_000)   # BEFORE_CRASH
        {code}
    """)
    proc = runner.memlens("run", "--exact", "-q", "-o", "c.mlens", "crash.py")
    assert proc.returncode == -sig, (proc.returncode, proc.stderr)
    report = runner.report("c.mlens", "leaks")
    assert _complete(report), report["meta"]
    got = site_bytes(report, app, line_of(app, "BEFORE_CRASH"), "leaked_bytes")
    assert abs(got - 40_000_000) < 0.05 * 40_000_000


def test_a_crash_under_faulthandler_is_flushed_and_still_reported(runner):
    """faulthandler's handler (installed before memlens) still prints the traceback; the
    capture is flushed first."""
    app = runner.write("segv.py", """
        import ctypes
        data = bytearray(40_000_000)   # BEFORE_CRASH
        ctypes.string_at(0)
    """)
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    proc = runner.memlens("run", "--exact", "-q", "-o", "s.mlens", "segv.py", env=env)
    assert proc.returncode == -signal.SIGSEGV, (proc.returncode, proc.stderr)
    assert "Fatal Python error: Segmentation fault" in proc.stderr, proc.stderr
    assert "segv.py" in proc.stderr
    report = runner.report("s.mlens", "leaks")
    got = site_bytes(report, app, line_of(app, "BEFORE_CRASH"), "leaked_bytes")
    assert abs(got - 40_000_000) < 0.05 * 40_000_000


def test_a_forked_child_dies_of_sigterm_at_once(runner):
    """Without --follow-fork a child has no writer: its SIGTERM used to wait a second for
    one. Four children are terminated; waiting for all of them takes milliseconds."""
    runner.write("kids.py", """
        import os, signal, time
        kids = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            kids.append(pid)
        time.sleep(0.3)
        t = time.monotonic()
        for pid in kids:
            os.kill(pid, signal.SIGTERM)
        statuses = [os.waitpid(pid, 0)[1] for pid in kids]
        print(round(time.monotonic() - t, 3), [os.WTERMSIG(s) for s in statuses])
    """)
    proc = runner.memlens("run", "-q", "-o", "k.mlens", "kids.py")
    assert proc.returncode == 0, proc.stderr
    took, sigs = proc.stdout.split(" ", 1)
    assert sigs.strip() == "[15, 15, 15, 15]"
    assert float(took) < 0.5, took


FORK_UNDER_LOAD = """
import mmap, os, sys, threading, time, zlib

stop = False

def native():                     # no GIL: mmap (the map table) and malloc (the marks)
    blob = os.urandom(1 << 16)
    while not stop:
        m = mmap.mmap(-1, 1 << 16)
        m.close()
        zlib.decompress(zlib.compress(blob))

def python():                     # the GIL: sampled sets, the interner, checkpoints
    n = 0
    while not stop:
        kept = [str(i) * 5 for i in range(2000)]
        del kept
        n += 1

def threads():                    # registering and naming threads
    while not stop:
        t = threading.Thread(target=lambda: bytearray(1000), name=f"short-{time.time()}")
        t.start()
        t.join()

workers = [threading.Thread(target=f) for f in (native, native, native, python, python, threads)]
for w in workers:
    w.start()
hung = 0
for i in range(30):
    time.sleep(0.02)
    pid = os.fork()
    if pid == 0:
        for _ in range(20):      # the child's own hooks take the same locks
            m = mmap.mmap(-1, 1 << 16)
            m.close()
        kept = [bytearray(10_000) for _ in range(100)]
        os._exit(7)
    deadline = time.monotonic() + 15
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.WEXITSTATUS(status) == 7, status
            break
        if time.monotonic() > deadline:
            hung += 1
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            break
        time.sleep(0.005)
stop = True
for w in workers:
    w.join()
print("hung", hung)
"""


@pytest.mark.parametrize("follow", [True, False], ids=["follow-fork", "no-follow"])
@pytest.mark.parametrize("mode", ["--exact", "--sample-rate=4096"])
def test_fork_while_threads_hold_memlens_locks_never_deadlocks(runner, mode, follow):
    """Threads allocate (with and without the GIL), map memory and start threads while the
    main thread forks 30 times; a lock held by one of them at the fork used to stay held in
    the child, whose own hooks (or start, with --follow-fork) then waited for ever."""
    runner.write("forks.py", FORK_UNDER_LOAD)
    args = ["run", mode, "-q", "-o", "f.mlens"] + (["--follow-fork"] if follow else [])
    proc = runner.memlens(*args, "forks.py", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["hung", "0"], proc.stdout
    if follow:
        children = list(runner.dir.glob("f.*.mlens"))
        assert len(children) == 30
        for child in children[:5]:
            assert not runner.report(child, "allocations")["meta"].get("warning")


FORKSERVER = """
import multiprocessing as mp

def work():
    data = bytearray(30_000_000)   # FORKSERVER_CHILD
    return len(data)

if __name__ == "__main__":
    ctx = mp.get_context("forkserver")
    procs = [ctx.Process(target=work) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print("exits", [p.exitcode for p in procs])
"""


def test_follow_fork_follows_forkserver_children(runner):
    """The forkserver itself is not tracked; each child it forks writes its own complete
    capture, named like fork and spawn children's."""
    app = runner.write("fs.py", FORKSERVER)
    proc = runner.memlens("run", "--exact", "--follow-fork", "-q", "-o", "s.mlens", "fs.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "exits [0, 0]"
    children = sorted(runner.dir.glob("s.*.mlens"))
    assert len(children) == 2, children
    for child in children:
        report = runner.report(child, "allocations")
        assert _complete(report), report["meta"]
        got = site_bytes(report, app, line_of(app, "FORKSERVER_CHILD"), "allocated_bytes")
        assert abs(got - 30_000_000) < 0.05 * 30_000_000, (child, got)


SHORT_THREADS = """
import threading

def rss_mib():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) // 1024

def work():
    kept = [str(i) for i in range(100)]

for _ in range(1000):
    t = threading.Thread(target=work)
    t.start()
    t.join()
print(rss_mib())
"""


@pytest.mark.parametrize("mode", ["--exact", "--sample-rate=524288"])
def test_short_lived_threads_do_not_pile_up_memory(runner, mode):
    """1,000 threads run one after another: each thread's event ring used to come from a
    recycled heap chunk that calloc cleared whole (4 MiB committed per thread, 120-170 MiB
    resident in the end); a ring now commits only the pages its thread uses and gives them
    back when it is released."""
    runner.write("threads.py", SHORT_THREADS)
    plain = subprocess.run(
        [sys.executable, "threads.py"], cwd=runner.dir, capture_output=True, text=True,
        timeout=120,
    )
    assert plain.returncode == 0, plain.stderr
    proc = runner.memlens("run", mode, "-q", "-o", "t.mlens", "threads.py")
    assert proc.returncode == 0, proc.stderr
    extra = int(proc.stdout) - int(plain.stdout)
    assert extra < 40, f"{extra} MiB more than plain python ({plain.stdout.strip()} MiB)"
