"""Captures and heap snapshots from anyone: bounded memory and time, one clear line, no panic.

The files are built here byte by byte (the capture format is documented in
crates/memlens-format/src/lib.rs), including zstd frames made of RLE blocks: a few kilobytes
that inflate to hundreds of megabytes. Each command runs under an address-space limit and a
timeout, so a reader that materialises a bomb dies (or hangs) and the test fails.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import zlib

import pytest

MiB = 1024 * 1024
# Address space for the reader: python, the extension, its threads' stacks and the bounded
# decoding (a chunk of up to 256 MiB decompressed plus a few decoded pieces).
AS_LIMIT = 1536 * MiB

TAG_PEAK = 0x07
TAG_END = 0x0A


def varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def put_str(s: str) -> bytes:
    b = s.encode()
    return varint(len(b)) + b


def capture_header(exact: bool = True) -> bytes:
    body = (
        put_str("3.11.0")
        + varint(1234)
        + varint(1)
        + put_str("hostile.py")
        + bytes([1 if exact else 0])
        + varint(0)
        + varint(0)
        + varint(0)
    )
    return b"MLENS\0\r\n" + struct.pack("<HI", 1, len(body)) + body


def chunk(kind: int, codec: int, stored: bytes, raw_len: int, crc: int | None = None) -> bytes:
    if crc is None:
        crc = zlib.crc32(stored)
    return b"CK" + bytes([kind, codec]) + struct.pack("<III", len(stored), raw_len, crc) + stored


def zstd_rle(byte: int, total: int) -> bytes:
    """A zstd frame of RLE blocks that decompresses to `total` copies of `byte`."""
    block = 128 * 1024
    # Frame header: 4-byte content size, a 128 KiB window (exponent 7 over 1 KiB).
    out = bytearray(struct.pack("<I", 0xFD2FB528) + bytes([0x80, 0x38]) + struct.pack("<I", total))
    left = total
    while left:
        n = min(block, left)
        left -= n
        header = (1 if left == 0 else 0) | (1 << 1) | (n << 3)
        out += header.to_bytes(3, "little") + bytes([byte])
    return bytes(out)


def bomb_capture(records_byte: int = TAG_PEAK, raw: int = 256 * MiB) -> bytes:
    """One valid compressed Events chunk that inflates to `raw` bytes of 1-byte records."""
    stored = zstd_rle(records_byte, raw)
    return capture_header() + chunk(1, 1, stored, raw) + chunk(1, 0, bytes([TAG_END]), 1)


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def memlens(runner, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "memlens", *args],
        cwd=runner.dir,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limited,
    )


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "panicked" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_the_bomb_is_small(tmp_path):
    data = bomb_capture()
    assert len(data) < 9000


def test_decompression_bomb_of_one_byte_records_is_read_in_bounded_memory(runner):
    """8.5 KB inflating to 256 MiB of `Peak` records (2^28 of them): once decoded ~15 GB."""
    path = runner.dir / "bomb.mlens"
    path.write_bytes(bomb_capture())
    proc = memlens(runner, "report", str(path), "--format", "json")
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    report = json.loads(proc.stdout)
    assert report["meta"]["events"] == 0  # peaks of nothing: no allocation event
    assert report["meta"]["warning"] is None  # the End record after the bomb was read
    assert report["totals"]["peak_bytes"] == 0


def test_decompression_bomb_of_bad_records_fails_with_the_offset(runner):
    """The same bomb with a record tag no memlens writes: an error at the chunk's offset."""
    data = bomb_capture(records_byte=0x3F)
    path = runner.dir / "bad.mlens"
    path.write_bytes(data)
    proc = memlens(runner, "report", str(path))
    offset = len(capture_header())
    one_line_error(proc, "corrupt", f"offset {offset}", "unknown record tag 0x3f")


def test_chunk_whose_content_exceeds_its_declared_size_is_refused(runner):
    """A frame that holds 256 MiB in a chunk that declares 1 MiB: refused, not inflated."""
    stored = zstd_rle(TAG_PEAK, 256 * MiB)
    path = runner.dir / "liar.mlens"
    path.write_bytes(capture_header() + chunk(1, 1, stored, 1 * MiB))
    proc = memlens(runner, "report", str(path))
    one_line_error(proc, "corrupt", f"offset {len(capture_header())}")


