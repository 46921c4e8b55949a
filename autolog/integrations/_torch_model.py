"""PyTorch model snapshots shared by the ``torch`` and ``lightning`` integrations.

A logged model is ``state_dict.pt`` (tensors only, loadable with ``weights_only=True``) plus the module's class path
and, when known (Lightning's ``save_hyperparameters``), its init arguments in ``autolog-model.json``. Without init
arguments (plain loops) the whole module is also pickled to ``model.pt`` when it can be. ``autolog.load_model``
rebuilds the module from the class and init arguments, else unpickles ``model.pt``, else tries the class with no
arguments; when all fail it warns and returns the state dict itself.
"""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autolog import _errors
from autolog.models import META_FILE, model_artifact
from autolog.records import ModelArtifact

if TYPE_CHECKING:
    import torch

STATE_FILE = "state_dict.pt"
MODULE_FILE = "model.pt"


def class_path(obj: Any) -> str:
    cls = type(obj)
    # A spawned process (multiprocessing, Lightning's ddp_spawn) runs the user's script as ``__mp_main__``: it is
    # the same script as ``__main__``, the name under which it can be imported again.
    module = "__main__" if cls.__module__ == "__mp_main__" else cls.__module__
    return f"{module}:{cls.__qualname__}"


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def snapshot(module: torch.nn.Module, init_kwargs: dict[str, Any] | None = None) -> ModelArtifact:
    """Copy the module's state dict to the CPU now (the live model may change); the writer saves it."""
    import torch

    state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
    whole = None
    if init_kwargs is None:
        try:
            whole = copy.deepcopy(module).to("cpu")
        except Exception:  # noqa: BLE001 - not every module deep-copies; the state dict is enough
            whole = None
    kwargs = {k: v for k, v in (init_kwargs or {}).items() if _jsonable(v)}
    meta = {
        "class": class_path(module),
        "init_kwargs": kwargs if init_kwargs is not None else None,
        "init_kwargs_dropped": sorted(set(init_kwargs or {}) - set(kwargs)),
        "parameters": sum(p.numel() for p in module.parameters()),
    }

    def save(obj: Any, target: Path) -> None:
        torch.save(obj, target / STATE_FILE)
        if whole is not None:
            try:
                torch.save(whole, target / MODULE_FILE)
            except Exception:  # noqa: BLE001 - unpicklable (a lambda, a local class): the state dict stays
                (target / MODULE_FILE).unlink(missing_ok=True)

    return model_artifact("pytorch", state, save, "autolog.integrations._torch_model:load", meta)


def load(directory: Path) -> Any:
    """The module rebuilt from its class and init arguments, with the logged weights; else the state dict."""
    import torch

    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    state = torch.load(directory / STATE_FILE, weights_only=True, map_location="cpu")
    init_kwargs = meta.get("init_kwargs")
    if init_kwargs is None and (directory / MODULE_FILE).exists():
        try:  # our own pickle of the user's module: it holds their class, as MLflow's pytorch flavor does
            return torch.load(directory / MODULE_FILE, weights_only=False, map_location="cpu")
        except Exception:  # noqa: BLE001 - the class moved or is gone: rebuild from the state dict below
            pass
    module_name, _, qualname = meta["class"].partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
        model = target(**(init_kwargs or {}))
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - rebuilding is best effort; the weights are still returned
        _errors.warn(
            f"autolog: could not rebuild {meta['class']} ({exc!r}); returning its state dict. "
            "Build the module yourself and call load_state_dict on it."
        )
        return state
    return model
