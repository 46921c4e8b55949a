"""The per-process session: the options in force, the one Writer and its Backend, exit and fork handling.

Everything is created lazily: ``enable()`` only records options; the writer and the backend come into being with
the first record (or the first read).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any

from autolog import _errors
from autolog import options as _options
from autolog.backends import open_backend
from autolog.backends.base import Backend
from autolog.records import FAILED, FINISHED
from autolog.writer import Writer

_lock = threading.RLock()
_options_in_force: _options.Options | None = None
_writer: Writer | None = None
_enabled = False
_atexit_registered = False
_uncaught: BaseException | None = None  # set by our excepthook: the script died with this


def options() -> _options.Options:
    global _options_in_force
    if _options_in_force is None:
        _options_in_force = _options.resolve({})
    return _options_in_force


def configure(opts: _options.Options) -> None:
    """Put new options in force. A different backend or writer setting gets a new writer (the old one is flushed)."""
    global _options_in_force, _writer
    with _lock:
        old = _options_in_force
        _options_in_force = opts
        _errors.set_silent(opts.silent)
        if _writer is not None and old is not None and _writer_settings(old) != _writer_settings(opts):
            _writer.stop(opts.shutdown_timeout)
            _writer = None


def _writer_settings(opts: _options.Options) -> tuple[Any, ...]:
    backend = opts.backend if not isinstance(opts.backend, list) else tuple(opts.backend)
    return (
        id(backend) if isinstance(backend, Backend) else backend,
        opts.batch_size,
        opts.flush_interval,
        opts.max_queue,
        opts.queue_full,
        opts.queue_full_timeout,
        opts.max_retries,
        opts.sync,
    )


def set_enabled(value: bool) -> None:
    global _enabled
    _enabled = value


def enabled() -> bool:
    return _enabled


def writer() -> Writer:
    """The process's writer, created on first use."""
    global _writer
    current = _writer
    if current is not None:
        return current
    with _lock:
        if _writer is None:
            opts = options()
            spec = opts.backend
            _writer = Writer(
                lambda: open_backend(spec),
                batch_size=opts.batch_size,
                flush_interval=opts.flush_interval,
                max_queue=opts.max_queue,
                queue_full=opts.queue_full,
                queue_full_timeout=opts.queue_full_timeout,
                max_retries=opts.max_retries,
                sync=opts.sync,
            )
            if opts.spool and not opts.sync:
                from autolog import spool

                spool.install(_writer, opts)
            _register_exit()
        return _writer


def backend() -> Backend:
    return writer().backend


def flush(timeout: float | None = None) -> bool:
    current = _writer
    return True if current is None else current.flush(timeout)


def spooled() -> bool:
    """True when the writer journals every record before sending it (the spool is on, the writer asynchronous)."""
    current = _writer
    return current is not None and current.spool is not None


_reported: dict[str, int] = {}


def end_of_run(current: Writer) -> None:
    """At the end of a run: wait for the store (bounded), and warn once about drops not reported before."""
    timeout = options().shutdown_timeout
    if current.spool is not None and current.spool.outage:  # the store is down: records wait in the spool
        _errors.warn(
            f"autolog: the store is not answering; the run's records wait in the spool at {current.spool.directory} "
            "and are sent when it is back (or by `autolog sync`)",
            once_key="end-of-run-outage",
        )
    elif not current.flush(timeout):
        _errors.warn(
            f"autolog: {current.pending()} records were still waiting for the store {timeout:g}s after the run "
            "ended; they stay queued and are written when it answers",
            once_key="end-of-run-timeout",
        )
    report_drops(current)


def report_drops(current: Writer) -> None:
    """Warn once about records dropped since the last report (the end of a run that does not wait calls this)."""
    dropped = current.dropped()
    if dropped and dropped != _reported:
        new = {k: v - _reported.get(k, 0) for k, v in dropped.items() if v != _reported.get(k, 0)}
        _reported.update(dropped)
        detail = ", ".join(f"{n} {_reason_text(reason)}" for reason, n in sorted(new.items()))
        _errors.warn(f"autolog: {sum(new.values())} records were not stored ({detail}); see the warnings above")


def drop_report() -> str | None:
    """A one-line report of every record dropped so far, by reason; None when nothing was dropped."""
    current = _writer
    dropped = current.dropped() if current is not None else {}
    if not dropped:
        return None
    detail = ", ".join(f"{n} {_reason_text(reason)}" for reason, n in sorted(dropped.items()))
    return f"autolog: {sum(dropped.values())} records were not stored ({detail})"


# -- exit --------------------------------------------------------------------------------------------------------
def _register_exit() -> None:
    global _atexit_registered
    if _atexit_registered:
        return
    _atexit_registered = True
    atexit.register(shutdown)
    previous = sys.excepthook

    def excepthook(tp: Any, value: BaseException, tb: Any) -> None:
        global _uncaught
        _uncaught = value
        previous(tp, value, tb)

    sys.excepthook = excepthook


def shutdown() -> None:
    """At exit: end open runs (FAILED when the script died of an exception), flush within the deadline."""
    from autolog import runs

    current = _writer
    if current is None:
        return
    try:
        runs.end_open_runs(runs.status_for(_uncaught) if _uncaught is not None else FINISHED)
    except Exception as exc:  # noqa: BLE001 - exit must never fail because of us
        print(f"autolog: could not end open runs at exit: {exc!r}", file=sys.stderr)
    timeout = options().shutdown_timeout
    if not current.stop(timeout):
        if current.spool is not None:
            lost = current.memory_lost
            print(
                f"autolog: {current.spool_unsent + lost} records were not written within AUTOLOG_SHUTDOWN_TIMEOUT="
                f"{timeout:g}s (the backend did not answer in time); "
                + (
                    f"{current.spool_unsent} are kept in the spool at {current.spool.directory}: run `autolog sync` "
                    "to send them"
                    if current.spool_unsent
                    else "none of them are in the spool"
                )
                + (f"; {lost} held in memory only (artifacts, tensor values) are lost" if lost else ""),
                file=sys.stderr,
            )
        else:
            print(
                f"autolog: {current.pending()} records were not written within AUTOLOG_SHUTDOWN_TIMEOUT={timeout:g}s "
                "(the backend did not answer in time)",
                file=sys.stderr,
            )
    report = drop_report()
    if report:
        print(report, file=sys.stderr)


def _after_fork_in_child() -> None:
    from autolog import runs

    if _writer is not None:
        _writer.after_fork_in_child()
    runs.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["FAILED", "FINISHED", "backend", "configure", "flush", "options", "shutdown", "writer"]


def reset_for_tests() -> None:
    """Forget options, writer and enabled state (tests only; the writer is stopped first)."""
    global _options_in_force, _writer, _enabled
    with _lock:
        if _writer is not None:
            _writer.stop(1.0)
        _options_in_force = None
        _writer = None
        _enabled = False
        _reported.clear()


def _reason_text(reason: str) -> str:
    """``param_changed in mlflow+file:/my_runs`` -> ``param changed in mlflow+file:/my_runs``: words, not the URI."""
    words, sep, where = reason.partition(" in ")
    return words.replace("_", " ") + sep + where
