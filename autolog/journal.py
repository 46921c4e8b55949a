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


def write_encoded(buf: mmap.mmap, pos: int, data: bytes) -> int:
    """Write an encoded blob at ``pos`` (the caller checked it fits) and return the position after it."""
    buf[pos + SIZE : pos + SIZE + len(data)] = data
    SLOT.pack_into(buf, pos, BLOB, 0.0, len(data), 0.0, MAGIC)  # the header last: it commits the blob
    return pos + SIZE * blob_slots(len(data))


def encoded_size(data: bytes) -> int:
    return SIZE * blob_slots(len(data))


def write_blob(buf: mmap.mmap, pos: int, obj: Any) -> int:
    """Write ``obj`` at ``pos`` (the caller checked it fits) and return the position after it."""
    return write_encoded(buf, pos, encode(obj))


def blob_size(obj: Any) -> int:
    return encoded_size(encode(obj))


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
