"""Property-based: random metric keys and values and params through each backend. Never an exception into training
(test mode is on, so a swallowed error of ours would raise too), every rejection warned and counted, every key the
store cannot take renamed with a warning, everything accepted read back exactly — as the store represents it.

What "exactly" means per store (each mapping is the store's documented one, restated here, not imported):

* memory, SQLite, JSONL: the key as given (a non-string key as its text), the value as a Python float, params as text.
* MLflow (``MLFLOW_LIMITS`` in autolog/backends/mlflow.py): a key keeps alphanumerics and ``_ - . space : /``, every
  other character becomes ``_``; at most 250 characters; read as a "/" path, its empty, ``.`` and ``..`` segments are
  dropped; never empty (``_``). Values: MLflow's SQL stores keep +/-inf as +/-1.7976931348623157e308 (its own
  mapping, ``SqlAlchemyStore._get_metric_value_details``). A param value over 6,000 characters is cut there, with a
  warning, and its full text is the artifact ``params/<key>.txt``.
* TensorBoard (read back with TensorBoard's own ``EventAccumulator``): the key as given; a scalar is a float32, so a
  value reads back rounded to float32 and a finite value beyond float32's range as +/-inf (warned, naming the key).
  Params are the hparams plugin's session-start values: ``True``/``False`` as booleans, text that parses as a number
  (and is not NaN) as that number, anything else as the text.
"""

from __future__ import annotations

import importlib.util
import math
import re
import struct
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
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
    st.text(max_size=40),
    st.text(min_size=1, max_size=4).map(lambda t: t * 150),
    st.integers(-5, 5),
    st.just(""),
    st.text(alphabet="ab/. ", max_size=8),  # path-like keys: "a//b", "/a", ".", "a/../b"
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


def _text(key: Any) -> str:
    return key if isinstance(key, str) else safe_repr(key)


def _mlflow_key(text: str) -> str:
    new = re.sub(r"[^\w.\- :/]", "_", text)[:250]
    new = "/".join(p for p in new.split("/") if p not in ("", ".", ".."))
    return "__" + new[2:] if new.startswith("..") else new or "_"  # MLflow refuses a name starting with ".."


def _mlflow_value(value: float) -> float:
    return math.copysign(sys.float_info.max, value) if math.isinf(value) else value


def _float32(value: float) -> float:
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:  # beyond float32's range: TensorBoard reads it back as inf
        return math.copysign(math.inf, value)


def _same(got: float, expected: float) -> bool:
    return (math.isnan(got) and math.isnan(expected)) or got == expected


def _log(uri: str, metrics: dict[Any, Any], params: dict[str, Any], *, spooled: bool = False) -> tuple[Any, list[str]]:
    """Log one step of ``metrics`` and the ``params`` into a fresh session on ``uri``: (run, warning messages)."""
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
    return run, [str(w.message) for w in caught]


def _check_rejections(metrics: dict[Any, Any], messages: list[str], key_map: Callable[[str], str]) -> None:
    """Every value that is not a number: counted, and warned naming the key (as the store names it); nothing else
    dropped; every key the store renames: warned with the old and the new name."""
    rejected = {k: v for k, v in metrics.items() if _expected(v) is None}
    writer = session.writer()
    assert writer.dropped() == ({"non_numeric": len(rejected)} if rejected else {}), writer.dropped()
    for key in rejected:
        stored = key_map(_text(key))
        assert any(repr(stored) in m and "not a number" in m for m in messages), (key, messages)
    for key in metrics:
        text = _text(key)
        stored = key_map(text)
        if stored != text:
            assert any(repr(text) in m and repr(stored) in m for m in messages), (key, stored, messages)


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
    as_text = [_text(k) for k in metrics]
    assume(len(set(as_text)) == len(as_text))  # 1 and "1" would be one key once stored
    run, messages = _log(uri, metrics, params, spooled=spooled)
    _check_rejections(metrics, messages, lambda text: text)
    backend = session.backend()
    for key, value in metrics.items():
        expected = _expected(value)
        if expected is None:
            continue
        [(step, got, _)] = backend.get_metric_history(run.id, _text(key))
        assert step == 3
        assert _same(got, expected), (key, value, got)
    stored = backend.get_run(run.id).params
    assert stored == {k: safe_repr(v) for k, v in params.items()}
    runs.after_fork_in_child()


