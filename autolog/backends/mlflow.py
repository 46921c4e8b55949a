"""``mlflow`` / ``mlflow+<tracking uri>`` — runs written into MLflow through its own client.

``mlflow`` uses MLflow's own configuration (``MLFLOW_TRACKING_URI``, else ``./mlruns``); ``mlflow+http://host:5000``,
``mlflow+sqlite:///mlflow.db`` and ``mlflow+file:./mlruns`` name a tracking store explicitly.

Each write is one ``log_batch`` request per run piece; the declared ``Limits`` are MLflow's (1,000 entities,
100 params, 100 tags per request, key and value lengths, the characters MLflow accepts in a key) so the writer
splits and sanitises before a request is made. Retries are safe: a run is found again by its ``autolog.run_id`` tag
before one is created, and MLflow's SQL stores keep one row per (key, timestamp, step, value), so a batch sent twice
(the server took it, the answer was lost) is stored once.

A run the user opened with ``mlflow.start_run()`` is joined (its id travels in the ``autolog.mlflow_run_id`` tag set
on the training thread): autolog logs into it and never ends it. Models are saved in MLflow's model format with
the framework's flavour (see ``_mlflow_models``), so ``mlflow.pyfunc.load_model("runs:/<id>/model")`` works.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
import tempfile
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autolog import _errors
from autolog.backends.base import Backend, Limits, RunNotFound
from autolog.records import Artifact, Batch, ModelArtifact, Run, RunRecords, RunStart
from autolog.sanitize import path_key

RUN_ID_TAG = "autolog.run_id"  # the autolog id of the MLflow run: finds it again on retry, re-export, read
JOIN_TAG = "autolog.mlflow_run_id"  # set on the training thread when a user's mlflow.start_run() is active
PARENT_TAG = "mlflow.parentRunId"

_PARAM_CHANGED = "Changing param values is not allowed"  # MLflow's message when a request changes one
UPLOAD_THREADS = 4  # files of one artifact folder sent to a tracking server at once
_REPO_CACHE = 1024  # artifact repositories kept, one a run (as MLflow's own cache)

MLFLOW_LIMITS = Limits(
    max_records_per_write=1000,  # mlflow.utils.validation.MAX_ENTITIES_PER_BATCH
    max_params_per_write=100,  # MAX_PARAMS_TAGS_PER_BATCH
    max_tags_per_write=100,
    max_key_length=250,  # MAX_ENTITY_KEY_LENGTH
    max_param_value_length=6000,  # MAX_PARAM_VAL_LENGTH
    max_tag_value_length=8000,  # MAX_TAG_VAL_LENGTH
    forbidden_key_chars=r"[^\w.\- :/]",  # _VALID_PARAM_AND_METRIC_NAMES (POSIX): alphanumerics _ - . space : /
    path_keys=True,  # validation.path_not_unique: a key must be its own normalised path ("a//b", "./a", "/a" refused)
)


def tracking_uri_of(uri: str) -> str | None:
    """``mlflow`` -> None (MLflow's own default); ``mlflow+<tracking uri>`` -> the tracking URI."""
    if uri == "mlflow":
        return None
    if not uri.startswith("mlflow+") or len(uri) <= len("mlflow+"):
        raise ValueError(f"autolog: an MLflow backend URI is 'mlflow' or 'mlflow+<tracking uri>', got {uri!r}")
    return uri[len("mlflow+") :]


_NON_FINITE = {float("inf"): "Infinity", float("-inf"): "-Infinity"}  # as protobuf's JSON writes them; NaN: "NaN"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _safe_key(key: str) -> str:
    """MLflow refuses keys that would resolve to another path ('a//b', './a', '/a'): make them unique paths.

    The writer already did so, with a warning (``path_keys``); this catches keys that did not come through it."""
    return path_key(key)


class MlflowBackend(Backend):
    limits = MLFLOW_LIMITS

    def __init__(self, uri: str = "mlflow") -> None:
        self.uri = uri
        self.tracking_uri = tracking_uri_of(uri)
        self._client: Any = None
        self._rest: Any = None  # the REST store (a server), False for other stores, None before the first look
        self._lock = threading.RLock()
        self._ids: dict[str, str] = {}  # autolog run id -> MLflow run id
        self._joined: set[str] = set()  # autolog ids whose MLflow run belongs to the user: never ended by us
        self._experiments: dict[str, str] = {}  # name -> id
        self._params: dict[str, dict[str, str]] = {}  # MLflow run id -> params it holds (as far as we know)
        self._runs: dict[str, tuple[str, str, str]] = {}  # MLflow run id -> (artifact uri, experiment id, name)
        self._repos: OrderedDict[str, Any] = OrderedDict()  # MLflow run id -> its artifact repository
        self._dropped: Counter[str] = Counter()
        self._pid = os.getpid()

    # -- client -------------------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._pid != os.getpid():
            self.after_fork()
        if self._client is None:
            _create_sqlite_whole(self.tracking_uri)
            self._client = _bounded_client(self.tracking_uri)
        return self._client

    def after_fork(self) -> None:
        self._client = None
        self._rest = None
        self._repos.clear()  # their HTTP sessions belong to the parent
        self._pid = os.getpid()

    # -- write ----------------------------------------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        with self._lock:
            for rec in batch:
                self._write_run(rec)

    def _write_run(self, rec: RunRecords) -> None:
        run_id = self._run_id(rec)
        tags = dict(rec.tags)
        if rec.start is not None and rec.run_id in self._joined:
            tags.update(self._start_tags(rec.start, joined=True))
        metrics = [(_safe_key(key), value, step, _ms(ts)) for key, value, step, ts in rec.metrics]
        wanted = {_safe_key(k): v for k, v in rec.params.items()}
        params, changed = self._new_params(run_id, wanted)
        run_tags = {_safe_key(k): v for k, v in tags.items()}
        if metrics or params or run_tags:
            # the artifacts (a model: saved in MLflow's format, then uploaded) go beside the request, not after it:
            # the request mostly waits for the server, and the end of a run waits for both
            with _beside(self._log_artifacts, run_id, rec.artifacts) if rec.artifacts else contextlib.nullcontext():
                try:
                    self._log_batch(run_id, metrics, params, run_tags)
                except Exception as exc:
                    if not params or _PARAM_CHANGED not in str(exc):
                        raise
                    # a value set before this process knew (a joined run, a replayed journal): learn them, send again
                    self._params[run_id] = dict(self.client.get_run(run_id).data.params)
                    params, changed = self._new_params(run_id, wanted)
                    self._log_batch(run_id, metrics, params, run_tags)
            self._params.setdefault(run_id, {}).update(params)
        else:
            self._log_artifacts(run_id, rec.artifacts)
        self._report_changed(run_id, rec.run_id, changed)
        if rec.end is not None and rec.run_id not in self._joined:
            self._terminate(run_id, rec.end.status, _ms(rec.end.end_time))

    def _log_artifacts(self, run_id: str, artifacts: list[Artifact]) -> None:
        for art in artifacts:
            self._log_artifact(run_id, art)

    def _terminate(self, run_id: str, status: str, end_time: int) -> None:
        """``MlflowClient.set_terminated``, less its ``get_run`` request (MLflow fetches the whole run to print the
        run's link): to a plain tracking server, the status is sent alone and the link printed, as MLflow prints it,
        from what this backend learnt when it created the run."""
        known = self._runs.get(run_id)
        link = self._link(run_id, known[1], known[2]) if known is not None else None
        if link is None:
            self.client.set_terminated(run_id, status=status, end_time=end_time)
            return
        from mlflow.entities import RunStatus

        self._rest.update_run_info(run_id, run_status=RunStatus.from_string(status), end_time=end_time, run_name=None)
        if link:
            sys.stdout.write(link)

    def _link(self, run_id: str, experiment_id: str, name: str) -> str | None:
        """MLflow's "View run" lines for a run on a plain tracking server ("" when its user turned them off); None
        where MLflow's own ``set_terminated`` should print them (Databricks, a workspace, another store)."""
        store = self._rest_store()
        if store is None or type(store) is not _bounded_classes()[0]:
            return None
        try:
            from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT
            from mlflow.utils.uri import is_databricks_uri
            from mlflow.utils.workspace_context import get_request_workspace
            from mlflow.utils.workspace_utils import DEFAULT_WORKSPACE_NAME

            if is_databricks_uri(self.client.tracking_uri) or get_request_workspace() not in (
                None,
                DEFAULT_WORKSPACE_NAME,
            ):
                return None
            if MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.get():
                return ""
            host = self._rest.get_host_creds().host.rstrip("/")
        except (ImportError, AttributeError):
            return None
        experiment_url = f"{host}/#/experiments/{experiment_id}"
        return f"🏃 View run {name} at: {experiment_url}/runs/{run_id}\n🧪 View experiment at: {experiment_url}\n"

    def _log_batch(
        self, run_id: str, metrics: list[tuple[str, float, int, int]], params: dict[str, str], tags: dict[str, str]
    ) -> None:
        """One ``LogBatch`` request (the writer keeps it within MLflow's limits).

        To a tracking server, the request body is built here with the C JSON encoder and sent through the MLflow
        client's own REST call (its endpoint, credentials, retries and error handling): MLflow's ``log_batch`` makes
        an entity, a protobuf message and a pretty-printed JSON object per metric, 30-50 µs each, on the writer
        thread and holding the GIL the training thread needs. The body equals the one MLflow would send
        (``tests/backends/test_mlflow.py``). Other stores go through ``MlflowClient.log_batch``."""
        rest = self._rest_store()
        if rest is not None:
            from mlflow.protos.service_pb2 import LogBatch

            body: dict[str, Any] = {"run_id": run_id}
            if metrics:
                body["metrics"] = [
                    {"key": k, "value": v if v - v == 0 else _NON_FINITE.get(v, "NaN"), "timestamp": t, "step": s}
                    for k, v, s, t in metrics
                ]
            if params:
                body["params"] = [{"key": k, "value": v} for k, v in params.items()]
            if tags:
                body["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
            rest._call_endpoint(LogBatch, json.dumps(body, allow_nan=False))
            return
        from mlflow.entities import Metric, Param, RunTag

        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, t, s) for k, v, s, t in metrics],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
            synchronous=True,
        )

    def _rest_store(self) -> Any:
        """MLflow's REST store when the tracking URI is a server, else None."""
        if self._rest is None:
            try:
                from mlflow.store.tracking.rest_store import RestStore

                store = self.client._tracking_client.store
                self._rest = store if isinstance(store, RestStore) else False
            except (ImportError, AttributeError):  # another MLflow layout: its own log_batch then
                self._rest = False
        return self._rest or None

    def _new_params(self, run_id: str, wanted: dict[str, str]) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
        """The params MLflow does not hold yet, and those it holds with another value: {key: (old, new)}."""
        known = self._params.get(run_id)
        if not known:
            return wanted, {}
        out, changed = {}, {}
        for key, value in wanted.items():
            old = known.get(key)
            if old is None:
                out[key] = value
            elif old != value:
                changed[key] = (old, value)
        return out, changed

    def _report_changed(self, run_id: str, autolog_id: str, changed: dict[str, tuple[str, str]]) -> None:
        """MLflow keeps a param's first value and refuses the whole request that changes one: a changed value is
        left out, warned about with both values, and counted."""
        for key, (old, new) in changed.items():
            self._dropped["param_changed"] += 1
            _errors.warn(
                f"autolog: param {key!r} of run {autolog_id} is already {old[:100]!r} in MLflow, which keeps a "
                f"param's first value; {new[:100]!r} is not logged (use another key, or a tag)",
                once_key=f"param-changed:{run_id}:{key}",
            )

    def dropped(self) -> dict[str, int]:
        return dict(self._dropped)

    def _log_artifact(self, run_id: str, art: Artifact) -> None:
        from autolog.backends import _mlflow_models

        with tempfile.TemporaryDirectory(prefix="autolog-mlflow-") as tmp:
            if isinstance(art, ModelArtifact) and _mlflow_models.log_model(self, run_id, art, Path(tmp)):
                return
            target = Path(tmp) / art.path
            target.parent.mkdir(parents=True, exist_ok=True)
            art.write(target)
            parent = str(Path(art.path).parent).replace(os.sep, "/")
            folder = None if parent in ("", ".") else parent
            if target.is_dir():
                self.upload_dir(run_id, target, art.path)
            else:
                self.artifact_repo(run_id).log_artifact(str(target), folder)

    def artifact_repo(self, run_id: str) -> Any:
        """The run's artifact repository, as ``MlflowClient`` would make it, but from the artifact URI the run was
        created or joined with: MLflow's client asks the server for the whole run (``get_run``) first, once a run."""
        repo = self._repos.get(run_id)
        if repo is None:
            known = self._runs.get(run_id)
            uri = known[0] if known is not None else self.client.get_run(run_id).info.artifact_uri
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
            from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

            tracking_uri = self.client.tracking_uri
            uri = add_databricks_profile_info_to_artifact_uri(uri, tracking_uri)
            repo = self._repos[run_id] = get_artifact_repository(uri, tracking_uri=tracking_uri)
            if len(self._repos) > _REPO_CACHE:
                self._repos.popitem(last=False)
        return repo

    def upload_dir(self, run_id: str, local_dir: Path, artifact_path: str) -> None:
        """``log_artifacts``: to a tracking server's artifact proxy, ``UPLOAD_THREADS`` files at a time (MLflow sends
        one after another, a request each: a model in MLflow's format is six files or more)."""
        repo = self.artifact_repo(run_id)
        from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

        files = [(Path(root), name) for root, _, names in os.walk(local_dir) for name in names]
        if not isinstance(repo, HttpArtifactRepository) or len(files) < 2:
            repo.log_artifacts(str(local_dir), artifact_path)
            return

        def folder(root: Path) -> str:
            rel = root.relative_to(local_dir).as_posix()
            return artifact_path if rel == "." else f"{artifact_path}/{rel}"

        _all_at_once([(repo.log_artifact, (str(root / name), folder(root))) for root, name in files], UPLOAD_THREADS)

    # -- runs ------------------------------------------------------------------------------------------------
    def _run_id(self, rec: RunRecords) -> str:
        known = self._ids.get(rec.run_id)
        if known is not None:
            return known
        start = rec.start
        if start is not None and start.tags.get(JOIN_TAG) and self._join(start):
            return self._ids[rec.run_id]
        experiment_ids = [self._experiment(start.experiment)] if start is not None else None
        found = self._find(rec.run_id, experiment_ids)
        if found is None:
            found = self._create(start or self._placeholder(rec))
        self._ids[rec.run_id] = found
        return found

    def _join(self, start: RunStart) -> bool:
        from mlflow.exceptions import MlflowException

        user_run = start.tags[JOIN_TAG]
        try:
            info = self.client.get_run(user_run).info
        except MlflowException:
            _errors.warn(
                f"autolog: the MLflow run {user_run} active when run {start.run_id[:8]} began is not in "
                f"{self.tracking_uri or 'the default tracking store'}; logging into a new run instead",
                once_key=f"mlflow-join:{user_run}",
            )
            return False
        self._ids[start.run_id] = user_run
        self._runs[user_run] = (info.artifact_uri, info.experiment_id, info.run_name or "")
        self._joined.add(start.run_id)
        return True

    def _placeholder(self, rec: RunRecords) -> RunStart:
        """Records of a run whose start we never saw (another process started it): keep them, in a new run."""
        first = rec.metrics[0][3] if rec.metrics else (rec.end.end_time if rec.end else 0.0)
        return RunStart(rec.run_id, "Default", rec.run_id[:8], first)

    def _experiment(self, name: str) -> str:
        cached = self._experiments.get(name)
        if cached is not None:
            return cached
        from mlflow.exceptions import MlflowException

        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            try:
                exp_id = self.client.create_experiment(name)
            except MlflowException:  # created meanwhile by another process
                exp = self.client.get_experiment_by_name(name)
                if exp is None:
                    raise
                exp_id = exp.experiment_id
        else:
            exp_id = exp.experiment_id
        self._experiments[name] = exp_id
        return str(exp_id)

    def _all_experiment_ids(self) -> list[str]:
        exps = self.client.search_experiments()
        for exp in exps:
            self._experiments.setdefault(exp.name, exp.experiment_id)
        return [e.experiment_id for e in exps]

    def _find(self, autolog_id: str, experiment_ids: list[str] | None) -> str | None:
        """The MLflow run holding autolog run ``autolog_id`` (created by an earlier try or an earlier export)."""
        ids = experiment_ids or self._all_experiment_ids()
        if not ids:
            return None
        found = self.client.search_runs(ids, filter_string=f"tags.`{RUN_ID_TAG}` = '{autolog_id}'", max_results=1)
        return found[0].info.run_id if found else None

    def _start_tags(self, start: RunStart, joined: bool = False) -> dict[str, str]:
        tags = {k: v for k, v in start.tags.items() if k != JOIN_TAG}
        if joined:  # the user's run keeps its own name, source and parent
            return tags
        script = start.tags.get("autolog.script") or (sys.argv[0] if sys.argv and sys.argv[0] else "")
        tags.update({RUN_ID_TAG: start.run_id, "mlflow.source.type": "LOCAL", "mlflow.user": _user()})
        if script:
            tags["mlflow.source.name"] = script
        if start.tags.get("autolog.git_commit"):
            tags["mlflow.source.git.commit"] = start.tags["autolog.git_commit"]
        if start.parent_id is not None:
            tags["autolog.parent_id"] = start.parent_id
            parent = self._ids.get(start.parent_id) or self._find(start.parent_id, None)
            if parent is not None:
                tags[PARENT_TAG] = parent
        return {_safe_key(k): v for k, v in tags.items()}

    def _create(self, start: RunStart) -> str:
        run = self.client.create_run(
            self._experiment(start.experiment),
            start_time=_ms(start.start_time),
            tags=self._start_tags(start),
            run_name=start.name,
        )
        info = run.info
        self._runs[info.run_id] = (info.artifact_uri, info.experiment_id, info.run_name or start.name)
        return str(info.run_id)

    # -- read -----------------------------------------------------------------------------------------------
    def _resolve(self, run_id: str) -> str:
        """An autolog run id (or an MLflow run id) -> the MLflow run id."""
        from mlflow.exceptions import MlflowException

        with self._lock:
            known = self._ids.get(run_id) or self._find(run_id, None)
        if known is not None:
            return known
        try:
            return str(self.client.get_run(run_id).info.run_id)
        except MlflowException:
            raise RunNotFound(run_id, self.uri) from None

    def _to_run(self, mrun: Any) -> Run:
        info, data = mrun.info, mrun.data
        names = {v: k for k, v in self._experiments.items()}
        if info.experiment_id not in names:
            exp = self.client.get_experiment(info.experiment_id)
            self._experiments[exp.name] = exp.experiment_id
            names[exp.experiment_id] = exp.name
        tags = dict(data.tags)
        parent = tags.get("autolog.parent_id") or tags.get(PARENT_TAG)
        return Run(
            id=tags.get(RUN_ID_TAG, info.run_id),
            experiment=names[info.experiment_id],
            name=info.run_name or "",
            status=info.status,
            parent_id=parent,
            start_time=(info.start_time or 0) / 1000,
            end_time=None if info.end_time is None else info.end_time / 1000,
            params=dict(data.params),
            tags=tags,
            metrics=dict(data.metrics),
        )

    def search_runs(self, experiment: str | None = None) -> list[Run]:
        if experiment is not None:
            exp = self.client.get_experiment_by_name(experiment)
            if exp is None:
                return []
            ids = [exp.experiment_id]
            self._experiments[exp.name] = exp.experiment_id
        else:
            ids = self._all_experiment_ids()
        if not ids:
            return []
        runs: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs(ids, order_by=["attributes.start_time DESC"], page_token=token)
            runs.extend(self._to_run(r) for r in page)
            token = page.token
            if not token:
                return runs

    def get_run(self, run_id: str) -> Run:
        return self._to_run(self.client.get_run(self._resolve(run_id)))

    def get_metric_history(self, run_id: str, key: str) -> list[tuple[int, float, float]]:
        history = self.client.get_metric_history(self._resolve(run_id), key)
        return [(m.step, m.value, m.timestamp / 1000) for m in history]

    def list_artifacts(self, run_id: str) -> list[str]:
        """Every file in the run's artifacts (paths relative to its artifact root)."""
        mlflow_id = self._resolve(run_id)
        files: list[str] = []
        todo: list[str | None] = [None]
        while todo:
            for info in self.client.list_artifacts(mlflow_id, todo.pop()):
                (todo if info.is_dir else files).append(info.path)  # type: ignore[arg-type]
        return sorted(files)

    def download_artifact(self, run_id: str, path: str) -> Path:
        target = tempfile.mkdtemp(prefix="autolog-mlflow-")
        return Path(self.client.download_artifacts(self._resolve(run_id), path, target))


