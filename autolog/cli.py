"""The ``autolog`` command: see, compare and export what was logged, and run a script with autologging on.

    autolog runs [--experiment NAME] [--limit N]
    autolog show RUN
    autolog metrics RUN KEY [--plot FILE.png]
    autolog compare RUN RUN [RUN...]
    autolog artifacts RUN [PATH] [--to DIR]
    autolog run SCRIPT [ARGS...]
    autolog sync [--backend URI]
    autolog export --from URI --to URI [RUN...]

Every command takes ``--backend URI`` (default: AUTOLOG_BACKEND, else sqlite:///autolog-runs/runs.db). A run can be
named by its id or by a unique prefix of it. Errors are one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import re
import runpy
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from autolog.backends import open_backend
from autolog.backends.base import Backend, RunNotFound
from autolog.options import resolve
from autolog.records import Run
from autolog.tags import set_script


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _backend(args: argparse.Namespace) -> Backend:
    spec = args.backend or resolve({}).backend
    try:
        return open_backend(spec)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _runs(backend: Backend, experiment: str | None = None) -> list[Run]:
    path = getattr(backend, "path", None)  # a file store that does not exist is an error here, not "no runs"
    if isinstance(path, Path) and not path.exists():
        raise CliError(f"no autolog store at {path} (nothing logged there yet? pass --backend URI)")
    try:
        return backend.search_runs(experiment)
    except FileNotFoundError as exc:
        raise CliError(f"{exc} (nothing logged there yet? pass --backend URI)") from None


def _find(backend: Backend, ref: str) -> Run:
    try:
        return backend.get_run(ref)
    except RunNotFound:
        pass
    except FileNotFoundError as exc:
        raise CliError(f"{exc} (nothing logged there yet? pass --backend URI)") from None
    matches = [r for r in _runs(backend) if r.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CliError(f"no run {ref!r} in {backend.uri}")
    raise CliError(f"{ref!r} matches {len(matches)} runs in {backend.uri}: give more of the id")


def _time(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _duration(run: Run) -> str:
    if run.duration is None:
        return "-"
    seconds = run.duration
    return f"{seconds:.2f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _num(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.6g}"


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=False)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in rows]
    return "\n".join(lines)


def runs_table(runs: Sequence[Run], n_metrics: int = 3) -> str:
    rows = []
    for run in runs:
        shown = ", ".join(f"{k}={_num(v)}" for k, v in sorted(run.metrics.items())[:n_metrics])
        if len(run.metrics) > n_metrics:
            shown += f", ... ({len(run.metrics)})"
        rows.append([run.id[:12], run.experiment, run.name, run.status, _time(run.start_time), _duration(run), shown])
    return table(rows, ["id", "experiment", "name", "status", "start", "duration", "metrics (last)"])


# -- commands ------------------------------------------------------------------------------------------------
def cmd_runs(args: argparse.Namespace) -> int:
    runs = _runs(_backend(args), args.experiment)[: args.limit]
    print(runs_table(runs) if runs else "no runs yet")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    backend = _backend(args)
    run = _find(backend, args.run)
    print(f"run        {run.id}")
    for label, value in (
        ("name", run.name),
        ("experiment", run.experiment),
        ("status", run.status),
        ("parent", run.parent_id or "-"),
        ("start", _time(run.start_time)),
        ("end", _time(run.end_time)),
        ("duration", _duration(run)),
    ):
        print(f"{label:<10} {value}")
    for title, items in (("params", run.params), ("tags", run.tags)):
        print(f"\n{title}:")
        for key, value in sorted(items.items()):
            print(f"  {key} = {value}")
    print("\nmetrics (last value, values logged):")
    for key, last in sorted(run.metrics.items()):
        print(f"  {key} = {_num(last)}  ({len(backend.get_metric_history(run.id, key))})")
    try:
        artifacts = backend.list_artifacts(run.id)
    except NotImplementedError:
        artifacts = []
    if artifacts:
        print("\nartifacts:")
        for path in artifacts:
            print(f"  {path}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    if args.plot:
        _check_plot_target(Path(args.plot))  # before any output: a bad path is known without reading the store
    backend = _backend(args)
    run = _find(backend, args.run)
    history = backend.get_metric_history(run.id, args.key)
    if not history:
        known = ", ".join(sorted(run.metrics)) or "none"
        raise CliError(f"run {run.id[:12]} has no metric {args.key!r} (it has: {known})")
    print(table([[str(s), _num(v), _time(t)] for s, v, t in history], ["step", args.key, "time"]))
    if args.plot:
        plot(history, args.key, run, Path(args.plot))
        print(f"plot written to {args.plot}")
    return 0


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError("--plot needs matplotlib: pip install 'autolog-ml[plot]'") from None
    return plt


def _check_plot_target(path: Path) -> None:
    """A folder that does not exist or a format matplotlib cannot write is a one-line error, not its traceback."""
    if not path.parent.is_dir():
        raise CliError(f"--plot {path}: no folder {path.parent} (create it first)")
    plt = _pyplot()
    fig = plt.figure()
    formats = fig.canvas.get_supported_filetypes()
    plt.close(fig)
    suffix = path.suffix[1:].lower()
    if suffix and suffix not in formats:
        raise CliError(f"--plot {path}: matplotlib cannot write .{suffix} files (it can: {', '.join(sorted(formats))})")


def plot(history: list[tuple[int, float, float]], key: str, run: Run, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([s for s, _, _ in history], [v for _, v, _ in history], marker="." if len(history) < 60 else None)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title(f"{key} — {run.name} ({run.id[:8]})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:  # not writable, a folder removed meanwhile
        raise CliError(f"--plot {path}: {exc}") from None
    finally:
        plt.close(fig)


def cmd_compare(args: argparse.Namespace) -> int:
    backend = _backend(args)
    runs = [_find(backend, ref) for ref in args.runs]
    header = ["", *(f"{r.name} ({r.id[:8]})" for r in runs)]
    rows: list[list[str]] = [["status", *(r.status for r in runs)], ["duration", *(_duration(r) for r in runs)]]
    for title, getter in (("param", lambda r: r.params), ("metric", lambda r: r.metrics)):
        keys = sorted({k for r in runs for k in getter(r)})
        for key in keys:
            values = [getter(r).get(key) for r in runs]
            cells = [_num(v) if isinstance(v, float) else ("-" if v is None else str(v)) for v in values]
            mark = "" if len(set(cells)) == 1 else " *"
            rows.append([f"{title} {key}{mark}", *cells])
    print(table(rows, header))
    print("(* differs between runs)")
    return 0


def cmd_artifacts(args: argparse.Namespace) -> int:
    """List a run's artifacts; with PATH, print where that artifact is on disk (the store writes out one it keeps in
    its database); with ``--to DIR``, copy it into DIR and print the copy's path."""
    backend = _backend(args)
    run = _find(backend, args.run)
    try:
        if args.path is None:
            paths = backend.list_artifacts(run.id)
            print("\n".join(paths) if paths else f"run {run.id} has no artifacts")
            return 0
        local = backend.download_artifact(run.id, args.path)
    except (FileNotFoundError, NotImplementedError) as exc:
        raise CliError(str(exc)) from None
    if args.to is not None:
        dest = Path(args.to) / local.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if local.is_dir():
            shutil.copytree(local, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(local, dest)
        local = dest
    print(local)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import autolog

    script = Path(args.script)
    if not script.exists():
        raise CliError(f"no such script: {script}")
    options: dict[str, Any] = {}
    if args.backend:
        options["backend"] = args.backend
    if args.experiment:
        options["experiment"] = args.experiment
    autolog.enable(**options)
    set_script(script)
    sys.argv = [str(script), *args.args]
    sys.path.insert(0, str(script.resolve().parent))
    runpy.run_path(str(script), run_name="__main__")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    try:
        from autolog import spool  # type: ignore[attr-defined]
    except ImportError:
        raise CliError("this build of autolog has no spool to sync") from None
    with contextlib.redirect_stdout(sys.stderr):  # MLflow's "View run ..." lines: stdout is our summary only
        summary = spool.sync(args.backend)
    print(summary)
    if summary.failed:  # a script or a cron job must see that records are still waiting
        raise CliError(f"{len(summary.failed)} journal(s) could not be sent and were kept; run autolog sync again")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from autolog import export

    try:
        with contextlib.redirect_stdout(sys.stderr):  # MLflow's "View run ..." lines: stdout is our summary only
            summary = export.export(args.source, args.dest, args.runs or None, progress=not args.quiet)
    except export.NoStore as exc:
        raise CliError(f"{exc} (nothing logged there yet? check --from URI)") from None
    except (ValueError, FileNotFoundError, RunNotFound) as exc:
        raise CliError(str(exc)) from None
    print(summary)
    return 0 if summary.ok else 1


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line with exit code 2, as every other error (argparse prints its usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"autolog: {message} (see: {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--backend", help="store URI (default: AUTOLOG_BACKEND or sqlite:///autolog-runs/runs.db)")
    top = _Parser(prog="autolog", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("runs", parents=[common], help="a table of runs, newest first")
    p.add_argument("--experiment")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(fn=cmd_runs, reads=True)
    p = sub.add_parser("show", parents=[common], help="everything about one run")
    p.add_argument("run")
    p.set_defaults(fn=cmd_show, reads=True)
    p = sub.add_parser("metrics", parents=[common], help="a metric's values, step by step")
    p.add_argument("run")
    p.add_argument("key")
    p.add_argument("--plot", metavar="FILE.png", help="draw the curve (needs matplotlib)")
    p.set_defaults(fn=cmd_metrics, reads=True)
    p = sub.add_parser("compare", parents=[common], help="params and last metrics of runs side by side")
    p.add_argument("runs", nargs="+")
    p.set_defaults(fn=cmd_compare, reads=True)
    p = sub.add_parser("artifacts", parents=[common], help="list a run's artifacts, or get one (a model) on disk")
    p.add_argument("run")
    p.add_argument("path", nargs="?", help="one artifact, as listed (e.g. model)")
    p.add_argument("--to", metavar="DIR", help="copy the artifact into DIR")
    p.set_defaults(fn=cmd_artifacts, reads=True)
    p = sub.add_parser("run", parents=[common], help="run a Python script with autologging on")
    p.add_argument("--experiment")
    p.add_argument("script")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("sync", parents=[common], help="send what a dead process left in the spool")
    p.set_defaults(fn=cmd_sync)
    p = sub.add_parser("export", help="copy runs from one store into another (e.g. into MLflow)")
    p.add_argument("--from", dest="source", required=True)
    p.add_argument("--to", dest="dest", required=True)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("runs", nargs="*")
    p.set_defaults(fn=cmd_export)
    return top


# A read from a tracking server that is down fails in seconds instead of MLflow's ~4 minutes of retries (7, with
# back-off, and a 120 s timeout each). Only for this process's read commands: set where MLflow reads them at each
# request, never by the library (a training process keeps MLflow's patience), and a value the user set wins.
READ_PATIENCE = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "reads", False):
        for name, value in READ_PATIENCE.items():
            os.environ.setdefault(name, value)
    if args.fn is cmd_run:  # the user's script: its exceptions and output are its own, as under ``python script.py``
        return _run_command(args)
    try:
        code = _run_command(args)
        sys.stdout.flush()  # here, not at exit: a closed pipe is seen while it can still be handled
        return code
    except BrokenPipeError:  # ``autolog runs | head``: the reader has what it wanted; stop quietly, as Unix tools do
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the pipe stopped
    except Exception as exc:
        message = _store_error(exc)
        if message is None:
            raise
        return _fail(message)


def _run_command(args: argparse.Namespace) -> int:
    try:
        return int(args.fn(args))
    except (CliError, RunNotFound) as exc:
        return _fail(str(exc))
    except NotImplementedError as exc:  # a write-only store (TensorBoard): say so, not a traceback
        return _fail(f"{exc} (a write-only store; read it with its own tools)")


def _fail(message: str) -> int:
    """One line on stderr, exit code 2. Messages made for the library's warnings start with 'autolog: ' already."""
    lines = message.strip().splitlines() or ["failed"]
    text = lines[0].removeprefix("autolog: ")
    print(f"autolog: {text}", file=sys.stderr)
    return 2


def _store_error(exc: Exception) -> str | None:
    """A store that cannot be read or written (a server down, a store MLflow refuses, a file not there): the line to
    show instead of a traceback, or None for an error of ours, which keeps its traceback."""
    errors = sys.modules.get("mlflow.exceptions")
    mlflow_error = getattr(errors, "MlflowException", None)
    if isinstance(mlflow_error, type) and isinstance(exc, mlflow_error):
        text = str(getattr(exc, "message", exc))
        if "MLFLOW_ALLOW_FILE_STORE" in text:
            return (
                "MLflow refuses its file store (mlflow+file:, ./mlruns) unless MLFLOW_ALLOW_FILE_STORE=true is set: "
                "set it, or use an MLflow SQLite store (mlflow+sqlite:///mlflow.db)"
            )
        down = re.match(r"API request to (\S+?)/api/\S* failed with exception", text)
        if down:
            reason = re.findall(r"\[Errno -?\d+\] [^'\")]+|Read timed out|timed out", text)
            why = f" ({reason[-1].strip()})" if reason else ""
            return (
                f"the MLflow tracking server at {down.group(1)} does not answer{why}; is it running? "
                "(MLFLOW_HTTP_REQUEST_MAX_RETRIES and MLFLOW_HTTP_REQUEST_TIMEOUT set how long to wait)"
            )
        return f"MLflow: {text}"
    if isinstance(exc, OSError):  # a connection refused, a file not readable: about the store, not a bug of ours
        return f"{type(exc).__name__}: {exc}"
    sql_error = getattr(sys.modules.get("sqlalchemy.exc"), "SQLAlchemyError", None)
    if isinstance(sql_error, type) and isinstance(exc, sql_error):  # an MLflow SQL store it cannot read
        return f"the MLflow database cannot be read: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


if __name__ == "__main__":
    raise SystemExit(main())
