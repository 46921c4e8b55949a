"""The optional C extension (autolog._speedups) and the pure-Python code it stands in for give the same journal and
the same writer queue, record for record; and the extension is built wherever it can be.

The spool's ``put`` is driven directly (a stand-in writer: its queue and its ``_put_crowded``), once with the C
``FastPut`` and once with the pure-Python closure, through one sequence of calls: known and new keys, segment rolls,
a full spool, values that are not plain (bool, huge int, NaN, None, text, numpy scalars, tensors), keys that are
not exact ``str``, odd steps and timestamps, many keys at once, several runs, rare records. ``ActiveRun.log_metrics``
is compared the same way. Threads: tests/reliability/test_journal_threads.py runs with both implementations.
"""

from __future__ import annotations

import math
import mmap
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import types
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from autolog import _native, journal, runs
from autolog import spool as spool_module
from autolog.records import RunEnd, RunStart
from autolog.writer import ARTIFACT, END, METRICS, PARAMS, START, TAGS

try:
    from autolog import _speedups
except ImportError:  # not built: the comparisons skip; test_built_where_a_compiler_is says whether it should be
    _speedups = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(_speedups is None, reason="autolog._speedups is not built")
RUN_A, RUN_B, RUN_C = "a" * 32, "b" * 32, "c" * 32


def test_built_where_a_compiler_is() -> None:
    """CI has gcc and the Python headers: a broken build must fail here, not pass as skipped comparisons."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"], "Python.h").is_file()
    if shutil.which(cc) is None or not headers:
        pytest.skip("no C compiler or no Python headers here: autolog runs its pure-Python code")
    assert _speedups is not None, (
        "a C compiler and Python.h are here but autolog._speedups was not built: see `pip install -e .`'s output"
    )


def test_pure_python_switch() -> None:
    code = "from autolog import _native, runs; print(_native.speedups is None, runs.ActiveRun.log_metrics.__name__)"
    env = {**os.environ, "AUTOLOG_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "_log_metrics_py"]
    if _speedups is not None:
        env.pop("AUTOLOG_PURE_PYTHON")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.split() == ["False", "_log_metrics_c"]


# -- the spool's put: C and pure Python through one sequence ------------------------------------------------------


class _Writer:
    """What the spool's put uses of a writer: its queue, its thresholds and ``_put_crowded``."""

    def __init__(self, batch_size: int = 5) -> None:
        self._queue: deque[Any] = deque()
        self.batch_size = batch_size
        self.max_queue = 1_000_000
        self.crowded: list[Any] = []

    def _put_crowded(self, record: Any) -> None:
        self.crowded.append(record)
        self._queue.append(record)


class _StrKey(str):
    pass


class _Detachable:
    def detach(self) -> _Detachable:
        return self


def _odd_values() -> list[Any]:
    values: list[Any] = [True, False, 10**400, -(2**70), float("nan"), math.inf, None, "text", 2**53 + 1, -3]
    values.append(_Detachable())
    try:
        import numpy as np
    except ImportError:
        pass
    else:
        values += [np.float32(0.5), np.int64(7), np.array(2.5), np.float64(1.25), np.bool_(True), np.array([1.0])]
    try:
        import torch
    except ImportError:
        pass
    else:
        values += [torch.tensor(1.5), torch.tensor(3)]
    return values


