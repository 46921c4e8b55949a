"""Input hygiene, applied on the writer thread: metric values to floats, keys a backend accepts, params to text.

Every conversion that changes what the user gave is warned (naming the key); every value refused is warned and
counted as a drop. Nothing here raises into training.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from autolog import _errors

# Exact types that need no conversion; bool is numeric (0/1) on purpose.
_FLOAT_TYPES = (float, int, bool)


def to_float(key: str, value: Any) -> float | None:
    """A metric value as a float, or None when it is not a number (the caller counts the drop).

    Accepts Python numbers, numpy scalars and 0-d / 1-element arrays and tensors (read here, on the writer thread).
    NaN and inf are kept as such.
    """
    try:
        if type(value) in _FLOAT_TYPES:
            return float(value)  # an int past 1e308 raises OverflowError: refused below like any non-number
        if value is None or isinstance(value, (str, bytes, dict, list, tuple)):
            raise TypeError(type(value).__name__)
        item = getattr(value, "item", None)  # numpy scalars and arrays, torch tensors (detached by the logger)
        if callable(item):
            return float(item())
        to_numpy = getattr(value, "numpy", None)  # TensorFlow eager tensors
        if callable(to_numpy):
            return float(to_numpy())
        return float(value)
    except Exception:  # noqa: BLE001 - anything that is not one number is refused, with a warning
        _errors.warn(
            f"autolog: metric {key!r} has a value that is not a number: {_short_repr(value)} "
            f"(type {type(value).__name__}); not logged",
            once_key=f"nonnumeric:{key}:{type(value).__name__}",
        )
        return None


def tensor_type() -> type | None:
    """``torch.Tensor`` when torch is imported (never imported here), else None."""
    torch = sys.modules.get("torch")
    kind = getattr(torch, "Tensor", None)
    return kind if isinstance(kind, type) else None


def tensors_to_floats(tensors: list[Any]) -> list[float | None]:
    """Read one-element real tensors together: ``torch.stack(...).tolist()`` per device and dtype, one transfer and
    one sync for a whole batch of GPU values instead of one ``.item()`` each, one release of the GIL instead of one
    per value. None where a tensor is not one real number (``to_float`` then warns), or for every value when the
    stacked read fails."""
    out: list[float | None] = [None] * len(tensors)
    torch = sys.modules.get("torch")
    if torch is None:
        return out
    groups: dict[Any, list[int]] = {}
    try:
        dtype = tensors[0].dtype
        if not dtype.is_complex and all(t.dtype is dtype for t in tensors):
            # The common case (one loss a step): tensors of one dtype, stacked as they are. ``dtype`` is a cached
            # object where ``device`` is built anew at each access; ``stack`` itself refuses mixed devices and
            # shapes, and a result of one dimension means every tensor was 0-d (no promotion: one dtype).
            with torch.no_grad():
                try:
                    stacked = torch.stack(tensors)
                except Exception:  # noqa: BLE001 - devices or shapes differ: grouped below
                    stacked = None
            if stacked is not None and stacked.dim() == 1 and stacked.layout == torch.strided:
                values = stacked.tolist()
                return values if dtype.is_floating_point else [float(v) for v in values]
        for i, t in enumerate(tensors):
            if t.numel() == 1 and not t.is_complex() and t.layout == torch.strided:
                groups.setdefault((t.device, t.dtype), []).append(i)  # no promotion: int64 stays exact
        with torch.no_grad():
            for indexes in groups.values():
                scalars = [t if t.dim() == 0 else t.reshape(()) for t in (tensors[i] for i in indexes)]
                for i, value in zip(indexes, torch.stack(scalars).tolist(), strict=True):
                    out[i] = float(value)  # as ``float(t.item())``: float32 widened exactly, ints and bools
    except Exception:  # noqa: BLE001 - an odd tensor (meta device, a subclass): read one at a time instead
        return [None] * len(tensors)
    return out


def _short_repr(value: Any, limit: int = 80) -> str:
    text = safe_repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def safe_repr(value: Any) -> str:
    """``str(value)`` for params, never raising (a broken ``__repr__``/``__str__`` gives a placeholder)."""
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:  # noqa: BLE001
        try:
            return repr(value)
        except Exception:  # noqa: BLE001
            return f"<unrepresentable {type(value).__module__}.{type(value).__qualname__}>"


def key_text(key: Any) -> str:
    """Metric/param keys must be strings: anything else is converted, with a warning naming both."""
    if type(key) is str:
        return key
    text = safe_repr(key)
    _errors.warn(f"autolog: key {key!r} is not a string; logged as {text!r}", once_key=f"keytype:{text}")
    return text


def path_key(key: str) -> str:
    """A key for a store that reads keys as "/" paths (MLflow): no empty, "." or ".." segment, never empty, and not
    starting with ".." (MLflow refuses "..0" too)."""
    if "/" in key or key in (".", ".."):
        key = "/".join(p for p in key.split("/") if p not in ("", ".", ".."))
    return "__" + key[2:] if key.startswith("..") else key or "_"


class KeySanitizer:
    """Rewrites keys a backend would refuse; warns once per key with the old and the final name."""

    def __init__(self, forbidden: str | None, max_length: int | None, paths: bool = False, *, kinds: bool = True):
        self._pattern = re.compile(forbidden) if forbidden else None
        self._max = max_length
        self._paths = paths
        self._cache: dict[str, str] = {}
        self._taken: dict[str, str] = {}  # name sent -> the key it stands for: two keys never share one
        if kinds:  # metrics (this one), params and tags are separate name spaces in every store
            self.params = KeySanitizer(forbidden, max_length, paths, kinds=False)
            self.tags = KeySanitizer(forbidden, max_length, paths, kinds=False)

    def __call__(self, key: str) -> str:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        new = self._clean(key)
        owner = self._taken.get(new)
        if owner is not None and owner != key:  # 'a!' and 'a?' both clean to 'a_': the second gets 'a__2'
            first = new
            for n in range(2, 1_000_000):
                suffix = f"_{n}"
                new = self._clean(key[: self._max - len(suffix)] if self._max else key) + suffix
                if new not in self._taken:
                    break
            _errors.warn(
                f"autolog: key {key!r} would be logged as {first!r}, which {owner!r} already is; logged as {new!r}"
            )
        elif new != key:
            _errors.warn(f"autolog: key {key!r} is not accepted by the backend; logged as {new!r}")
        self._taken[new] = key
        self._cache[key] = new
        return new

    def _clean(self, key: str) -> str:
        new = key
        if self._pattern is not None:
            new = self._pattern.sub("_", new)
        if self._max is not None and len(new) > self._max:
            new = new[: self._max]
        if self._paths:  # after the cut: a cut can end a key with "/"; dropping segments only shortens it
            new = path_key(new)
        return new or "_"
