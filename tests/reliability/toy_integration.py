"""A test-only integration for ``toy_framework``, built the way the real ones are: ``training_wrapper`` around the
entry point, a callback copied into the user's list, its body in ``patching.hook``. It proves the fault-injection
test's mechanism on a branch where the real integrations have not landed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autolog import runs
from autolog.integrations import Integration
from autolog.patching import hook, registry, training_wrapper

NAME = "toy"


class _Callback:
    def __init__(self, run: runs.ActiveRun) -> None:
        self.run = run
        self.on_epoch_end = hook(NAME, "toy:Callback.on_epoch_end", self._on_epoch_end)

    def _on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.run.log_metrics(logs, step=epoch)


@dataclass
class _Call:
    run: runs.ActiveRun
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def finish(self, result: Any) -> None:
        self.run.log_metrics({"final_weight": result})
        self.run.end("FINISHED")

    def fail(self, exc: BaseException) -> None:
        self.run.end(runs.status_for(exc))


def _start(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
    run = runs.new_run("toy")
    run.log_params({"epochs": kwargs.get("epochs", 5)})
    callbacks = [*(kwargs.get("callbacks") or []), _Callback(run)]  # a copy: the user's list is never mutated
    return _Call(run, args, {**kwargs, "callbacks": callbacks})


class ToyIntegration(Integration):
    name = NAME
    modules = ("toy_framework",)
    distribution = "autolog-toy-framework"  # not installed: the version check lets it through

    def patch(self, module_name: str) -> None:
        import toy_framework

        registry.patch(NAME, toy_framework.ToyModel, "fit", training_wrapper(NAME, "toy:ToyModel.fit", _start))