def _sequence(calls: int = 3000) -> list[tuple[Any, ...]]:
    """Queue records as runs.py and the integrations make them, common ones mostly, every odd case now and then."""
    rng = random.Random(20261126)
    odd_values = _odd_values()
    tensors = [v for v in odd_values if type(v).__name__ in ("Tensor", "_Detachable")]
    odd_keys: list[Any] = [3, ("t", 1), _StrKey("loss"), "x" * (spool_module._MAX_KEY_BLOB // 4 + 1), 2.5]
    odd_steps: list[Any] = [2**70, -(2**63) - 1, True, -5, 2**63 - 1]
    try:
        import numpy as np

        odd_steps.append(np.int64(11))
    except ImportError:
        pass
    out: list[tuple[Any, ...]] = [
        (START, RunStart(RUN_A, "exp", "ra", 1.0, None, {"t": "1"})),
        (START, RunStart(RUN_B, "exp", "rb", 1.5, None, {})),
        (PARAMS, RUN_A, {"lr": 0.1, 7: "seven"}),
    ]
    for i in range(calls):
        rid = RUN_A if rng.random() < 0.6 else RUN_B
        if i == calls // 2:
            out.append((START, RunStart(RUN_C, "exp", "rc", 2.0, RUN_A, {})))
        if i > calls // 2 and rng.random() < 0.2:
            rid = RUN_C
        step: Any = i
        ts: Any = 1000.0 + i / 8
        values: dict[Any, Any] = {"loss": rng.random(), "acc": rng.randrange(100)}
        roll = rng.random()
        if roll < 0.05:
            values[f"k{i // 150}"] = float(i)  # a key new to this segment (or to the journal)
        elif roll < 0.08:
            values[rng.choice(odd_keys)] = rng.random()
        elif roll < 0.12:
            values[rng.choice(["loss", "acc", "new"])] = rng.choice(odd_values)
        elif roll < 0.14:
            step = rng.choice(odd_steps)
        elif roll < 0.15:
            ts = int(ts)
        elif roll < 0.16:
            values = {}
        elif roll < 0.19:
            values = {f"many{j}": j * 0.5 for j in range(40)}  # past the C code's stack arrays
        elif roll < 0.2:
            values = {"loss": float("nan"), "acc": -math.inf}
        elif roll < 0.21:
            out.append((TAGS, rid, {"epoch": str(i)}))
        elif roll < 0.215:
            out.append((ARTIFACT, rid, object()))
        elif roll < 0.35:  # a training loop's step: its loss a tensor (never journaled), its learning rate a float
            values = {"loss": rng.choice(tensors), "lr": 0.1}
        out.append((METRICS, rid, step, ts, values))
    out.append((END, RunEnd(RUN_B, "FINISHED", 5000.0)))
    out.append((METRICS, RUN_A, calls, 5000.0, {"loss": 0.0}))
    return out


def _norm(obj: Any) -> Any:
    """Journal items and records in a comparable shape: floats by their bits (NaN), a segment header's time dropped."""
    if isinstance(obj, float):
        return ("float", obj.hex())
    if isinstance(obj, tuple):
        if len(obj) == 2 and obj[0] == "h" and isinstance(obj[1], dict):
            return ("h", obj[1]["backend"])
        return tuple(_norm(x) for x in obj)
    if isinstance(obj, list):
        return [_norm(x) for x in obj]
    if isinstance(obj, dict):
        return {_norm(k): _norm(v) for k, v in obj.items()}
    return obj


def _drive(
    directory: Path, native: Any, records: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch, max_bytes: int
) -> dict[str, Any]:
    monkeypatch.setattr(_native, "speedups", native)
    spool = spool_module.Spool(directory, "sqlite:///x.db", max_bytes)
    spool.segment_bytes = spool_module._SLACK + 8192  # 256 metric slots a segment: a roll every ~100 calls
    writer = _Writer()
    put = spool.make_put(writer)  # type: ignore[arg-type]
    assert (type(put).__name__ == "FastPut") == (native is not None)
    taken: list[Any] = []
    for i, record in enumerate(records):
        put(record)
        if i % 7 == 0:  # the writer takes what is queued now and then: the crowded threshold is crossed both ways
            taken.extend(writer._queue)
            writer._queue.clear()
    taken.extend(writer._queue)
    result = {
        "queue": taken,
        "crowded": writer.crowded,
        "journal": _norm(list(journal.read(directory, spool.jid))),
        "counters": dict(spool.counters),
        "segments": [(base, size) for base, size, _ in spool.segments],
        "open_runs": list(spool.open_runs),
    }
    spool.close(delete=True)
    return result


@needs_c
@pytest.mark.filterwarnings("ignore:autolog. the spool reached")
@pytest.mark.parametrize("max_bytes", [1 << 30, 3 * (spool_module._SLACK + 8192)], ids=["roomy", "full"])
def test_fast_put_journals_and_queues_exactly_as_the_python_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_bytes: int
) -> None:
    records = _sequence()
    pure = _drive(tmp_path / "pure", None, records, monkeypatch, max_bytes)
    to_python: list[Any] = []  # the records the C code handed to the Python put

    def fast_put(slow: Any, *args: Any, **kwargs: Any) -> Any:
        def counted(record: Any) -> None:
            to_python.append(record)
            slow(record)

        return _speedups.FastPut(counted, *args, **kwargs)

    native = types.SimpleNamespace(FastPut=fast_put)
    fast = _drive(tmp_path / "fast", native, records, monkeypatch, max_bytes)
    if max_bytes == 1 << 30:  # (a full spool sends every record to Python, which keeps it in memory)
        # A loop's step (a tensor loss, a float lr) stays in C once its types and its keys in the segment are
        # known: here segments are small and each of three runs registers its keys anew in each.
        steps = [r for r in records if len(r) == 5 and r[0] == METRICS and set(r[4]) == {"loss", "lr"}]
        stayed = [r for r in steps if all(r is not t for t in to_python)]
        assert len(stayed) > len(steps) // 2, (len(stayed), len(steps))
    assert len(pure["queue"]) == len(records)
    assert fast["queue"] == pure["queue"]  # the same records (the very objects where Python queues them as given)
    assert [type(r) for r in fast["queue"]] == [type(r) for r in pure["queue"]]
    given = {id(r) for r in records}
    assert all(f is p for f, p in zip(fast["queue"], pure["queue"], strict=True) if id(p) in given)
    assert fast["crowded"] == pure["crowded"] and pure["crowded"]
    assert fast["journal"] == pure["journal"]
    assert fast["counters"] == pure["counters"]
    assert fast["segments"] == pure["segments"] and len(pure["segments"]) > 1
    assert fast["open_runs"] == pure["open_runs"]
    if max_bytes < 1 << 30:
        assert pure["counters"]["unspooled"] > 0  # the spool filled up: records kept in memory only, counted
    else:
        assert len(pure["segments"]) > 10
    assert any(len(r) == 7 for r in pure["queue"])  # values kept in memory only (a tensor, a huge int, a long key)
    assert any(len(r) == 6 for r in pure["queue"]) and any(len(r) == 5 for r in pure["queue"])


# -- FastPut's decisions, on hand-made state ----------------------------------------------------------------------


def _cells(**values: Any) -> dict[str, Any]:
    """Closure cells holding ``values``, as the spool's closure has them."""
    busy, buf, pos, limit, base, ids, fresh = (
        values[k] for k in ("busy", "buf", "pos", "limit", "base", "ids", "fresh")
    )

    def state() -> tuple[Any, ...]:
        return busy, buf, pos, limit, base, ids, fresh

    return dict(zip(state.__code__.co_freevars, state.__closure__ or (), strict=True))


def _fast(
    slow: Any, writer: _Writer, **overrides: Any
) -> tuple[Any, dict[str, Any], mmap.mmap]:  # (FastPut, cells, mapping)
    buf = mmap.mmap(-1, 4096)
    state = {"busy": False, "buf": buf, "pos": 64, "limit": 4096 - 64, "base": 1000, "fresh": False}
    state["ids"] = {RUN_A: {"loss": 1, "acc": 2}}
    deferred = overrides.pop("deferred", set())
    state.update(overrides)
    cells = _cells(**state)
    put = _speedups.FastPut(
        slow, writer._queue, 3, writer._put_crowded, METRICS, journal.MAGIC, **cells, deferred=deferred
    )
    return put, cells, buf


@needs_c
def test_fast_put_packs_slots_and_queues_the_record_itself() -> None:
    slow: list[Any] = []
    writer = _Writer()
    put, cells, buf = _fast(slow.append, writer)
    record = (METRICS, RUN_A, 9, 12.5, {"loss": 0.25, "acc": 3})
    put(record)
    assert slow == [] and list(writer._queue) == [record] and writer._queue[0] is record
    assert cells["pos"].cell_contents == 128
    assert buf[64:128] == journal.SLOT.pack(1, 0.25, 9, 12.5, journal.MAGIC) + journal.SLOT.pack(
        2, 3.0, 9, 12.5, journal.MAGIC
    )
    assert cells["busy"].cell_contents is False


@needs_c
@pytest.mark.parametrize("fresh", [False, True])
def test_fast_put_keeps_values_of_a_deferred_type_aside(fresh: bool) -> None:
    """A loss tensor beside a float learning rate: the float is journaled, the tensor kept in the record's own dict
    (the 7-tuple the Python code queues), ``fresh`` left as it was; a type not in the set still goes to Python."""
    slow: list[Any] = []
    writer = _Writer()
    put, cells, buf = _fast(slow.append, writer, deferred={_Detachable}, fresh=fresh)
    loss = _Detachable()
    values = {"loss": loss, "acc": 0.5}
    put((METRICS, RUN_A, 4, 2.0, values))
    assert slow == []
    assert list(writer._queue) == [(METRICS, RUN_A, 4, 2.0, values, 1000 + 96, {"loss": loss})]
    assert writer._queue[0][6]["loss"] is loss
    assert cells["pos"].cell_contents == 96
    assert buf[64:96] == journal.SLOT.pack(2, 0.5, 4, 2.0, journal.MAGIC)
    assert cells["fresh"].cell_contents is fresh
    assert cells["busy"].cell_contents is False
    other = (METRICS, RUN_A, 5, 2.0, {"loss": "text", "acc": 0.5})
    put(other)
    assert slow == [other]


class _EqMeta(type):  # noqa: PLW1641 - unhashable on purpose
    def __eq__(cls, other: object) -> bool:  # and so no __hash__: classes of this metaclass are unhashable
        return cls is other


class _UnhashableClass(metaclass=_EqMeta):
    pass


@pytest.mark.parametrize("native", [None, _speedups], ids=["python", "c"])
def test_a_value_whose_class_is_unhashable_is_kept_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: Any
) -> None:
    """The set of never-journaled types cannot hold such a class: the value takes the Python path each time and
    stays in the record's own dict, as any value that is not a number (never an error in the training thread)."""
    if native is None and _speedups is None and "c" in str(native):
        pytest.skip("autolog._speedups is not built")
    monkeypatch.setattr(_native, "speedups", native)
    with pytest.raises(TypeError):
        hash(_UnhashableClass)
    spool = spool_module.Spool(tmp_path, "sqlite:///x.db", 1 << 30)
    writer = _Writer()
    put = spool.make_put(writer)  # type: ignore[arg-type]
    put((START, RunStart(RUN_A, "exp", "ra", 1.0, None, {})))
    values = [_UnhashableClass(), _UnhashableClass()]
    for step, value in enumerate(values):
        put((METRICS, RUN_A, step, 1.0, {"loss": value, "lr": 0.1}))
    queued = [r for r in writer._queue if r[0] == METRICS]
    assert [r[6]["loss"] for r in queued] == values
    slots = [item for _, item in journal.read(tmp_path, spool.jid) if isinstance(item, tuple) and item[0] == "m"]
    assert [(value, step) for _, _, value, step, _ in slots] == [(0.1, 0), (0.1, 1)]  # the lr of each step
    spool.close(delete=True)


