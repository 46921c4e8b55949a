"""Models in MLflow's model format, for the MLflow backend.

A ``ModelArtifact`` whose ``obj`` the framework's MLflow flavour can save (sklearn, xgboost, lightgbm, pytorch
``nn.Module``, keras) is saved with that flavour; anything else (a state dict, bytes) is saved the autolog way and
wrapped in a small ``pyfunc`` model that loads it with autolog's loader. Either way ``runs:/<id>/model`` is an MLflow
model that ``mlflow.pyfunc.load_model`` loads, and ``autolog-model.json`` beside ``MLmodel`` lets
``autolog.load_model`` load the native object. ``register_model`` (option or model metadata) adds a registry version.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autolog import _errors
from autolog.models import META_FILE, load_from_dir
from autolog.records import ModelArtifact

if TYPE_CHECKING:
    from autolog.backends.mlflow import MlflowBackend

# autolog flavour -> (MLflow flavour module, the check that obj is what that flavour saves)
FLAVORS: dict[str, str] = {
    "sklearn": "mlflow.sklearn",
    "xgboost": "mlflow.xgboost",
    "lightgbm": "mlflow.lightgbm",
    "pytorch": "mlflow.pytorch",
    "torch": "mlflow.pytorch",
    "keras": "mlflow.keras",
    "tensorflow": "mlflow.keras",
}
LOADER = "autolog.backends._mlflow_models:load_native"
WRAPPED = "autolog_model"  # the pyfunc artifact holding a model saved the autolog way


def _native_ok(flavor: str, obj: Any) -> bool:
    if obj is None:
        return False
    if flavor in ("pytorch", "torch"):
        import torch

        return isinstance(obj, torch.nn.Module)
    if flavor in ("keras", "tensorflow"):
        return hasattr(obj, "predict") and hasattr(obj, "save")
    return True


def save(art: ModelArtifact, target: Path) -> str:
    """Save ``art`` as an MLflow model in ``target`` (must not exist). Returns the MLflow flavour module used.

    ``art.obj`` is the integration's snapshot (serialised bytes, a state dict...), not always the live model: the
    model is written the autolog way first and loaded back with its own loader, which gives the framework object
    that MLflow's flavour saves. The framework's flavour when it can save that object; otherwise (or when it
    fails) a pyfunc model wrapping autolog's format."""
    raw = target.parent / WRAPPED  # MLflow copies it to artifacts/<its name> when wrapped
    shutil.rmtree(raw, ignore_errors=True)
    art.write(raw)
    module_name = FLAVORS.get(art.flavor)
    obj = _native(art, raw) if module_name is not None else None
    if module_name is not None and _native_ok(art.flavor, obj):
        try:
            _save_native(art, obj, target, module_name)
        except Exception as exc:  # noqa: BLE001 - fall back to the wrapper below, with a warning
            _errors.warn(
                f"autolog: {module_name}.save_model failed for a {art.flavor} model ({exc!r}); "
                "it is logged as a pyfunc model wrapping autolog's own format instead",
                once_key=f"mlflow-native:{art.flavor}:{type(exc).__name__}",
            )
            shutil.rmtree(target, ignore_errors=True)
        else:
            _write_meta(art, target, module_name)
            return module_name
    import mlflow.pyfunc

    mlflow.pyfunc.save_model(
        str(target), python_model=_pyfunc_class()(), artifacts={WRAPPED: str(raw)}, pip_requirements=["mlflow"]
    )
    _write_meta(art, target, "mlflow.pyfunc")
    return "mlflow.pyfunc"


def _native(art: ModelArtifact, raw: Path) -> Any:
    """The framework object: the integration's snapshot loaded back through autolog's own loader."""
    if art.loader:
        try:
            return load_from_dir(raw)
        except Exception as exc:  # noqa: BLE001 - the pyfunc wrapper still works
            _errors.warn(
                f"autolog: a {art.flavor} model could not be loaded back for MLflow's flavour ({exc!r}); "
                "it is logged as a pyfunc model wrapping autolog's own format",
                once_key=f"mlflow-native-load:{art.flavor}",
            )
    return art.obj


