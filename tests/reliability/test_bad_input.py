"""Property-based: random metric keys and values and params through each backend. Never an exception into training
(test mode is on, so a swallowed error of ours would raise too), every rejection warned and counted, everything
accepted read back exactly."""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import autolog
from autolog import _errors, runs, session
from autolog.sanitize import safe_repr


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("broken __repr__")

    __str__ = __repr__


class NotANumber:
    def __float__(self) -> float:
        raise ValueError("no")


keys = st.one_of(
    st.text(max_size=40), st.text(min_size=1, max_size=4).map(lambda t: t * 150), st.integers(-5, 5), st.just("")
)
good_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**60), 2**60),
    st.booleans(),
    st.floats(width=32).map(np.float32),
    st.integers(-1000, 1000).map(np.int64),
)
bad_values = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.dictionaries(st.text(max_size=3), st.floats(), max_size=2),
    st.lists(st.floats(), max_size=2),
    st.just(NotANumber()),
    st.just(10**400),  # an int no float can hold
)
values = st.one_of(good_values, bad_values)
param_values = st.one_of(
    st.text(), st.text(min_size=1, max_size=3).map(lambda t: t * 50_000), st.just(BrokenRepr()), st.floats(), st.none()
)


def _expected(value: Any) -> float | None:
    if value is None or isinstance(value, (str, dict, list, NotANumber)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _backends(tmp: Path) -> list[str]:
    found = ["memory:bad-input", f"sqlite:///{tmp / 'bad.db'}"]
    if importlib.util.find_spec("autolog.backends.jsonl") is not None:
        found.append(f"jsonl:{tmp / 'jsonl'}")
    return found


@pytest.mark.parametrize("kind", ["memory", "sqlite", "sqlite-spooled", "jsonl"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metrics=st.dictionaries(keys, values, max_size=6), params=st.dictionaries(st.text(max_size=20), param_values))
def test_random_metrics_and_params_never_break_training(
    kind: str, tmp_path: Path, metrics: dict[Any, Any], params: dict[str, Any]
) -> None:
    spooled = kind.endswith("-spooled")  # through the async writer and the spool's journal, not the sync writer
    uri = next((u for u in _backends(tmp_path) if u.startswith(kind.split("-", maxsplit=1)[0])), None)
    if uri is None:
        pytest.skip(f"no {kind} backend on this branch yet")
    as_text = [k if isinstance(k, str) else safe_repr(k) for k in metrics]
    assume(len(set(as_text)) == len(as_text))  # 1 and "1" would be one key once stored
    session.set_enabled(False)
    session.reset_for_tests()
    _errors.reset_for_tests()
    autolog.enable(backend=uri, sync=not spooled)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autolog.start_run("bad-input") as run:
            run.log_metrics(metrics, step=3)
            run.log_params(params)
        assert autolog.flush(30)
    messages = [str(w.message) for w in caught]
    rejected = {k: v for k, v in metrics.items() if _expected(v) is None}
    assert session.writer().counters["dropped.non_numeric"] == len(rejected)
    for key in rejected:
        text = key if isinstance(key, str) else safe_repr(key)
        assert any(repr(text) in m and "not a number" in m for m in messages), (key, messages)
    backend = session.backend()
    for key, value in metrics.items():
        expected = _expected(value)
        if expected is None:
            continue
        text = key if isinstance(key, str) else safe_repr(key)
        [(step, got, _)] = backend.get_metric_history(run.id, text)
        assert step == 3
        assert (math.isnan(got) and math.isnan(expected)) or got == expected, (key, value, got)
    stored = backend.get_run(run.id).params
    assert stored == {k: safe_repr(v) for k, v in params.items()}
    runs.after_fork_in_child()


def test_a_tensor_scalar_and_a_broken_repr_param_are_handled(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    autolog.enable(backend=f"sqlite:///{tmp_path / 'runs.db'}", sync=True)
    with autolog.start_run("tensors") as run:
        run.log_metrics({"t": torch.tensor(1.5), "t1": torch.tensor([2.5]), "grad": torch.ones(1, requires_grad=True)})
        run.log_params({"broken": BrokenRepr()})
    backend = session.backend()
    assert [v for _, v, _ in backend.get_metric_history(run.id, "t")] == [1.5]
    assert [v for _, v, _ in backend.get_metric_history(run.id, "t1")] == [2.5]
    assert [v for _, v, _ in backend.get_metric_history(run.id, "grad")] == [1.0]
    assert backend.get_run(run.id).params["broken"].startswith("<unrepresentable ")