@needs_c
def test_fast_put_after_a_roll_queues_the_end_offset_once() -> None:
    writer = _Writer()
    put, cells, _ = _fast(print, writer, fresh=True)
    first, second = (METRICS, RUN_A, 1, 1.0, {"loss": 1.0}), (METRICS, RUN_A, 2, 1.0, {"loss": 2.0})
    put(first)
    put(second)
    assert list(writer._queue) == [(*first, 1000 + 96), second]
    assert cells["fresh"].cell_contents is False


@needs_c
@pytest.mark.parametrize(
    ("overrides", "record"),
    [
        ({"busy": True}, (METRICS, RUN_A, 1, 1.0, {"loss": 1.0})),  # another call is in the mapping
        ({"pos": 4096 - 64}, (METRICS, RUN_A, 1, 1.0, {"loss": 1.0})),  # no room: Python rolls
        ({"ids": {}}, (METRICS, RUN_A, 1, 1.0, {"loss": 1.0})),  # no key ids for this run in this segment
        ({}, (METRICS, RUN_A, 1, 1.0, {"new": 1.0})),  # a new key
        ({}, (METRICS, RUN_A, 1, 1.0, {"loss": 1.0, "acc": True})),  # bool
        ({}, (METRICS, RUN_A, 1, 1.0, {"loss": 10**400})),  # an int no double holds
        ({}, (METRICS, RUN_A, 1, 1.0, {_StrKey("loss"): 1.0})),  # a str subclass key
        ({}, (METRICS, RUN_A, 2**64, 1.0, {"loss": 1.0})),  # a step past int64
        ({}, (METRICS, RUN_A, 1, 1, {"loss": 1.0})),  # an int timestamp
        ({}, (METRICS, RUN_A, 1, 1.0, {})),
        ({}, (METRICS, RUN_A, 1, 1.0, types.MappingProxyType({"loss": 1.0}))),
        ({}, (METRICS, RUN_A, 1, 1.0, {"loss": 1.0}, "extra")),
        ({}, ("M", RUN_A, 1, 1.0, {"loss": 1.0})),
        ({}, (PARAMS, RUN_A, {"lr": "0.1"})),
    ],
)
def test_fast_put_hands_everything_else_to_python_untouched(overrides: dict[str, Any], record: Any) -> None:
    slow: list[Any] = []
    writer = _Writer()
    put, cells, buf = _fast(slow.append, writer, **overrides)
    before = buf[:]
    put(record)
    assert slow == [record] and slow[0] is record and not writer._queue
    assert buf[:] == before
    assert cells["busy"].cell_contents is overrides.get("busy", False)
    assert cells["pos"].cell_contents == overrides.get("pos", 64)


