"""Options: keyword arguments > ``AUTOLOG_*`` environment variables > defaults.

Each option is declared once in ``SPECS`` with its environment variable, default and parser, so the README table,
the validation and the parsing cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from autolog import _env

DEFAULT_BACKEND = "sqlite:///autolog-runs/runs.db"
QUEUE_FULL_POLICIES = ("block", "drop")


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"autolog option {name!r}: expected a boolean (true/false/1/0), got {value!r}")


def _number(kind: Callable[[Any], Any], minimum: float, allow_none: bool = False) -> Callable[[str, Any], Any]:
    def parse(name: str, value: Any) -> Any:
        if value is None or (allow_none and str(value).strip().lower() in ("", "none", "all")):
            if allow_none:
                return None
            raise ValueError(f"autolog option {name!r}: a number is required, got None")
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"autolog option {name!r}: expected a number >= {minimum}, got {value!r}") from None
        if isinstance(value, bool) or number < minimum:
            raise ValueError(f"autolog option {name!r}: expected a number >= {minimum}, got {value!r}")
        return number

    return parse


def _choice(*allowed: str) -> Callable[[str, Any], str]:
    def parse(name: str, value: Any) -> str:
        text = str(value).strip().lower()
        if text not in allowed:
            raise ValueError(f"autolog option {name!r}: allowed values are {', '.join(allowed)}; got {value!r}")
        return text

    return parse


def _backend(name: str, value: Any) -> Any:
    if value is None or value == "":
        return DEFAULT_BACKEND
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"autolog option {name!r}: an empty list of backends")
        return list(value)
    if isinstance(value, str) and "," in value and not value.startswith("mlflow+http"):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _names(name: str, value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = value.split(",")
    try:
        return frozenset(str(v).strip() for v in value if str(v).strip())
    except TypeError:
        raise ValueError(
            f"autolog option {name!r}: expected a list of integration names or '*', got {value!r}"
        ) from None


def _tags(name: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError(f"autolog option {name!r}: expected 'key=value,key=value', got {value!r}")
        return {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, Mapping):
        raise ValueError(f"autolog option {name!r}: expected a dict of tags, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def _text(name: str, value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


@dataclass(frozen=True)
class Spec:
    env: str
    default: Any
    parse: Callable[[str, Any], Any]
    doc: str


SPECS: dict[str, Spec] = {
    "backend": Spec(_env.BACKEND, DEFAULT_BACKEND, _backend, "where runs go: a URI, or a list of URIs to fan out"),
    "experiment": Spec(_env.EXPERIMENT, "Default", lambda n, v: str(v), "experiment name for new runs"),
    "log_models": Spec(_env.LOG_MODELS, True, _parse_bool, "log the trained model at the end of training"),
    "log_every_n_steps": Spec(_env.LOG_EVERY_N_STEPS, 1, _number(int, 1), "log per-step metrics every N steps"),
    "exclusive": Spec(_env.EXCLUSIVE, False, _parse_bool, "never log into a run the user started"),
    "silent": Spec(_env.SILENT, False, _parse_bool, "no warnings from autolog (drops are still counted)"),
    "disable_for": Spec(_env.DISABLE, frozenset(), _names, "integrations to leave alone (names, or '*')"),
    "tags": Spec(_env.TAGS, {}, _tags, "tags added to every run"),
    "batch_size": Spec(_env.BATCH_SIZE, 2000, _number(int, 1), "records per write to the backend"),
    "flush_interval": Spec(_env.FLUSH_INTERVAL, 1.0, _number(float, 0.001), "seconds between writes when idle"),
    "max_queue": Spec(_env.MAX_QUEUE, 1_000_000, _number(int, 1), "records held in memory at most"),
    "queue_full": Spec(_env.QUEUE_FULL, "block", _choice(*QUEUE_FULL_POLICIES), "policy when the queue is full"),
    "queue_full_timeout": Spec(
        _env.QUEUE_FULL_TIMEOUT, 5.0, _number(float, 0.0), "with queue_full=block: seconds to wait, then drop"
    ),
    "shutdown_timeout": Spec(_env.SHUTDOWN_TIMEOUT, 10.0, _number(float, 0.0), "seconds exit waits for the writer"),
    "max_retries": Spec(_env.MAX_RETRIES, 5, _number(int, 0), "retries of a failed backend write"),
    "sync": Spec(_env.SYNC, False, _parse_bool, "write on the calling thread (tests, debugging)"),
    "log_checkpoints": Spec(_env.LOG_CHECKPOINTS, False, _parse_bool, "log checkpoint files as artifacts"),
    "training_metrics": Spec(_env.TRAINING_METRICS, True, _parse_bool, "compute training metrics (sklearn)"),
    "post_training_metrics": Spec(
        _env.POST_TRAINING_METRICS, True, _parse_bool, "record sklearn.metrics calls on a logged model's predictions"
    ),
    "max_child_runs": Spec(
        _env.MAX_CHILD_RUNS, None, _number(int, 0, allow_none=True), "child runs per search (None: all)"
    ),
    "register_model": Spec(_env.REGISTER_MODEL, None, _text, "model registry name for logged models"),
    "spool": Spec(_env.SPOOL, True, _parse_bool, "journal records on local disk until the store confirms them"),
    "spool_dir": Spec(_env.SPOOL_DIR, None, _text, "where the spool lives (default: beside the SQLite store)"),
    "spool_max_bytes": Spec(_env.SPOOL_MAX_BYTES, 1 << 30, _number(int, 1 << 16), "disk the spool may use per process"),
}


@dataclass(frozen=True)
class Options:
    backend: Any = DEFAULT_BACKEND
    experiment: str = "Default"
    log_models: bool = True
    log_every_n_steps: int = 1
    exclusive: bool = False
    silent: bool = False
    disable_for: frozenset[str] = field(default_factory=frozenset)
    tags: dict[str, str] = field(default_factory=dict)
    batch_size: int = 2000
    flush_interval: float = 1.0
    max_queue: int = 1_000_000
    queue_full: str = "block"
    queue_full_timeout: float = 5.0
    shutdown_timeout: float = 10.0
    max_retries: int = 5
    sync: bool = False
    log_checkpoints: bool = False
    training_metrics: bool = True
    post_training_metrics: bool = True
    max_child_runs: int | None = None
    register_model: str | None = None
    spool: bool = True
    spool_dir: str | None = None
    spool_max_bytes: int = 1 << 30

    def disabled(self, integration: str) -> bool:
        return "*" in self.disable_for or integration in self.disable_for


assert {f.name for f in fields(Options)} == set(SPECS), "Options and SPECS must list the same options"


def resolve(kwargs: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Options:
    """Build Options from explicit keyword arguments, then the environment, then defaults."""
    environ = os.environ if environ is None else environ
    unknown = sorted(set(kwargs) - set(SPECS))
    if unknown:
        raise ValueError(
            f"autolog: unknown option(s) {', '.join(map(repr, unknown))}; known options: {', '.join(SPECS)}"
        )
    values: dict[str, Any] = {}
    for name, spec in SPECS.items():
        if name in kwargs and kwargs[name] is not None:
            raw = kwargs[name]
        elif spec.env in environ:
            raw = environ[spec.env]
        else:
            values[name] = spec.default
            continue
        values[name] = spec.parse(name, raw)
    return Options(**values)
