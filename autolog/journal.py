"""The spool's on-disk format: append-only segment files written through a shared memory mapping.

A journal belongs to one process (``<jid>`` = pid and a random suffix) and lives in the spool directory as

    <jid>.lock                  held with flock(LOCK_EX) while the process lives; 16 bytes: the confirmed offset
    <jid>.<base:016d>.seg       segments; ``base`` is the journal-wide byte offset of the segment's first byte

A segment is a sequence of 32-byte slots. A metric is one slot, ``SLOT`` = (key id, value, step, timestamp, MAGIC),
packed with one ``struct.pack_into`` into the mapping: no system call, and the OS keeps the page when the process
is killed. Key id 0 starts a blob: ``step`` holds its length, the pickled payload fills the following slots, and the
header slot is packed last, so a blob whose header carries MAGIC is complete. A slot without MAGIC (never written,
or torn by a kill in the middle of a call that therefore never returned) ends the segment's readable part.

Blobs hold: ("h", info) the header of every segment (backend URI, pid, created); ("o", [run ids]) the runs open when
the segment began; ("k", kid, run_id, key) a key id for this segment; ("r", record) a queue record other than a
metric (run start and end, params, tags), already reduced to plain data.

"Confirmed" offsets are journal-wide byte offsets: everything that ends at or before the confirmed offset is in the
backend. The writer keeps it in the lock file (and, for SQLite, in the store inside the same transaction as the batch).
"""

from __future__ import annotations

import mmap
import os
import pickle
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SLOT = struct.Struct("<IdqdI")  # key id, value, step, timestamp, MAGIC
SIZE = SLOT.size
assert SIZE == 32
MAGIC = 0x474F4C41  # "ALOG"
BLOB = 0
SEGMENT_BYTES = 8 << 20
PREFILL = 64 << 10  # bytes of a new segment written with pwrite, not through the mapping: see ``create_segment``
_MADV_POPULATE_WRITE = 23  # Linux 5.14+
META = struct.Struct("<QQ")  # confirmed offset, reserved


def lock_path(directory: Path, jid: str) -> Path:
    return directory / f"{jid}.lock"


def segment_path(directory: Path, jid: str, base: int) -> Path:
    return directory / f"{jid}.{base:016d}.seg"


def segments(directory: Path, jid: str) -> list[tuple[int, Path]]:
    """(base, path) of the journal's segments, oldest first."""
    found = []
    for path in directory.glob(f"{jid}.*.seg"):
        try:
            found.append((int(path.name.rsplit(".", 2)[1]), path))
        except ValueError:
            continue
    return sorted(found)


def journals(directory: Path) -> list[str]:
    """Every journal id with a lock file or a segment in ``directory``."""
    if not directory.is_dir():
        return []
    ids = {p.name[: -len(".lock")] for p in directory.glob("*.lock")}
    ids |= {p.name.rsplit(".", 2)[0] for p in directory.glob("*.seg")}
    return sorted(ids)


def blob_slots(length: int) -> int:
    return 1 + (length + SIZE - 1) // SIZE


def encode(obj: Any) -> bytes:
    """A blob's bytes: pickle it once, then ``encoded_size`` and ``write_encoded`` (rare records are pickled on the
    training thread; twice was a measurable part of a short fit's logging)."""
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def write_encoded(buf: mmap.mmap | bytearray, pos: int, data: bytes) -> int:
    """Write an encoded blob at ``pos`` (the caller checked it fits) and return the position after it."""
    buf[pos + SIZE : pos + SIZE + len(data)] = data
    SLOT.pack_into(buf, pos, BLOB, 0.0, len(data), 0.0, MAGIC)  # the header last: it commits the blob
    return pos + SIZE * blob_slots(len(data))


def encoded_size(data: bytes) -> int:
    return SIZE * blob_slots(len(data))


def write_blob(buf: mmap.mmap | bytearray, pos: int, obj: Any) -> int:
    """Write ``obj`` at ``pos`` (the caller checked it fits) and return the position after it."""
    return write_encoded(buf, pos, encode(obj))


def blob_size(obj: Any) -> int:
    return encoded_size(encode(obj))


