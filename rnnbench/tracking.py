"""MLflow tracking: the only module that imports mlflow.

The embedded store is SQLite at the repository root, by absolute path, so runs from DVC's
temporary experiment folders (.dvc/tmp/exps/...) land in the same database; MLFLOW_TRACKING_URI
overrides it (an `mlflow server` shared by a team or by remote workers).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import os
import platform
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rnnbench.config import UserError
from rnnbench.io import git_state, project_root

METRIC_BATCH = 1000  # MLflow accepts at most 1000 metrics per log_batch call
# MLflow 3's UI opens an experiment by its kind (the experiment tag mlflow.experimentKind): with
# none set it guesses GenAI and shows traces; this one is model training.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
# MLflow 3.17's UI takes the kind from its GenAI / Model training switch when it shows one (the
# default: GenAI, remembered per browser); this query opens an experiment in model training.
UI_WORKFLOW = "workflowType=machine_learning"
DIGEST_CHARS = 36  # the longest dataset digest MLflow stores: a prefix of the data's sha256


def tracking_uri(root: Path | None = None) -> str:
    env = os.environ.get("MLFLOW_TRACKING_URI")
    return env if env else f"sqlite:///{(root or project_root()) / 'mlflow.db'}"


class TrackingError(UserError):
    """The tracking store cannot be used: named, before any work is done."""


REACH_TIMEOUT_S = 8.0  # the whole command fails within 10 s


def check_reachable(uri: str | None = None, timeout: float = REACH_TIMEOUT_S) -> str:
    """Fail within `timeout` seconds, naming the URI, when runs could not be recorded: a SQLite
    store whose folder is missing or not writable (MLflow would create the folder: we never
    create folders the user did not ask for), or a server that refuses, never answers, or is
    not an MLflow server. Commands call it before any work; returns the URI."""
    uri = uri or tracking_uri()
    path = sqlite_path(uri)
    if path is not None:
        folder = path.parent
        if not folder.is_dir():
            raise TrackingError(f"tracking store {uri}: folder {folder} does not exist "
                                "(create it, or set MLFLOW_TRACKING_URI)")
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise TrackingError(f"tracking store {uri}: not writable")
    elif uri.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:  # `mlflow server` answers GET /health with "OK"
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
                r.read(64)
        except urllib.error.HTTPError as exc:
            raise TrackingError(f"tracking server {uri}: /health answered HTTP {exc.code}; "
                                "is it an MLflow server?") from None
        except (OSError, ValueError) as exc:
            why = getattr(exc, "reason", None) or exc
            raise TrackingError(f"tracking server {uri}: not reachable within {timeout:g} s "
                                f"({why})") from None
    return uri


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def git_commit(root: Path) -> str:
    return git_state(root, status=False)["commit"]


def library_versions() -> dict[str, str]:
    import numpy
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "numpy": numpy.__version__}
    try:  # from the package metadata: importing numba costs a stage 0.4 s
        versions["numba"] = importlib.metadata.version("numba")
    except importlib.metadata.PackageNotFoundError:
        pass
    return versions


LOCK_RETRIES = 8  # SQLite's own busy wait is 5 s; then 0.2, 0.4, ... 25.6 s more


# Errors another writer causes, that the same call succeeds past: SQLite busy, and two runs
# logging the same dataset at once (each inserts it; the retry finds the other's row).
RETRY_ON = ("database is locked", "UNIQUE constraint failed: datasets.")


def retry_locked(fn: Callable, *args, **kwargs):
    """fn(*args, **kwargs), retried while another writer is in the way (RETRY_ON); the failed
    statement was rolled back, so a retry records nothing twice."""
    for attempt in range(LOCK_RETRIES + 1):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not any(m in str(exc) for m in RETRY_ON) or attempt == LOCK_RETRIES:
                raise
            time.sleep(0.2 * 2 ** attempt)


class RetryingClient:
    """An MlflowClient whose every call goes through retry_locked."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr
        return lambda *a, **kw: retry_locked(attr, *a, **kw)


