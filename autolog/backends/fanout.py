"""A list of backends: ``backend=["sqlite:///runs.db", "tensorboard:./tb", "mlflow+http://..."]``.

Every batch goes to every backend. One backend failing does not stop the others: it is retried a few times with
back-off, then its share is counted as dropped under its URI and reported with the run's drop report, and it rests
(is skipped, its share counted the same way) for a while before it is tried again: the writer is one thread, and a
store that is down, or slow to say so, must not hold up the others batch after batch. Only when every backend fails
does the write fail (and the writer retries it as a whole, with nothing duplicated).

The limits are the strictest of all, so a key is the same in every store. Reads go to the first backend that reads.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import fields

from autolog import _errors
from autolog.backends.base import Backend, Limits
from autolog.records import Batch, Run


def combined_limits(limits: list[Limits]) -> Limits:
    values: dict[str, object] = {}
    for f in fields(Limits):
        given = [getattr(lim, f.name) for lim in limits if getattr(lim, f.name) is not None]
        if not given:
            values[f.name] = None
        elif f.name == "forbidden_key_chars":
            values[f.name] = "|".join(f"(?:{g})" for g in dict.fromkeys(given))
        elif f.name == "path_keys":
            values[f.name] = any(given)
        else:
            values[f.name] = min(given)  # type: ignore[type-var]
    return Limits(**values)  # type: ignore[arg-type]


class FanoutBackend(Backend):
    def __init__(
        self,
        backends: list[Backend],
        max_retries: int = 2,
        delay: float = 0.05,
        *,
        retry_within: float = 2.0,
        rest: float = 5.0,
        max_rest: float = 60.0,
    ) -> None:
        if not backends:
            raise ValueError("autolog: a fan-out needs at least one backend")
        self.backends = backends
        self.uri = ",".join(b.uri for b in backends)
        self.limits = combined_limits([b.limits for b in backends])
        self.max_retries = max_retries
        self.delay = delay
        self.retry_within = retry_within  # a store that failed slowly is not retried: the others would wait
        self.rest, self.max_rest = rest, max_rest
        self.failed: Counter[str] = Counter()  # backend uri -> records it did not store
        self._resting: dict[str, tuple[float, float]] = {}  # uri -> (monotonic time it is tried again, rest period)

    def write(self, batch: Batch) -> None:
        """Every backend gets the batch, except one resting after a failure.

        A store that failed is skipped for ``rest`` seconds (doubling up to ``max_rest`` while it keeps failing),
        its share counted as dropped, then tried again once: a store that is down, or slow to say so, costs the
        others one failed write per rest period instead of one per batch (the writer is one thread)."""
        now = time.monotonic()
        resting = {uri for uri, (until, _) in self._resting.items() if until > now}
        if len(resting) >= len(self.backends):
            resting = set()  # nothing else to protect: try every one
        failures: list[tuple[Backend, Exception]] = []
        skipped: list[Backend] = []
        for backend in self.backends:
            if backend.uri in resting:
                skipped.append(backend)
                continue
            exc = self._write_one(backend, batch, 0 if backend.uri in self._resting else self.max_retries)
            if exc is None:
                self._resting.pop(backend.uri, None)
            else:
                failures.append((backend, exc))
                period = min(self._resting.get(backend.uri, (0.0, self.rest / 2))[1] * 2, self.max_rest)
                self._resting[backend.uri] = (time.monotonic() + period, period)
        if failures and len(failures) + len(skipped) == len(self.backends):
            raise failures[0][1]  # stored nowhere: the writer may retry the whole batch, nothing is duplicated
        n = sum(r.size() for r in batch)
        for backend, exc in failures:
            self.failed[backend.uri] += n
            _errors.warn(
                f"autolog: backend {backend.uri} failed ({exc!r}); {n} records counted as dropped there, "
                f"the other backends have them; it is skipped for {self._resting[backend.uri][1]:g}s, then tried again",
                once_key=f"fanout:{backend.uri}:{type(exc).__name__}",
            )
        for backend in skipped:
            self.failed[backend.uri] += n

    def _write_one(self, backend: Backend, batch: Batch, retries: int) -> Exception | None:
        delay = self.delay
        started = time.monotonic()
        for attempt in range(retries + 1):
            try:
                backend.write(batch)
                return None
            except Exception as exc:  # noqa: BLE001 - one store failing must not stop the others
                if attempt == retries or time.monotonic() - started > self.retry_within:
                    return exc
                time.sleep(delay)
                delay *= 2
        return None

    def dropped(self) -> dict[str, int]:
        """Records a store did not keep, under its URI: those it failed to take, and those it refused itself (MLflow's
        ``param_changed``), which were left out of the run's drop report before."""
        out = {f"backend_error in {uri}": n for uri, n in self.failed.items() if n}
        for backend in self.backends:
            for reason, n in backend.dropped().items():
                if n:
                    key = f"{reason} in {backend.uri}"
                    out[key] = out.get(key, 0) + n
        return out

    def close(self) -> None:
        for backend in self.backends:
            backend.close()

    def after_fork(self) -> None:
        for backend in self.backends:
            backend.after_fork()

    # -- read: the first backend that can ---------------------------------------------------------------------
    def _reader(self) -> Backend:
        for backend in self.backends:
            if type(backend).search_runs is not Backend.search_runs:
                return backend
        return self.backends[0]

    def search_runs(self, experiment: str | None = None) -> list[Run]:
        return self._reader().search_runs(experiment)

    def get_run(self, run_id: str) -> Run:
        return self._reader().get_run(run_id)

    def get_metric_history(self, run_id: str, key: str) -> list[tuple[int, float, float]]:
        return self._reader().get_metric_history(run_id, key)

    def list_artifacts(self, run_id: str) -> list[str]:
        return self._reader().list_artifacts(run_id)

    def download_artifact(self, run_id: str, path: str):  # type: ignore[no-untyped-def]
        return self._reader().download_artifact(run_id, path)