@needs_c
def test_fast_put_hands_a_closed_mapping_to_python() -> None:
    slow: list[Any] = []
    put, _, buf = _fast(slow.append, _Writer())
    buf.close()
    put((METRICS, RUN_A, 1, 1.0, {"loss": 1.0}))
    assert len(slow) == 1


@needs_c
def test_fast_put_calls_put_crowded_with_busy_set_and_recovers_from_its_error() -> None:
    writer = _Writer()
    seen: list[Any] = []

    def crowded(record: Any) -> None:
        seen.append(cells["busy"].cell_contents)
        raise RuntimeError("full")

    put, cells, _ = _fast(print, writer)
    writer._queue.extend([0, 1, 2])  # at the threshold (3)
    put = _speedups.FastPut(print, writer._queue, 3, crowded, METRICS, journal.MAGIC, **cells, deferred=set())
    with pytest.raises(RuntimeError, match="full"):
        put((METRICS, RUN_A, 1, 1.0, {"loss": 1.0}))
    assert seen == [True]
    assert cells["busy"].cell_contents is False
    assert cells["pos"].cell_contents == 96  # journaled before the queue refused it, as the Python put does


@needs_c
def test_fast_put_takes_one_argument() -> None:
    put, _, _ = _fast(print, _Writer())
    with pytest.raises(TypeError):
        put()
    with pytest.raises(TypeError):
        put(1, 2)
    _, cells, _ = _fast(print, _Writer())
    with pytest.raises(TypeError, match="cell"):
        _speedups.FastPut(print, deque(), 3, print, METRICS, 1, **{**cells, "busy": 1}, deferred=set())