def _save_native(art: ModelArtifact, obj: Any, target: Path, module_name: str) -> None:
    module = importlib.import_module(module_name)
    # explicit requirements: MLflow's inference re-imports the model in a subprocess (seconds per model)
    extra: dict[str, Any] = {}
    requirements = module.get_default_pip_requirements()
    if module_name == "mlflow.pytorch":  # MLflow 3 defaults to 'pt2', which needs an input example
        extra["serialization_format"] = "pickle"
    if module_name == "mlflow.sklearn":  # skops (the default) refuses trees unless each type is trusted
        extra["serialization_format"] = "cloudpickle"
        requirements = module.get_default_pip_requirements(include_cloudpickle=True)
    module.save_model(obj, str(target), pip_requirements=requirements, **extra)


def _write_meta(art: ModelArtifact, target: Path, module_name: str) -> None:
    meta = {**art.metadata, "flavor": art.flavor, "loader": LOADER, "mlflow_flavor": module_name}
    (target / META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")


def log_model(backend: MlflowBackend, run_id: str, art: ModelArtifact, tmp: Path) -> bool:
    """Log ``art`` into MLflow run ``run_id`` at ``art.path``; register it when asked. False: not a model we save."""
    target = tmp / "mlflow-model"
    try:
        save(art, target)
    except Exception as exc:  # noqa: BLE001 - a model MLflow cannot save is kept the autolog way, not lost
        _errors.warn(
            f"autolog: MLflow could not save the {art.flavor} model of run {run_id} in its format ({exc!r}); "
            f"stored as plain files at {art.path}/ instead",
            once_key=f"mlflow-model:{art.flavor}:{type(exc).__name__}",
        )
        return False
    backend.upload_dir(run_id, target, art.path)
    name = art.metadata.get("register_model") or _option_register_model()
    if name:
        register(backend, run_id, art.path, str(name))
    return True


def _option_register_model() -> str | None:
    from autolog import session

    return session.options().register_model


def register(backend: MlflowBackend, run_id: str, path: str, name: str) -> None:
    from mlflow.exceptions import MlflowException

    client = backend.client
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    source = f"{client.get_run(run_id).info.artifact_uri}/{path}"
    if any(v.run_id == run_id and v.source == source for v in client.search_model_versions(f"name = '{name}'")):
        return  # a retried write: registered already
    client.create_model_version(name, source=source, run_id=run_id)


def load_native(directory: Path) -> Any:
    """``autolog.load_model`` on an MLflow model logged by this backend: the framework's own object."""
    meta = json.loads((Path(directory) / META_FILE).read_text(encoding="utf-8"))
    module_name = meta.get("mlflow_flavor", "mlflow.pyfunc")
    if module_name == "mlflow.pyfunc":
        return load_from_dir(Path(directory) / "artifacts" / WRAPPED)
    return importlib.import_module(module_name).load_model(str(directory))


_PYFUNC: type | None = None


def _pyfunc_class() -> type:
    """The pyfunc wrapper class, defined on first use.

    MLflow's ``PythonModel.__init_subclass__`` warns ("Add type hints to the `predict` method ...") whenever a
    subclass without type hints is defined; defined at import, it warned in every process that logged any model to
    MLflow, wrapped or not. Type hints are not the way out: MLflow reads them as a schema and converts the input. The
    class is kept as the module attribute ``AutologPyfunc`` (see ``__getattr__``) so that a saved model, pickled by
    reference, loads in a fresh process."""
    global _PYFUNC
    if _PYFUNC is None:
        import mlflow.pyfunc

        class AutologPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
            """A pyfunc wrapper around a model saved the autolog way: ``predict`` calls the model's ``predict``, or
            calls it (a torch module) on a float tensor."""

            def load_context(self, context: Any) -> None:
                self.model = load_from_dir(Path(context.artifacts[WRAPPED]))

            def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]  # no hints: MLflow reads them as a schema
                data = model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input
                if hasattr(self.model, "predict"):
                    return self.model.predict(data)
                import torch

                with torch.no_grad():
                    return self.model(torch.as_tensor(data, dtype=torch.float32)).numpy()

        AutologPyfunc.__qualname__ = "AutologPyfunc"  # pickled by reference as this module's AutologPyfunc
        _PYFUNC = AutologPyfunc
    return _PYFUNC


def __getattr__(name: str) -> Any:
    """``AutologPyfunc``: the wrapper class, created when first asked for (unpickling a saved model asks)."""
    if name == "AutologPyfunc":
        return _pyfunc_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
