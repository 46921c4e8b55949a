"""Types of the optional C extension (autolog/_speedups.c)."""

from collections import deque
from collections.abc import Callable
from typing import Any

class FastPut:
    """The spool's ``put`` with its common case in C; everything else goes to ``slow``."""

    def __init__(
        self,
        slow: Callable[[tuple[Any, ...]], None],
        queue: deque[Any],
        crowded: int,
        put_crowded: Callable[[tuple[Any, ...]], None],
        tag: str,
        magic: int,
        busy: Any,
        buf: Any,
        pos: Any,
        limit: Any,
        base: Any,
        ids: Any,
        fresh: Any,
        deferred: set[type],
    ) -> None: ...
    def __call__(self, record: tuple[Any, ...], /) -> None: ...
    @property
    def slow(self) -> Callable[[tuple[Any, ...]], None]: ...

def log_plain(put: Callable[[tuple[Any, ...]], None], tag: str, run_id: str, step: Any, metrics: Any, /) -> bool: ...
def class_counts(true_idx: Any, pred_idx: Any, proba: Any, k: int, /) -> tuple[list[int], list[int], list[int]]: ...
def log_loss_sum(proba: Any, column: Any, /) -> float: ...
def rank_sum(proba: Any, c: int, order: Any, column: Any, /) -> tuple[float, int]: ...