def create_segment(path: Path, size: int, blobs: list[Any]) -> tuple[mmap.mmap, int]:
    """A new segment of ``size`` bytes that starts with ``blobs``: its mapping and the position after them.

    Its first ``PREFILL`` bytes (the blobs, then zeros) go in with one ``pwrite``, not through the mapping: on ext4
    the first write fault into a hole of a new file took 3 to 50 ms here (the later ones ~5 µs), on the training
    thread, in the middle of a step. With the page cache filled by ``pwrite`` the first slots cost nothing, and the
    writer thread faults the rest in beforehand (``prefault``)."""
    need = sum(blob_size(obj) for obj in blobs)
    head = bytearray(min(size, max(PREFILL, need)))
    pos = 0
    for obj in blobs:
        pos = write_blob(head, pos, obj)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        os.pwrite(fd, head, 0)
        buf = mmap.mmap(fd, size)
    finally:
        os.close(fd)
    return buf, pos


_madvise: Any = None


def prefault(buf: mmap.mmap, start: int) -> bool:
    """Fault ``buf``'s pages from ``start`` on in as if written (``MADV_POPULATE_WRITE``; no byte changes), with the
    GIL released (a ctypes call): the writer thread takes the page faults a training thread would otherwise take at
    its first slot in each page. False where the system does not support it (nothing changes then)."""
    global _madvise
    if _madvise is None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.madvise
            fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
            fn.restype = ctypes.c_int
            _madvise = (ctypes, fn)
        except (OSError, AttributeError, ImportError):
            _madvise = False
    if not _madvise or buf.closed:
        return False
    ctypes, fn = _madvise
    page = mmap.PAGESIZE
    start = (start // page) * page
    if start >= len(buf):
        return True
    view = ctypes.c_char.from_buffer(buf)  # an export of the mapping, released at once: only its address is kept
    address = ctypes.addressof(view)
    del view
    # the writer thread alone closes mappings, so this one stays mapped during the call (and madvise on a range that
    # is no longer mapped fails with ENOMEM: it never touches memory)
    return bool(fn(address + start, len(buf) - start, _MADV_POPULATE_WRITE) == 0)


Item = tuple[int, Any]  # (journal-wide end offset, ("m", kid, value, step, ts) or a blob object)


def read_segment(base: int, path: Path) -> Iterator[Item]:
    """Every complete record of one segment, in order; stops at the first slot that is not complete."""
    try:
        data = path.read_bytes()
    except OSError:
        return
    unpack = SLOT.unpack_from
    pos, size = 0, len(data)
    while pos + SIZE <= size:
        kid, value, step, ts, magic = unpack(data, pos)
        if magic != MAGIC:
            return
        if kid == BLOB:
            end = pos + SIZE * blob_slots(step)
            if step <= 0 or end > size:
                return
            try:
                obj = pickle.loads(data[pos + SIZE : pos + SIZE + step])
            except Exception:  # noqa: BLE001 - a damaged blob ends what can be trusted in this segment
                return
            pos = end
            yield base + pos, obj
        else:
            pos += SIZE
            yield base + pos, ("m", kid, value, step, ts)


def read(directory: Path, jid: str) -> Iterator[Item]:
    for base, path in segments(directory, jid):
        yield from read_segment(base, path)


class Meta:
    """The lock file: flock held for the owner's lifetime, and the confirmed offset mapped in its first 8 bytes."""

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = path
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self.fd = os.open(path, flags, 0o644)
        if create:
            os.ftruncate(self.fd, META.size)
        self.map: mmap.mmap | None = None

    def try_lock(self) -> bool:
        import fcntl

        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _mapped(self) -> mmap.mmap:
        if self.map is None:
            if os.fstat(self.fd).st_size < META.size:
                os.ftruncate(self.fd, META.size)
            self.map = mmap.mmap(self.fd, META.size)
        return self.map

    def confirmed(self) -> int:
        return int(META.unpack_from(self._mapped(), 0)[0])

    def set_confirmed(self, offset: int) -> None:
        META.pack_into(self._mapped(), 0, offset, 0)

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None
        if self.fd >= 0:
            os.close(self.fd)  # releases the flock
            self.fd = -1
