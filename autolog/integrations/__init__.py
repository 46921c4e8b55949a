"""Integrations: a built-in table of import strings, plus the entry-point group ``autolog.integrations``.

Nothing here imports a framework. ``install(options)`` registers a post-import hook (wrapt) for each framework
module; the hook fires at once if the framework is already imported, or when the user imports it. The hook loads
our integration module and calls ``enable``. An entry point's value is "module:Class" of an ``Integration``.
"""

from __future__ import annotations

import importlib
import sys
import threading
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import ClassVar

import wrapt

from autolog import _errors, backends, session
from autolog.options import Options
from autolog.patching import registry

# integration name -> (our module:class, framework modules whose import triggers it)
BUILTIN: dict[str, tuple[str, tuple[str, ...]]] = {
    "sklearn": ("autolog.integrations.sklearn:SklearnIntegration", ("sklearn",)),
    "xgboost": ("autolog.integrations.xgboost:XGBoostIntegration", ("xgboost",)),
    "lightgbm": ("autolog.integrations.lightgbm:LightGBMIntegration", ("lightgbm",)),
    "torch": ("autolog.integrations.torch:TorchIntegration", ("torch",)),
    "lightning": ("autolog.integrations.lightning:LightningIntegration", ("lightning.pytorch", "pytorch_lightning")),
    "keras": ("autolog.integrations.keras:KerasIntegration", ("keras", "tensorflow")),
}

_versions: dict[str, str | None] = {}  # distribution -> its version (None: not installed as a distribution)


class Integration:
    """One framework. Subclasses set the class attributes and implement ``patch`` (and ``unpatch`` if needed).

    ``enable`` / ``disable`` are idempotent and never raise (errors go through the firewall).
    """

    name: ClassVar[str] = ""
    modules: ClassVar[tuple[str, ...]] = ()  # framework modules whose import triggers ``patch``
    distribution: ClassVar[str] = ""  # the PyPI distribution, for the version check
    min_version: ClassVar[str] = "0"
    max_version: ClassVar[str | None] = None  # exclusive upper bound, None: no bound

    def patch(self, module_name: str) -> None:
        """Install patches (through ``autolog.patching.registry``) once ``module_name`` has been imported."""
        raise NotImplementedError

    def unpatch(self) -> None:
        registry.revert(self.name)

    @classmethod
    def framework_version(cls) -> str | None:
        """The installed distribution's version, read once per process: ``importlib.metadata`` scans ``sys.path``
        (~0.5 ms), and every training call tags its run with it."""
        if cls.distribution not in _versions:
            try:
                _versions[cls.distribution] = version(cls.distribution)
            except PackageNotFoundError:
                _versions[cls.distribution] = None
        return _versions[cls.distribution]

    @classmethod
    def supported(cls) -> bool:
        found = cls.framework_version()
        if found is None:
            return True  # not installed as a distribution (vendored, source tree): try it
        low = _version_tuple(found) >= _version_tuple(cls.min_version)
        high = cls.max_version is None or _version_tuple(found) < _version_tuple(cls.max_version)
        return low and high


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+", maxsplit=1)[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


_lock = threading.RLock()
_instances: dict[str, Integration] = {}
_hooked: set[str] = set()  # framework modules with a post-import hook (wrapt cannot unregister one)
_active: set[tuple[str, str]] = set()  # (integration, module) patched now


def table() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The built-in integrations plus those registered through entry points (a plugin may replace a built-in)."""
    found = dict(BUILTIN)
    found.update(_plugins())
    return found


_plugin_cache: tuple[tuple[str, ...], dict[str, tuple[str, tuple[str, ...]]]] | None = None


def _plugins() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Entry-point integrations, scanned once per ``sys.path`` (the scan costs tens of ms; ``enable()`` calls it)."""
    global _plugin_cache
    key = tuple(sys.path)
    if _plugin_cache is not None and _plugin_cache[0] == key:
        return _plugin_cache[1]
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for ep in entry_points(group="autolog.integrations"):
        try:
            cls = ep.load()  # a plugin's integration class; it must not import its framework at module level
            found[ep.name] = (ep.value, tuple(cls.modules) or (ep.name,))
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
            _errors.warn(f"autolog: integration plugin {ep.name!r} could not be loaded: {exc!r}", once_key=ep.name)
    _plugin_cache = (key, found)
    return found


def _instance(name: str, target: str) -> Integration:
    if name not in _instances:
        module, _, cls = target.partition(":")
        _instances[name] = getattr(importlib.import_module(module), cls)()
    return _instances[name]


def install(options: Options) -> None:
    """Register post-import hooks for every integration not disabled; patch those already imported."""
    with _lock:
        for name, (target, modules) in table().items():
            if options.disabled(name):
                _disable_one(name)
                continue
            for module in modules:
                if module not in _hooked:
                    _hooked.add(module)
                    wrapt.register_post_import_hook(_on_import(name, target, module), module)
                elif (name, module) not in _active and _imported(module):
                    _on_import(name, target, module)(None)


def _imported(module: str) -> bool:
    return module in sys.modules


def _on_import(name: str, target: str, module_name: str):  # type: ignore[no-untyped-def]
    def fire(_module: object) -> None:
        with _lock:
            if not session.enabled() or session.options().disabled(name) or (name, module_name) in _active:
                return
            _errors.firewall(f"{name}:enable", _enable_one, name, target, module_name)

    return fire


def _enable_one(name: str, target: str, module_name: str) -> None:
    try:
        integration = _instance(name, target)
    except ModuleNotFoundError as exc:
        if exc.name != target.partition(":")[0]:
            raise
        return  # this build has no integration for it

    if not integration.supported():
        _errors.warn(
            f"autolog: {integration.distribution} {integration.framework_version()} is outside the supported range "
            f">={integration.min_version}"
            + (f",<{integration.max_version}" if integration.max_version else "")
            + f"; the {name} integration is off",
            once_key=f"version:{name}",
        )
        return
    integration.patch(module_name)
    _active.add((name, module_name))
    # A framework is here, so a training may follow: the store's modules now, not on the writer in its first second
    _errors.firewall("backend:preload", backends.preload, session.options().backend)


def _disable_one(name: str) -> None:
    if name in _instances:
        _errors.firewall(f"{name}:disable", _instances[name].unpatch)
    _active.difference_update({a for a in _active if a[0] == name})


def uninstall() -> None:
    """Revert every integration's patches (the hooks stay registered but do nothing while disabled)."""
    with _lock:
        for name in list(_instances):
            _disable_one(name)
        registry.revert()
        _active.clear()


def active() -> list[str]:
    return sorted({name for name, _ in _active})