@pytest.mark.parametrize("command", [["report"], ["heap"]])
def test_dev_zero_is_refused_at_once(runner, command):
    proc = memlens(runner, *command, "/dev/zero", timeout=30)
    one_line_error(proc, "/dev/zero", "not a regular file")


def test_a_fifo_is_refused_without_blocking(runner):
    fifo = runner.dir / "pipe.mlens"
    os.mkfifo(fifo)
    proc = memlens(runner, "report", str(fifo), timeout=30)
    one_line_error(proc, "pipe.mlens", "not a regular file")


def test_a_directory_is_refused(runner):
    proc = memlens(runner, "heap", str(runner.dir), timeout=30)
    one_line_error(proc, "not a regular file")


def test_heap_on_capture_of_many_inflating_chunks_is_bounded(runner):
    """`memlens heap` on a capture whose chunks each inflate to 256 MiB: never all at once."""
    bomb = zstd_rle(0, 256 * MiB)
    data = capture_header() + b"".join(chunk(1, 1, bomb, 256 * MiB) for _ in range(8))
    data += chunk(2, 1, bomb, 256 * MiB)
    path = runner.dir / "heapbomb.mlens"
    path.write_bytes(data)
    proc = memlens(runner, "heap", str(path))
    # The events are all 0 bytes: not a valid record stream, or not a valid snapshot; either
    # way one line, within the limits.
    one_line_error(proc, "heapbomb.mlens")


def test_heap_snapshot_file_with_inflating_garbage_is_one_line(runner):
    """A `.mlheap` whose block claims far more than its frame holds."""
    header = b"\x89MLHEAP\n" + struct.pack("<HH", 2, 0)
    stored = zstd_rle(0, 64 * MiB)
    block = bytes([1]) + struct.pack("<III", 1024, len(stored), zlib.crc32(stored)) + stored
    path = runner.dir / "bad.mlheap"
    path.write_bytes(header + block)
    proc = memlens(runner, "heap", str(path))
    one_line_error(proc, "bad.mlheap")


@pytest.mark.parametrize(
    "cut",
    [3, 10, 20, 40],
    ids=["in-magic", "in-header-length", "in-header", "in-chunk-header"],
)
def test_truncated_captures_say_where(runner, cut):
    data = capture_header() + chunk(1, 0, bytes([TAG_PEAK, TAG_END]), 2)
    path = runner.dir / "cut.mlens"
    path.write_bytes(data[:cut])
    proc = memlens(runner, "report", str(path), timeout=30)
    if cut >= len(capture_header()):
        # A killed writer: everything before the cut is reported, with a warning.
        assert proc.returncode == 0, proc.stderr
        assert "truncated at offset 39" in proc.stdout + proc.stderr
    else:
        one_line_error(proc, "cut.mlens", "truncated")


def test_bad_checksum_names_the_chunk_offset(runner):
    body = bytes([TAG_PEAK, TAG_END])
    data = capture_header() + chunk(1, 0, body, 2, crc=zlib.crc32(body) ^ 1)
    path = runner.dir / "crc.mlens"
    path.write_bytes(data)
    proc = memlens(runner, "report", str(path), timeout=30)
    one_line_error(proc, f"offset {len(capture_header())}", "checksum")


def zstd_raw(data: bytes) -> bytes:
    """A zstd frame holding `data` in one raw block."""
    assert len(data) < 256
    # Single segment, 1-byte content size; block header: last, raw, size.
    header = 1 | (0 << 1) | (len(data) << 3)
    return struct.pack("<I", 0xFD2FB528) + bytes([0x20, len(data)]) + header.to_bytes(3, "little") + data


def heap_block(kind: int, stored: bytes, raw_len: int) -> bytes:
    return bytes([kind]) + struct.pack("<III", raw_len, len(stored), zlib.crc32(stored)) + stored


def test_heap_snapshot_counts_do_not_size_memory(runner):
    """A `.mlheap` whose end block claims 2^40 of everything: no reservation sized by it."""
    header = b"\x89MLHEAP\n" + struct.pack("<HH", 2, 0)
    counts = b"".join(varint(1 << 40) for _ in range(7))
    filler = os.urandom(1 << 20) * 40  # a 40 MiB strings block (its frame is garbage)
    data = header + heap_block(1, filler, 1 << 20) + heap_block(0xFF, zstd_raw(counts), len(counts))
    path = runner.dir / "counts.mlheap"
    path.write_bytes(data)
    proc = memlens(runner, "heap", str(path))
    one_line_error(proc, "counts.mlheap", "offset 12")
