"""The journal's pages are faulted in by the writer thread, not by the training thread at its first slot in each.

On ext4 the first write into a hole of a new file took 3 to 50 ms (then ~5 µs a page): a stall in the middle of a
training step. ``journal.create_segment`` writes a new segment's head with ``pwrite``; the writer then faults the
rest in with ``MADV_POPULATE_WRITE``. What a process has mapped shows in /proc/self/smaps.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import autolog
from autolog import journal, session

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="smaps and MADV_POPULATE_WRITE: Linux")


def _resident(path: Path) -> int:
    """Bytes of ``path``'s mapping that are in this process's page tables (the smaps Rss of its mapping)."""
    lines = Path("/proc/self/smaps").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.endswith(str(path)):
            for field in lines[i + 1 : i + 25]:
                if field.startswith("Rss:"):
                    return int(field.split()[1]) * 1024
    raise AssertionError(f"{path} is not mapped")


def _segment(tmp_path: Path) -> tuple[int, Path]:
    autolog.enable(f"sqlite:///{tmp_path / 'runs.db'}", spool=True)
    with autolog.start_run("pages") as run:
        run.log_metrics({"loss": 0.5}, 0)
        assert autolog.flush(30)  # the writer's next pass faults the new segment in before it writes
        spool = session.writer().spool
        assert spool is not None
        _, size, path = spool.segments[-1]
        return size, path


def test_the_writer_faults_a_new_segment_in(tmp_path: Path) -> None:
    size, path = _segment(tmp_path)
    assert _resident(path) >= size - journal.PREFILL


def test_without_the_writer_only_the_written_head_is_mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "prefault", lambda buf, start: False)
    _, path = _segment(tmp_path)
    assert _resident(path) <= journal.PREFILL + 4096  # what the first record touched: the check above can fail


def test_a_segment_starts_with_its_blobs_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "j.0000000000000000.seg"
    blobs = [("h", {"pid": 1}), ("o", ["run-" + "x" * 200_000])]  # the second is larger than PREFILL
    buf, pos = journal.create_segment(path, 1 << 20, blobs)
    journal.SLOT.pack_into(buf, pos, 7, 0.25, 3, 1.0, journal.MAGIC)
    buf.flush()
    items = [obj for _, obj in journal.read_segment(0, path)]
    assert items == [*blobs, ("m", 7, 0.25, 3, 1.0)]
    buf.close()
