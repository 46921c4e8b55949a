"""An error planted in turn in every firewall site of every integration (patched entry points and callbacks):
training completes with the same result as bare, and each site warns exactly once.

The sites are not listed by hand: a first run of each integration's workload records every site the firewall is
asked about (``_errors.inject_faults`` is replaced by a recorder), and every site the integration registered must be
among them, so a new entry point or callback cannot be missed. An integration whose module is not on this branch
yet is skipped with that reason; a test-only toy integration proves the mechanism meanwhile.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autolog
from autolog import _errors, integrations, runs, session
from autolog.backends import memory

sys.path.insert(0, str(Path(__file__).parent))
import workloads

TOY = ("toy_integration:ToyIntegration", ("toy_framework",))


class Recorder(set):  # type: ignore[type-arg]
    """Stands in for ``_errors.inject_faults``: records each site the firewall checks, plants nothing."""

    def __init__(self) -> None:
        super().__init__({"<recording>"})
        self.seen: list[str] = []

    def __contains__(self, site: object) -> bool:
        self.seen.append(str(site))
        return False


def _reset() -> None:
    session.set_enabled(False)
    integrations.uninstall()
    session.reset_for_tests()
    runs.after_fork_in_child()
    memory.reset()
    _errors.reset_for_tests()


def _skip_reason(name: str) -> str | None:
    target, modules = integrations.table()[name]
    module = target.partition(":")[0]
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    if found is None:
        return f"the {name} integration ({module}) is not on this branch yet"
    if all(importlib.util.find_spec(m.partition(".")[0]) is None for m in modules):
        return f"{name} is not installed"
    return None


def _run(name: str, faults: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, list[str]]:
    _reset()
    monkeypatch.setattr(_errors, "inject_faults", faults)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autolog.enable(backend=f"memory:{name}", sync=True)
        result = workloads.WORKLOADS[name]()
        runs.end_open_runs("FINISHED")  # what exit does: plain loops end their run here
        autolog.disable()
    monkeypatch.setattr(_errors, "inject_faults", set())
    return result, [str(w.message) for w in caught]


def _bare(name: str) -> np.ndarray:
    _reset()
    return workloads.WORKLOADS[name]()


@pytest.fixture
def with_toy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(integrations.BUILTIN, "toy", TOY)


def test_every_integration_has_a_workload() -> None:
    assert set(integrations.table()) <= set(workloads.WORKLOADS)


@pytest.mark.parametrize("name", [*integrations.BUILTIN, "toy"])
def test_a_fault_at_every_site_leaves_training_unchanged(
    name: str, monkeypatch: pytest.MonkeyPatch, with_toy: None
) -> None:
    reason = _skip_reason(name)
    if reason:
        pytest.skip(reason)
    bare = _bare(name)
    recorder = Recorder()
    # only the sites registered by this run: sklearn patches a class when it is first instantiated, so earlier
    # tests in this process (every estimator's fit) leave sites this workload never creates
    monkeypatch.setattr(_errors, "sites", set())
    logged, _ = _run(name, recorder, monkeypatch)
    np.testing.assert_allclose(logged, bare, rtol=1e-6)
    sites = sorted({s for s in recorder.seen if s.startswith(f"{name}:") and not s.endswith(":disable")})
    assert sites, f"the {name} workload reached no firewall site: is the integration patching anything?"
    registered = {s for s in _errors.sites if s.startswith(f"{name}:")}
    assert registered <= set(sites), f"sites never reached by the {name} workload: {sorted(registered - set(sites))}"
    monkeypatch.setenv("AUTOLOG_TESTING", "0")
    for site in sites:
        result, messages = _run(name, {site}, monkeypatch)
        np.testing.assert_allclose(result, bare, rtol=1e-6, err_msg=f"fault at {site} changed training")
        planted = [m for m in messages if f"internal error at {site}" in m]
        assert len(planted) == 1, (site, messages)
        assert _errors.errors[site] >= 1


def test_the_toy_integration_logs_when_no_fault_is_planted(with_toy: None) -> None:
    """The mechanism's control: without a fault the toy integration really logs (so the faults above bite)."""
    autolog.enable(backend="memory:toy", sync=True)
    workloads.toy()
    [run] = autolog.search_runs()
    assert run.params == {"epochs": "5"}
    assert [s for s, _, _ in autolog.get_metric_history(run.id, "loss")] == [0, 1, 2, 3, 4]
    assert run.status == "FINISHED"
