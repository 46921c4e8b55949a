"""Options (kwargs > env > defaults, clear errors) and input hygiene (item 7 of the core issue)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import autolog
from autolog import session
from autolog.backends.memory import MemoryBackend
from autolog.options import resolve


def test_keyword_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve({}).log_every_n_steps == 1
    monkeypatch.setenv("AUTOLOG_LOG_EVERY_N_STEPS", "5")
    assert resolve({}).log_every_n_steps == 5
    assert resolve({"log_every_n_steps": 7}).log_every_n_steps == 7
    monkeypatch.setenv("AUTOLOG_DISABLE", "sklearn, torch")
    assert resolve({}).disable_for == frozenset({"sklearn", "torch"})
    assert resolve({}).disabled("torch") and not resolve({}).disabled("keras")
    monkeypatch.setenv("AUTOLOG_DISABLE", "*")
    assert resolve({}).disabled("keras")


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"log_every_n_steps": 0}, "log_every_n_steps"),
        ({"log_models": "maybe"}, "log_models"),
        ({"queue_full": "explode"}, "block, drop"),
        ({"colour": "blue"}, "colour"),
        ({"shutdown_timeout": "soon"}, "shutdown_timeout"),
    ],
)
def test_invalid_options_raise_a_value_error_naming_them(kwargs: dict, names: str) -> None:
    with pytest.raises(ValueError, match=names):
        autolog.enable(**kwargs)


def test_unknown_backend_scheme_lists_the_known_ones() -> None:
    autolog.enable(backend="nosuch://x")
    with pytest.raises(ValueError, match=r"unknown backend scheme 'nosuch'.*memory.*sqlite"):
        session.backend()


def test_enable_twice_reconfigures_without_patching_twice(memory_store: MemoryBackend) -> None:
    from autolog.patching import registry

    before = len(registry.patches())
    autolog.enable(backend=memory_store, sync=True, experiment="second")
    assert session.options().experiment == "second"
    assert len(registry.patches()) == before


def _logged(backend: MemoryBackend, run_id: str) -> dict[str, list[float]]:
    return {k: [v for _, v, _ in h] for (r, k), h in backend.history.items() if r == run_id}


def test_scalars_of_every_kind_are_converted(memory_store: MemoryBackend) -> None:
    torch = pytest.importorskip("torch")
    with autolog.start_run() as run:
        autolog.log_metrics(
            {
                "py_int": 3,
                "py_bool": True,
                "np_float32": np.float32(0.5),
                "np_int64": np.int64(7),
                "np_0d": np.array(2.5),
                "torch": torch.tensor(1.25, requires_grad=True) * 2,
                "nan": float("nan"),
                "inf": float("inf"),
                "minus_inf": -math.inf,
            },
            step=0,
        )
    got = _logged(memory_store, run.id)
    assert got["py_int"] == [3.0] and got["py_bool"] == [1.0]
    assert got["np_float32"] == [0.5] and got["np_int64"] == [7.0] and got["np_0d"] == [2.5]
    assert got["torch"] == [2.5]
    assert math.isnan(got["nan"][0]) and got["inf"] == [math.inf] and got["minus_inf"] == [-math.inf]


def test_tensor_with_grad_is_detached_on_the_training_thread(memory_store: MemoryBackend) -> None:
    torch = pytest.importorskip("torch")
    session.writer().sync = False  # keep the record queued so we can look at it
    session.writer().put = session.writer()._make_put()
    loss = (torch.ones(2, requires_grad=True) * 3).sum()
    run = autolog.runs.new_run("grad")
    run.log_metrics({"loss": loss}, 0)
    queued = [r for r in session.writer()._queue if r[0] == "m"][-1]
    assert queued[4]["loss"].requires_grad is False


class _EqMeta(type):  # noqa: PLW1641 - a metaclass with __eq__ and no __hash__: its classes are unhashable
    def __eq__(cls, other: object) -> bool:
        return cls is other


class _OfAnUnhashableClass(metaclass=_EqMeta):
    pass


@pytest.mark.parametrize(
    "bad", ["text", None, [1, 2], {"nested": 1}, np.array([1.0, 2.0]), object(), _OfAnUnhashableClass()]
)
def test_non_numeric_values_are_warned_with_their_key_and_counted(memory_store: MemoryBackend, bad: object) -> None:
    with autolog.start_run() as run, pytest.warns(autolog.AutologWarning, match="'weird'"):
        autolog.log_metrics({"weird": bad, "fine": 1.0}, step=0)
    got = _logged(memory_store, run.id)
    assert "weird" not in got and got["fine"] == [1.0]
    assert session.writer().dropped() == {"non_numeric": 1}


def test_non_string_keys_are_converted_with_a_warning(memory_store: MemoryBackend) -> None:
    with autolog.start_run() as run, pytest.warns(autolog.AutologWarning, match=r"key 3 is not a string"):
        autolog.log_metrics({3: 1.0}, step=0)
    assert _logged(memory_store, run.id) == {"3": [1.0]}


class StrictBackend(MemoryBackend):
    """A backend that refuses some characters and long params, as MLflow does."""

    from autolog.backends.base import Limits

    limits = Limits(forbidden_key_chars=r"[^A-Za-z0-9_./ -]", max_key_length=20, max_param_value_length=10)


def test_keys_a_backend_rejects_are_sanitised_with_old_and_new_named() -> None:
    backend = StrictBackend("strict:")
    autolog.enable(backend=backend, sync=True)
    with autolog.start_run() as run, pytest.warns(autolog.AutologWarning, match=r"'val:acc@1'.*'val_acc_1'"):
        autolog.log_metrics({"val:acc@1": 0.5}, step=0)
    assert _logged(backend, run.id) == {"val_acc_1": [0.5]}


class PathKeysBackend(MemoryBackend):
    """A backend that reads keys as "/" paths, as MLflow does."""

    from autolog.backends.base import Limits

    limits = Limits(max_key_length=10, path_keys=True)


def test_path_keys_lose_empty_and_dot_segments_with_old_and_new_named() -> None:
    backend = PathKeysBackend("paths:")
    autolog.enable(backend=backend, sync=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autolog.start_run() as run:
            autolog.log_metrics({"/a//b/./c": 1.0, "..": 2.0, "x/y": 3.0, "abcdefghi/j": 4.0}, step=0)
    messages = [str(w.message) for w in caught]
    # "abcdefghi/j" is cut to 10 characters first ("abcdefghi/"), then its empty last segment goes
    assert _logged(backend, run.id) == {"a/b/c": [1.0], "_": [2.0], "x/y": [3.0], "abcdefghi": [4.0]}
    for old, new in (("/a//b/./c", "a/b/c"), ("..", "_"), ("abcdefghi/j", "abcdefghi")):
        assert any(repr(old) in m and repr(new) in m for m in messages), (old, messages)
    assert not any("'x/y'" in m for m in messages)


def test_keys_that_clean_to_the_same_name_keep_apart_and_both_names_are_warned() -> None:
    """'a!' and 'a?' both clean to 'a_' (and 'a_' is a key of its own): no two keys may share a name in the store,
    or one series (or param) would silently overwrite or mix with the other."""
    backend = StrictBackend("strict:")
    autolog.enable(backend=backend, sync=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autolog.start_run() as run:
            autolog.log_metrics({"a!": 1.0, "a?": 2.0}, step=0)
            autolog.log_metrics({"a_": 3.0, "a!": 4.0}, step=1)
            autolog.log_params({"p!": "x", "p?": "y", "a?": "z"})  # params are a name space of their own
    assert _logged(backend, run.id) == {"a_": [1.0, 4.0], "a__2": [2.0], "a__3": [3.0]}
    assert backend.runs[run.id].params == {"p_": "x", "p__2": "y", "a_": "z"}
    messages = [str(w.message) for w in caught]
    assert any("'a?'" in m and "'a_'" in m and "'a!'" in m and "'a__2'" in m for m in messages), messages
    assert any("'p?'" in m and "'p!'" in m and "'p__2'" in m for m in messages), messages


def test_long_param_values_are_truncated_with_the_full_value_kept_as_an_artifact() -> None:
    backend = StrictBackend("strict:")
    autolog.enable(backend=backend, sync=True)
    long_value = "x" * 50
    with autolog.start_run() as run, pytest.warns(autolog.AutologWarning, match="'layers'"):
        autolog.log_params({"layers": long_value})
    assert backend.runs[run.id].params["layers"] == "x" * 10
    assert backend.download_artifact(run.id, "params/layers.txt").read_text() == long_value


def test_long_param_values_are_kept_whole_where_the_backend_allows(memory_store: MemoryBackend) -> None:
    value = "y" * 100_000
    with autolog.start_run() as run:
        autolog.log_params({"big": value})
    assert memory_store.runs[run.id].params["big"] == value


def test_param_with_a_broken_repr_is_logged_as_a_placeholder(memory_store: MemoryBackend) -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

        __str__ = __repr__

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning escapes, and no exception
        with autolog.start_run() as run:
            autolog.log_params({"obj": Broken()})
    assert memory_store.runs[run.id].params["obj"].startswith("<unrepresentable")


def test_tensor_values_of_a_batch_are_read_together_exactly_and_bad_ones_are_refused(
    memory_store: MemoryBackend,
) -> None:
    """The writer reads a batch's tensors with one stacked read per device and dtype: every value as
    ``float(t.item())`` would give it (int64 past float32's range, float32, bool, one-element 1-d), in logged order;
    a tensor that is not one real number is warned about by key, counted and left out, the rest of its call kept."""
    torch = pytest.importorskip("torch")
    session.writer().sync = False  # queue a whole batch, then build it at once
    session.writer().put = session.writer()._make_put()
    big = 2**40 + 1  # exact in float64, not in float32: a promotion to float32 would round it
    run = autolog.runs.new_run("tensors")
    for s in range(3):
        run.log_metrics({"f32": torch.tensor(0.1), "i64": torch.tensor(big + s), "b": torch.tensor(s % 2 == 0)}, s)
        run.log_metrics({"one": torch.tensor([1.5 + s]), "half": torch.tensor(0.25, dtype=torch.float16)}, s)
        run.log_metrics({"many": torch.ones(3), "cplx": torch.tensor(1 + 2j), "after": torch.tensor(float(s))}, s)
    with pytest.warns(autolog.AutologWarning, match="'many'") as caught:
        session.writer().drain()
    assert any("'cplx'" in str(w.message) for w in caught)
    got = _logged(memory_store, run.id)
    assert got["f32"] == [float(torch.tensor(0.1, dtype=torch.float32).item())] * 3
    assert got["i64"] == [float(big), float(big + 1), float(big + 2)]
    assert got["b"] == [1.0, 0.0, 1.0] and got["half"] == [0.25] * 3
    assert got["one"] == [1.5, 2.5, 3.5] and got["after"] == [0.0, 1.0, 2.0]
    assert "many" not in got and "cplx" not in got
    assert session.writer().dropped() == {"non_numeric": 6}


def test_steps_are_stored_as_64_bit_ints_and_bad_ones_are_refused_by_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A numpy int step reaches the store as an int (sqlite3 would bind it as 8 bytes of blob); an integral float
    is an int; a step that is no integer, or past 64 bits, has its call refused with a warning naming the step and
    the keys, counted, and the rest of the batch stored."""
    autolog.enable(backend=f"sqlite:///{tmp_path / 'runs.db'}", spool=False)
    with autolog.start_run() as run:
        autolog.log_metrics({"a": 1.0}, step=np.int64(3))
        autolog.log_metrics({"a": 2.0}, step=4.0)
        with pytest.warns(autolog.AutologWarning, match=r"step '1180591620717411303424'.*'big'"):
            autolog.log_metrics({"big": 3.0}, step=2**70)
            assert autolog.flush(30)
        with pytest.warns(autolog.AutologWarning, match=r"step 'x'.*'odd'"):
            autolog.log_metrics({"odd": 4.0}, step="x")
            assert autolog.flush(30)
        autolog.log_metrics({"a": 5.0}, step=np.uint8(5))
    history = autolog.get_metric_history(run.id, "a")
    assert [(s, type(s), v) for s, v, _ in history] == [(3, int, 1.0), (4, int, 2.0), (5, int, 5.0)]
    assert autolog.get_metric_history(run.id, "big") == [] and autolog.get_metric_history(run.id, "odd") == []
    assert session.writer().dropped() == {"bad_step": 2}


def test_tensors_are_read_together_exactly_as_item_reads_them() -> None:
    """``sanitize.tensors_to_floats``: the one-kind fast path (one stack) and the grouped path agree with ``.item()``;
    int64 values stay exact (no promotion to float32 beside a float32 loss); what is not one real number is None."""
    torch = pytest.importorskip("torch")
    from autolog import sanitize

    same = [torch.tensor(v, dtype=torch.float32) for v in (0.1, 2.5, -3.75)]
    assert sanitize.tensors_to_floats(same) == [t.item() for t in same]
    big = 2**40 + 1  # exact as a float64, not as a float32
    mixed = [torch.tensor(0.1), torch.tensor(big), torch.tensor([7.5]), torch.tensor(True), torch.zeros(2)]
    mixed.append(torch.tensor(1j))
    got = sanitize.tensors_to_floats(mixed)
    assert got[:4] == [torch.tensor(0.1).item(), float(big), 7.5, 1.0]
    assert got[4:] == [None, None]
    assert sanitize.tensors_to_floats([torch.tensor(big), torch.tensor(3)]) == [float(big), 3.0]
    assert sanitize.tensors_to_floats([torch.tensor(1j), torch.tensor(2j)]) == [None, None]
    # one dtype but not all 0-d (the one-stack path must not take these): each read on its own terms
    assert sanitize.tensors_to_floats([torch.tensor(1.5), torch.tensor([2.5])]) == [1.5, 2.5]
    assert sanitize.tensors_to_floats([torch.tensor([1.5]), torch.tensor([2.5])]) == [1.5, 2.5]
    assert sanitize.tensors_to_floats([torch.zeros(2), torch.ones(2)]) == [None, None]
    bools = [torch.tensor(True), torch.tensor(False)]
    assert sanitize.tensors_to_floats(bools) == [1.0, 0.0]
    assert all(type(v) is float for v in sanitize.tensors_to_floats([*bools, torch.tensor(3)]))
    halves = [torch.tensor(v, dtype=torch.bfloat16) for v in (0.1, 3.3)]
    assert sanitize.tensors_to_floats(halves) == [t.item() for t in halves]
