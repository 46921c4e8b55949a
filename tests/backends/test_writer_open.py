"""A backend that cannot be opened: the records the writer popped are retried, then counted, never lost silently."""

from __future__ import annotations

import pytest

from autolog.backends import open_backend
from autolog.backends.memory import MemoryBackend
from autolog.writer import METRICS, Writer


def test_records_are_counted_when_the_backend_never_opens() -> None:
    writer = Writer(lambda: open_backend("nosuch:thing"), max_retries=2)
    for step in range(5):
        writer.put((METRICS, "r", step, 0.0, {"a": 1.0, "b": 2.0}))
    with pytest.warns(UserWarning, match="could not be opened"):
        assert writer.flush(10)
    assert writer.dropped() == {"backend_error": 10}
    assert writer.counters["retried"] == 2
    writer.stop(1)


def test_a_backend_that_opens_on_a_later_try_gets_every_record() -> None:
    store = MemoryBackend("memory:late")
    tries = []

    def factory() -> MemoryBackend:  # mocked fault: a server that refuses the first two connections
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError("not yet")
        return store

    writer = Writer(factory, max_retries=5)
    for step in range(7):
        writer.put((METRICS, "r", step, 0.0, {"a": float(step)}))
    assert writer.flush(10)
    assert [s for s, _, _ in store.history[("r", "a")]] == list(range(7))
    assert not writer.dropped()
    writer.stop(1)
