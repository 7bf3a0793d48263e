"""The MLflow tracking store: where it is, whether it can be reached, its creation under a
lock, retries past other writers, and runs that a killed process left RUNNING. With
rnnbench/tracking.py (runs, their names and tags, the UI and the server), the only modules that
import mlflow.

The embedded store is SQLite at the repository root, by absolute path, so runs from DVC's
temporary experiment folders (.dvc/tmp/exps/...) land in the same database; MLFLOW_TRACKING_URI
overrides it (an `mlflow server` shared by a team or by remote workers).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rnnbench.config import UserError
from rnnbench.io import project_root

# MLflow 3's UI opens an experiment by its kind (the experiment tag mlflow.experimentKind): with
# none set it guesses GenAI and shows traces; this one is model training.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")

def tracking_uri(root: Path | None = None) -> str:
    env = os.environ.get("MLFLOW_TRACKING_URI")
    return env if env else f"sqlite:///{(root or project_root()) / 'mlflow.db'}"


class TrackingError(UserError):
    """The tracking store cannot be used: named, before any work is done."""


REACH_TIMEOUT_S = 8.0  # the whole command fails within 10 s


def check_reachable(uri: str | None = None, timeout: float = REACH_TIMEOUT_S) -> str:
    """Fail within `timeout` seconds, naming the URI, when runs could not be recorded: a SQLite
    store whose folder is missing or not writable (MLflow would create the folder: we never
    create folders the user did not ask for), a file store (a plain path or file: URI), which
    MLflow 3 deprecates and refuses unless MLFLOW_ALLOW_FILE_STORE is set, and then the same
    checks, or a server that refuses, never answers, or is not an MLflow server. Commands call
    it before any work; returns the URI."""
    uri = uri or tracking_uri()
    path = sqlite_path(uri)
    if path is None:
        path = file_store_path(uri)
        if path is not None:
            _check_file_store(uri, path)
    if path is not None:  # a local store: its folder must exist and be writable
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


def _check_file_store(uri: str, path: Path) -> None:
    if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("true", "1"):
        raise TrackingError(f"tracking store {uri}: a file store, which MLflow deprecates and "
                            f"refuses (use sqlite:///{path.absolute().parent / 'mlflow.db'}, or "
                            "set MLFLOW_ALLOW_FILE_STORE=true to keep it)")
    if path.exists() and not path.is_dir():
        raise TrackingError(f"tracking store {uri}: {path} is not a folder")


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


def file_store_path(uri: str) -> Path | None:
    """The folder of a file store, which MLflow reads from a plain path or a file: URI; None for
    any other URI, the bare word `databricks` included (MLflow's name for a Databricks
    workspace's tracking server, not a folder)."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parts = urlparse(uri)
    if parts.scheme == "file":
        return Path(url2pathname(parts.path))
    return Path(uri) if not parts.scheme and uri != "databricks" else None


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