# -- ActiveRun.log_metrics: C and pure Python ---------------------------------------------------------------------


def _run() -> tuple[runs.ActiveRun, list[Any]]:
    run = runs.ActiveRun.__new__(runs.ActiveRun)
    queued: list[Any] = []
    run.id, run._step, run._writer = RUN_A, 0, types.SimpleNamespace(put=queued.append)
    return run, queued


def _comparable(record: tuple[Any, ...]) -> tuple[Any, ...]:
    tag, rid, step, ts, values = record
    assert type(ts) is float and abs(ts - runs._now()) < 60
    out = {}
    for key, value in values.items():
        if type(value).__name__ == "Tensor":
            value = ("tensor", value.item(), value.requires_grad)
        out[key] = value
    return tag, rid, step, _norm(out)


@needs_c
def test_log_metrics_in_c_queues_what_the_python_one_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "_log_plain", _speedups.log_plain)  # also under AUTOLOG_PURE_PYTHON=1
    calls: list[tuple[Any, Any]] = [
        ({"loss": 0.5}, 3),
        ({"loss": 1, "acc": 2.5}, None),
        ({"loss": 1, "acc": 2.5}, None),
        ({3: 1.0, "nan": float("nan")}, 4),
        (types.MappingProxyType({"loss": 0.5}), 5),
        ([("loss", 0.5)], 6),
        ({"b": True}, 7),
        ({"big": 10**400}, 8),
        ({}, 9),
        ({f"k{j}": float(j) for j in range(30)}, 10),
    ]
    calls += [({"odd": value, "loss": 0.5}, 11) for value in _odd_values() if not isinstance(value, float)]
    try:
        import torch
    except ImportError:
        pass
    else:
        calls.append(({"t": (torch.ones(2, requires_grad=True) * 3).sum(), "loss": 0.5}, 12))
    results = []
    for log in (runs._log_metrics_py, runs._log_metrics_c):
        run, queued = _run()
        for metrics, step in calls:
            log(run, metrics, step)
        results.append((queued, run._step))
    (pure, pure_step), (fast, fast_step) = results
    assert [_comparable(r) for r in fast] == [_comparable(r) for r in pure] and fast_step == pure_step == 2
    for record, (metrics, _) in zip(fast, calls, strict=True):
        assert record[4] is not metrics  # a copy: the caller may change its dict afterwards
        assert all(getattr(v, "requires_grad", False) is False for v in record[4].values())


@needs_c
def test_log_plain_does_nothing_unless_every_value_is_a_plain_number() -> None:
    queued: list[Any] = []
    assert _speedups.log_plain(queued.append, METRICS, RUN_A, 1, {"loss": True}) is False
    assert _speedups.log_plain(queued.append, METRICS, RUN_A, 1, types.MappingProxyType({"a": 1.0})) is False
    assert queued == []
    metrics = {"loss": 0.5, "n": 3}
    assert _speedups.log_plain(queued.append, METRICS, RUN_A, 1, metrics) is True
    ((tag, rid, step, ts, values),) = queued
    assert (tag, rid, step, values) == (METRICS, RUN_A, 1, metrics) and values is not metrics
    assert type(ts) is float

    def refuse(record: Any) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        _speedups.log_plain(refuse, METRICS, RUN_A, 1, metrics)