# -- MLflow ---------------------------------------------------------------------------------------------------------
def _check_mlflow(metrics: dict[Any, Any], params: dict[str, Any], run: Any, messages: list[str]) -> None:
    _check_rejections(metrics, messages, _mlflow_key)
    backend = session.backend()
    accepted = {_mlflow_key(_text(k)): _expected(v) for k, v in metrics.items() if _expected(v) is not None}
    stored_run = backend.get_run(run.id)
    assert set(stored_run.metrics) == set(accepted)  # nothing missing, nothing under another name
    for key, expected in accepted.items():
        [(step, got, _)] = backend.get_metric_history(run.id, key)
        assert step == 3
        assert _same(got, _mlflow_value(expected)), (key, expected, got)
    want = {_mlflow_key(k): safe_repr(v) for k, v in params.items()}
    assert stored_run.params == {k: text[:6000] for k, text in want.items()}
    for key, text in want.items():
        if len(text) > 6000:  # cut, warned, and kept whole as an artifact
            assert any(repr(key) in m and "truncated" in m for m in messages), (key, messages)
            kept = backend.download_artifact(run.id, f"params/{key}.txt").read_bytes().decode("utf-8")
            assert kept == text  # read as bytes: read_text turns a "\r" into "\n"


def _distinct_for_mlflow(metrics: dict[Any, Any], params: dict[str, Any]) -> bool:
    """Two keys that become one key in MLflow ("a!" and "a?" are both "a_") are not compared here."""
    metric_keys = [_mlflow_key(_text(k)) for k in metrics]
    param_keys = [_mlflow_key(k) for k in params]
    return len(set(metric_keys)) == len(metric_keys) and len(set(param_keys)) == len(param_keys)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metrics=st.dictionaries(keys, values, max_size=6), params=st.dictionaries(st.text(max_size=20), param_values))
@example(metrics={}, params={"": "\r" * 50_000})  # found by hypothesis: the artifact kept "\r" (the test read "\n")
def test_random_metrics_and_params_into_mlflow(tmp_path: Path, metrics: dict[Any, Any], params: dict[str, Any]) -> None:
    pytest.importorskip("mlflow")
    assume(_distinct_for_mlflow(metrics, params))
    # one SQLite tracking store for every example (MLflow creates its tables once), a new run per example
    run, messages = _log(f"mlflow+sqlite:///{tmp_path / 'mlflow.db'}", metrics, params)
    _check_mlflow(metrics, params, run, messages)
    runs.after_fork_in_child()


SERVER_METRICS: dict[Any, Any] = {
    "/lead/slash": 1.0,
    "a//b": 2.0,
    "a/./../c": 3.0,
    "bad key!?": math.inf,
    "é/ü": True,
    "x" * 300: np.float32(0.1),
    7: np.int64(-3),
    "nan": math.nan,
    "minus": -math.inf,
    "none": None,
    "text": "1.5",
    "nested": {"a": 1.0},
    "": 10**400,
}
SERVER_PARAMS: dict[str, Any] = {"huge": "z" * 7000, "broken": BrokenRepr(), "": None, "a//b": 0.1, "p?": "v"}


def test_bad_input_through_a_real_mlflow_server(mlflow_server: Any) -> None:  # tests/_mlflow_server.py
    """One hand-picked example of every kind above, over HTTP into a real ``mlflow server``."""
    assert _distinct_for_mlflow(SERVER_METRICS, SERVER_PARAMS)
    run, messages = _log(f"mlflow+{mlflow_server.url}", SERVER_METRICS, SERVER_PARAMS)
    _check_mlflow(SERVER_METRICS, SERVER_PARAMS, run, messages)
    assert any("'/lead/slash'" in m and "'lead/slash'" in m for m in messages)  # the path rename is warned too


# -- TensorBoard ----------------------------------------------------------------------------------------------------
def _hparam(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    try:
        number = float(text)
    except ValueError:
        return text
    return text if math.isnan(number) else number


def _tensorboard_read(root: Path, run_id: str) -> tuple[dict[str, list[tuple[int, float]]], dict[str, Any]]:
    """(scalars per tag, hparams) of one run, as TensorBoard's own EventAccumulator reads its directory."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    [directory] = root.glob(f"*/*_{run_id[:8]}")
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
    return scalars, hparams


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metrics=st.dictionaries(keys, values, max_size=6), params=st.dictionaries(st.text(max_size=20), param_values))
def test_random_metrics_and_params_into_tensorboard(
    tmp_path: Path, metrics: dict[Any, Any], params: dict[str, Any]
) -> None:
    pytest.importorskip("tensorboard")
    as_text = [_text(k) for k in metrics]
    assume(len(set(as_text)) == len(as_text))
    root = tmp_path / "tb"
    run, messages = _log(f"tensorboard:{root}", metrics, params)
    _check_rejections(metrics, messages, lambda text: text)
    scalars, hparams = _tensorboard_read(root, run.id)
    accepted = {_text(k): _expected(v) for k, v in metrics.items() if _expected(v) is not None}
    assert set(scalars) == set(accepted)
    for key, expected in accepted.items():
        [(step, got)] = scalars[key]
        assert step == 3
        assert _same(got, _float32(expected)), (key, expected, got)
        if math.isinf(got) and not math.isinf(expected):
            assert any(repr(key) in m and "float32" in m for m in messages), (key, messages)
    assert hparams == {k: _hparam(safe_repr(v)) for k, v in params.items()}
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