@contextlib.contextmanager
def _beside(function: Any, *args: Any) -> Iterator[None]:
    """Run ``function(*args)`` in a thread of its own while the ``with`` body runs; leaving waits for it and raises
    its error (the body's own error first). Where no thread can be started, it runs after the body.

    Plain threads, not ``concurrent.futures``: a run that ends at exit is written from autolog's exit handler, and
    Python refuses new work to its pools by then (their threads are joined before exit handlers run)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            function(*args)
        except BaseException as exc:  # noqa: BLE001 - raised in the writer's thread below
            errors.append(exc)

    thread = threading.Thread(target=run, name="autolog-beside", daemon=True)
    try:
        thread.start()
        started = True
    except RuntimeError:  # the interpreter is shutting down: no new thread
        started = False
    try:
        yield
    finally:
        if started:
            thread.join()
    if not started:
        function(*args)
    elif errors:
        raise errors[0]


def _all_at_once(calls: list[tuple[Any, tuple[Any, ...]]], threads: int) -> None:
    """Make every call, on up to ``threads`` threads (this one among them); the first error is raised once all have
    ended. With no new thread to be had (exit), this thread makes them all."""
    todo = iter(calls)  # shared: each call is taken once (a list iterator's next is atomic under the GIL)
    errors: list[BaseException] = []

    def work() -> None:
        for function, args in todo:
            try:
                function(*args)
            except BaseException as exc:  # noqa: BLE001 - raised in the writer's thread below
                errors.append(exc)

    helpers: list[threading.Thread] = []
    for _ in range(min(threads, len(calls)) - 1):
        helper = threading.Thread(target=work, name="autolog-upload", daemon=True)
        try:
            helper.start()
        except RuntimeError:  # the interpreter is shutting down: no new thread
            break
        helpers.append(helper)
    work()
    for helper in helpers:
        helper.join()
    if errors:
        raise errors[0]


REQUEST_TIMEOUT = 30  # seconds one request to a tracking server may take (MLflow's default: 120)


def _request_timeout() -> float:
    """The user's ``MLFLOW_HTTP_REQUEST_TIMEOUT`` when it is shorter than ours (read, never changed)."""
    try:
        return min(float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", REQUEST_TIMEOUT)), REQUEST_TIMEOUT)
    except ValueError:
        return REQUEST_TIMEOUT


def _bounded_client(tracking_uri: str | None) -> Any:
    """An ``MlflowClient`` whose requests to a tracking server give up after one try of at most ``REQUEST_TIMEOUT``.

    MLflow's client retries a request itself, with exponential back-off: 7 times by default, minutes against a server
    that is down, all of it inside one write on the one writer thread, so a fan-out's other stores waited as long
    and a run's end timed out with nothing stored. autolog retries a failed write itself (``max_retries``, back-off)
    and keeps what still fails in the spool, so its own requests skip MLflow's retries. Per client, not by setting
    ``MLFLOW_HTTP_REQUEST_*``: that would change every MLflow call of the user's process. Another store (SQL, file),
    or an MLflow whose REST store is laid out otherwise, gets MLflow's own client unchanged."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        from mlflow.store.tracking.rest_store import RestStore

        tracking = client._tracking_client
        store = tracking.store
        if type(store) is not RestStore or not hasattr(RestStore, "_METHOD_TO_INFO"):
            return client
        client._tracking_client = _bounded_classes()[1](tracking.tracking_uri, store.get_host_creds)
    except (ImportError, AttributeError):
        return client
    return client


def _create_sqlite_whole(tracking_uri: str | None) -> None:
    """A fresh MLflow SQLite database is built under a temporary name and put in place once complete.

    MLflow builds one by running its whole migration history: ~10 s on a small machine. A short script that exits
    within ``shutdown_timeout`` left it half built, and MLflow then refuses it for good ("table ... already
    exists"), as does ``autolog sync``. Built aside, an exit part way leaves only the temporary file; the next
    process builds the store again. ``os.link`` puts it in place without replacing a database another process made
    meanwhile. Any surprise (another MLflow layout, a file system without links): MLflow builds it in place."""
    import mlflow

    uri = tracking_uri or mlflow.get_tracking_uri()
    if not uri.startswith("sqlite:///"):
        return
    name = uri[len("sqlite:///") :].split("?", 1)[0]
    if not name or name == ":memory:":
        return
    path = Path(name)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(path)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.building")
    try:
        from mlflow.tracking._tracking_service.utils import _get_sqlalchemy_store

        store = _get_sqlalchemy_store(f"sqlite:///{aside}", None)  # the artifact root MLflow would give the path
        store.engine.dispose()
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process put its store there first: that one is used
    except Exception:  # noqa: BLE001 - MLflow builds it in place, as it would without us
        return
    finally:
        with contextlib.suppress(OSError):
            aside.unlink()


def _remove_abandoned(path: Path) -> None:
    """Half-built stores left aside by processes that died building them (killed: no ``finally`` ran)."""
    for aside in path.parent.glob(f".{path.name}.*.building*"):  # with SQLite's -journal beside it
        try:
            os.kill(int(aside.name[len(path.name) + 2 :].split(".", 1)[0]), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                aside.unlink()
        except (ValueError, OSError):
            continue


_BOUNDED: tuple[type, type] | None = None


def _bounded_classes() -> tuple[type, type]:
    """A RestStore sending each request once with a bounded timeout, and a tracking client that uses it (created on
    first use: MLflow is imported only by a process that writes to it)."""
    global _BOUNDED
    if _BOUNDED is not None:
        return _BOUNDED
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.tracking._tracking_service.client import TrackingServiceClient
    from mlflow.utils.proto_json_utils import parse_dict
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    class BoundedRestStore(RestStore):  # type: ignore[misc]
        """``RestStore._call_endpoint`` (endpoint, method, credentials, errors as MLflow raises them), with MLflow's
        retries off and a bounded timeout."""

        def _call_endpoint(
            self,
            api: Any,
            json_body: Any = None,
            endpoint: Any = None,
            retry_timeout_seconds: Any = None,
            response_proto: Any = None,
        ) -> Any:
            infos = self._V3_METHOD_TO_INFO if api in getattr(self, "_V3_APIS", ()) else self._METHOD_TO_INFO
            validate = getattr(self, "_validate_workspace_support_if_specified", None)
            if validate is not None:
                validate()
            path, method = infos[api]
            endpoint = endpoint or path
            if method == "GET":
                send: dict[str, Any] = {"params": json.loads(json_body) if json_body is not None else None}
            elif json_body is None:
                send = {"json": None}
            else:  # the JSON text as it is: parsed and encoded again it is the same body, ~2 ms a 1,000 metrics
                send = {"data": json_body.encode("utf-8"), "extra_headers": {"Content-Type": "application/json"}}
            response = http_request(
                self.get_host_creds(),
                endpoint,
                method,
                max_retries=0,
                backoff_factor=0,
                timeout=_request_timeout(),
                **send,
            )
            response = verify_rest_response(response, endpoint)
            proto = response_proto or api.Response()
            if response.status_code != 204:
                parse_dict(js_dict=json.loads(response.text), message=proto)
            return proto

    class BoundedTracking(TrackingServiceClient):  # type: ignore[misc]
        def __init__(self, tracking_uri: str, get_host_creds: Any) -> None:
            self._bounded_store = BoundedRestStore(get_host_creds)
            super().__init__(tracking_uri)

        @property
        def store(self) -> Any:
            return self._bounded_store

    _BOUNDED = (BoundedRestStore, BoundedTracking)
    return _BOUNDED


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


def active_mlflow_run_id() -> str | None:
    """The id of the run the user opened with ``mlflow.start_run()`` on this thread, if MLflow is imported."""
    mlflow = sys.modules.get("mlflow")
    active = getattr(mlflow, "active_run", None)
    run = active() if callable(active) else None
    return None if run is None else str(run.info.run_id)