def client(uri: str | None = None) -> RetryingClient:
    """A client of the store at `uri` (default tracking_uri()); a fresh SQLite store is
    created and migrated here, once, under store_lock (MLflow does it when a client opens it)."""
    from mlflow.tracking import MlflowClient

    uri = uri or tracking_uri()
    with store_lock(uri):
        return RetryingClient(MlflowClient(tracking_uri=uri))


def sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """An exclusive lock on a SQLite store (a lock file beside it) while it is created and
    migrated: MLflow creates the tables of a fresh store on first use, and processes doing that
    at once break it for good ("table ... already exists"). Servers guard themselves."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_experiment(experiment: str, uri: str | None = None) -> str:
    """The experiment's id, creating the store (migrated) and the experiment under store_lock
    when either is missing: the first of several concurrent processes creates them, the others
    wait and find them. Its kind (EXPERIMENT_KIND) is set."""
    uri = uri or tracking_uri()
    c = client(uri)
    with store_lock(uri):
        exp = c.get_experiment_by_name(experiment)
        if exp is not None:
            if exp.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:  # made before kinds
                c.set_experiment_tag(exp.experiment_id, *EXPERIMENT_KIND)
            return exp.experiment_id
        # A SQLite store keeps its artifacts beside it, by absolute path (a server decides for
        # itself); MLflow's default would be ./mlruns of whatever folder runs the stage.
        path = sqlite_path(uri)
        location = (path.parent / "mlruns").as_uri() if path else None
        return c.create_experiment(experiment, artifact_location=location,
                                   tags=dict([EXPERIMENT_KIND]))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def mark_stale_runs(c, exp_id: str, tags: dict[str, str]) -> list[str]:
    """Runs of the same (model, task, seed) left RUNNING by a process of this host that no
    longer exists (killed with SIGKILL, or the machine lost power) become KILLED; their ids."""
    keys = [k for k in ("model", "task", "seed") if k in tags]
    if not keys:
        return []
    filt = " and ".join(["attributes.status = 'RUNNING'"]
                        + [f"tags.{k} = '{tags[k]}'" for k in keys])
    stale = []
    for r in c.search_runs([exp_id], filt, max_results=1000):
        t = r.data.tags
        if t.get("host") == socket.gethostname() and t.get("pid", "").isdigit() \
                and not pid_alive(int(t["pid"])):
            c.set_tag(r.info.run_id, "failure_reason", f"process {t['pid']} ended without "
                      "ending its run (killed); marked by a later run of the same configuration")
            c.set_terminated(r.info.run_id, status="KILLED")
            stale.append(r.info.run_id)
    return stale
def run_group(tags: dict[str, str], source: str | None, commit: str) -> str:
    """What a run belongs to, for the UI's "group by" (tag run_group): its study, its sweep,
    or the pipeline execution that ran it (the commit, and the DVC experiment when there is
    one); a one-off run is `cli`."""
    if tags.get("study"):
        return f"study {tags['study']}"
    if tags.get("sweep"):
        return f"sweep {tags['sweep']}"
    if source in (None, "cli"):
        return "cli"
    exp = os.environ.get("DVC_EXP_NAME")
    return f"pipeline {commit[:8]}" + (f" exp {exp}" if exp else "")


def run_name(model: str, task: str, seed: int, tags: dict[str, str]) -> str:
    """A run's name that says what the row is: model/task/seed, after its study or sweep and
    variant where it has them (`sigma: σ=0.5, no clipping · rnn/adding/seed0`)."""
    base = f"{model}/{task}/seed{seed}"
    group = tags.get("study") or tags.get("sweep")
    if not group:
        return base
    return f"{group}: {tags['variant']} · {base}" if tags.get("variant") else f"{group} · {base}"


def interrupt_in(exc: BaseException | None) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (Ctrl-C, or SIGTERM through commands.guarded) behind `exc`, if
    any: one that lands inside SQLAlchemy or an import surfaces as another error."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class Tracker:
    """One MLflow run: `with Tracker(...) as t: t.log_metrics(...)`; ends FINISHED, FAILED, or
    KILLED when SIGINT or SIGTERM stopped it (commands.guarded raises KeyboardInterrupt)."""

    def __init__(self, experiment: str, run_name: str, tags: dict[str, str],
                 params: dict[str, Any], root: Path | None = None, source: str | None = None):
        """source: what made the run (its DVC stage, or `cli`), shown as the UI's Source; the
        run is grouped (tag run_group, see run_group) with the others of its study, sweep or
        pipeline execution."""
        import mlflow

        self.root = root or project_root()
        self.uri = tracking_uri(self.root)
        self.client = client(self.uri)
        self._mlflow_entities = mlflow.entities
        exp_id = ensure_experiment(experiment, self.uri)
        mark_stale_runs(self.client, exp_id, tags)
        self.commit = commit = git_commit(self.root)
        all_tags = {"run_group": run_group(tags, source, commit), **tags,
                    "host": socket.gethostname(), "pid": str(os.getpid()), "git_commit": commit,
                    "mlflow.source.git.commit": commit,
                    **({"mlflow.source.name": source, "mlflow.source.type": "JOB"}
                       if source else {}),
                    **{f"version.{k}": v for k, v in library_versions().items()}}
        self.run = self.client.create_run(exp_id, run_name=run_name, tags=all_tags)
        self.run_id = self.run.info.run_id
        flat = flatten(params)
        entities = [self._mlflow_entities.Param(k, str(v)[:6000]) for k, v in flat.items()]
        for i in range(0, len(entities), 100):  # log_batch takes at most 100 params a call
            self.client.log_batch(self.run_id, params=entities[i:i + 100])

    def log_metrics(self, values: dict[str, float], step: int | None = None) -> None:
        self.log_series({k: [v] for k, v in values.items()}, first_step=step or 0)

    def log_series(self, series: dict[str, list[float]], first_step: int = 0) -> None:
        """Log whole per-step series in batches: series[key][i] is the value at first_step + i."""
        now = int(time.time() * 1000)
        metrics = [self._mlflow_entities.Metric(k, float(v), now, first_step + i)
                   for k, vals in series.items() for i, v in enumerate(vals)]
        for i in range(0, len(metrics), METRIC_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + METRIC_BATCH])

    def log_dataset(self, name: str, sha256: str, source: dict, profile: dict,
                    context: str = "train") -> None:
        """The run's data as an MLflow dataset input (the UI's Dataset column): its digest the
        first DIGEST_CHARS of the data's sha256, the whole hash in its source."""
        import json

        e = self._mlflow_entities
        dataset = e.Dataset(name=name, digest=sha256[:DIGEST_CHARS], source_type="local",
                            source=json.dumps({**source, "sha256": sha256}, sort_keys=True),
                            profile=json.dumps(profile, sort_keys=True))
        self.client.log_inputs(self.run_id, datasets=[
            e.DatasetInput(dataset, [e.InputTag("mlflow.data.context", context)])])

    def set_tags(self, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))

    def log_artifact(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def end(self, failed: bool = False, reason: str | None = None,
            status: str | None = None) -> None:
        if reason:
            self.client.set_tag(self.run_id, "failure_reason", reason)
        self.client.set_terminated(self.run_id,
                                   status=status or ("FAILED" if failed else "FINISHED"))

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        stop = interrupt_in(exc)
        if stop is not None:
            try:  # once, without retries: the interrupt may have left this process's own
                # transaction holding the store's lock; a later run marks it KILLED then
                # (mark_stale_runs)
                inner = self.client._inner
                inner.set_tag(self.run_id, "failure_reason", f"stopped by {str(stop) or 'SIGINT'}")
                inner.set_terminated(self.run_id, status="KILLED")
            except Exception:
                pass
            if stop is not exc:  # a library turned the interrupt into its own error
                raise stop
        elif exc_type is not None:  # a bug: record it, then let it propagate
            self.end(failed=True, reason=f"{exc_type.__name__}: {exc}"[:5000])
        elif self.client.get_run(self.run_id).info.status == "RUNNING":
            self.end()


def ui_url(port: int, experiment_id: str) -> str:
    """The UI's page of an experiment, opened on its runs table (UI_WORKFLOW)."""
    return f"http://127.0.0.1:{port}/#/experiments/{experiment_id}?{UI_WORKFLOW}"


def run_ui(port: int = 5000) -> int:
    """Serve the MLflow UI for this project's store on 127.0.0.1, after printing each
    experiment's link (ui_url); experiments made before they had a kind get theirs first."""
    for exp in client().search_experiments():
        if exp.name != "Default":
            ensure_experiment(exp.name)
            print(f"{exp.name}: {ui_url(port, exp.experiment_id)}", flush=True)
    cmd = ["mlflow", "ui", "--backend-store-uri", tracking_uri(), "--host", "127.0.0.1",
           "--port", str(port)]
    return subprocess.call(cmd)


# ---------------------------------------------------------------- sweeps and servers
def _runs(experiment: str, filter_string: str = "") -> list:
    c = client()
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return []
    out, token = [], None
    while True:
        page = c.search_runs([exp.experiment_id], filter_string, max_results=1000,
                             page_token=token)
        out += list(page)
        token = page.token
        if not token:
            return out


def search_runs(experiment: str, filter_string: str = ""):
    """mlflow.search_runs over one experiment, as a pandas DataFrame (every page); None when
    the experiment does not exist. A filter MLflow cannot parse is a UserError."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if client().get_experiment_by_name(experiment) is None:
        return None
    mlflow.set_tracking_uri(tracking_uri())
    try:
        return mlflow.search_runs(experiment_names=[experiment], filter_string=filter_string,
                                  max_results=100_000, order_by=["attributes.start_time ASC"])
    except MlflowException as e:
        raise UserError(f"compare: filter {filter_string!r}: {e.message}") from None


def final_runs(experiment: str) -> dict[str, str]:
    """config_hash -> run id of every run whose result is final: FINISHED, or FAILED as a
    diverged training (a deterministic result, not an error)."""
    out = {}
    for r in _runs(experiment):
        h = r.data.tags.get("config_hash")
        final = r.info.status == "FINISHED" or (r.info.status == "FAILED"
                                                and r.data.tags.get("status") == "diverged")
        if h and final:
            out.setdefault(h, r.info.run_id)
    return out


def record_failure(experiment: str, run_name: str, tags: dict[str, str], reason: str) -> str:
    """A FAILED run that says why it never trained (an invalid configuration); its id."""
    c = client()
    run = c.create_run(ensure_experiment(experiment), run_name=run_name,
                       tags={**tags, "failure_reason": reason[:5000]})
    c.set_terminated(run.info.run_id, status="FAILED")
    return run.info.run_id


RESULT_FILES = ("result.json", "metrics.json", "curves.csv", "probes.json", "showcase.json")


def download_results(experiment: str, sweep: str, dest: Path) -> int:
    """The result files of a sweep's finished runs, as a results folder the report reads:
    dest/<model>-<hash>/<task>/seed<k>/; each run's model is named with its variant."""
    import json

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    c, n = client(), 0
    for r in _runs(experiment, f"tags.sweep = '{sweep}'"):
        tags = r.data.tags
        if r.info.status != "FINISHED" and tags.get("status") != "diverged":
            continue
        folder = dest / f"{tags['model']}-{tags['config_hash'][:8]}" / tags["task"] / \
            f"seed{tags['seed']}"
        folder.mkdir(parents=True, exist_ok=True)
        have = {a.path for a in c.list_artifacts(r.info.run_id)}
        for name in RESULT_FILES:
            if name in have:
                c.download_artifacts(r.info.run_id, name, str(folder))
        metrics = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        if tags.get("variant"):
            metrics["model"] = f"{tags['model']} [{tags['variant']}]"
        (folder / "result.json").write_text(json.dumps(metrics), encoding="utf-8")
        n += 1
    return n


def server_command(backend: str, artifacts: Path, host: str, port: int,
                   workers: int = 1) -> list[str]:
    """`mlflow server` on `backend` (sqlite:///... or postgresql://...), serving artifacts
    from `artifacts` over HTTP, so remote workers need no shared filesystem."""
    return ["mlflow", "server", "--backend-store-uri", backend, "--artifacts-destination",
            Path(artifacts).resolve().as_uri(), "--serve-artifacts", "--host", host, "--port",
            str(port), "--workers", str(workers)]
