"""MLflow runs: a training run's lifetime (Tracker), its name, tags and group, searches and
downloads for the report and `compare`, the UI and the tracking server's command line. Where the
store is and how it is opened: rnnbench/store.py; the two are the only modules that import
mlflow.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from rnnbench.config import UserError
from rnnbench.io import git_state, project_root
from rnnbench.store import client, ensure_experiment, mark_stale_runs, tracking_uri

METRIC_BATCH = 1000  # MLflow accepts at most 1000 metrics per log_batch call
# MLflow 3.17's UI takes the kind from its GenAI / Model training switch when it shows one (the
# default: GenAI, remembered per browser); this query opens an experiment in model training.
UI_WORKFLOW = "workflowType=machine_learning"
DIGEST_CHARS = 36  # the longest dataset digest MLflow stores: a prefix of the data's sha256


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


def final_runs(experiment: str, sweep: str) -> dict[str, dict[str, str]]:
    """config_hash -> {"run_id", "sweep", "run_group"} of a run whose result is final: FINISHED,
    or FAILED as a diverged training (a deterministic result, not an error), whatever its tags.
    Of several runs of one hash, one of the sweep `sweep` when there is one."""
    out: dict[str, dict[str, str]] = {}
    for r in _runs(experiment):
        tags = r.data.tags
        h = tags.get("config_hash")
        final = r.info.status == "FINISHED" or (r.info.status == "FAILED"
                                                and tags.get("status") == "diverged")
        if not (h and final):
            continue
        if h not in out or (tags.get("sweep") == sweep and out[h]["sweep"] != sweep):
            out[h] = {"run_id": r.info.run_id, "sweep": tags.get("sweep"),
                      "run_group": tags.get("run_group", "unknown")}
    return out


def record_failure(experiment: str, run_name: str, tags: dict[str, str], reason: str) -> str:
    """A FAILED run that says why it never trained (an invalid configuration); its id."""
    c = client()
    run = c.create_run(ensure_experiment(experiment), run_name=run_name,
                       tags={**tags, "failure_reason": reason[:5000]})
    c.set_terminated(run.info.run_id, status="FAILED")
    return run.info.run_id


RESULT_FILES = ("result.json", "metrics.json", "curves.csv", "probes.json", "showcase.json")


def download_results(runs: list[tuple[str, Path, str]]) -> None:
    """For the report: each (run id, folder, model) run's result files into its folder, its
    result.json naming the model `model` (a sweep's trial: with its variant)."""
    import json

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    c = client()
    for run_id, folder, model in runs:
        have = {a.path for a in c.list_artifacts(run_id)}
        if "result.json" not in have:
            raise UserError(f"run {run_id} of {tracking_uri()}: no result.json among its "
                            "artifacts")
        folder.mkdir(parents=True, exist_ok=True)
        for name in RESULT_FILES:
            if name in have:
                c.download_artifacts(run_id, name, str(folder))
        metrics = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        metrics["model"] = model
        (folder / "result.json").write_text(json.dumps(metrics), encoding="utf-8")


def server_command(backend: str, artifacts: Path, host: str, port: int,
                   workers: int = 1) -> list[str]:
    """`mlflow server` on `backend` (sqlite:///... or postgresql://...), serving artifacts
    from `artifacts` over HTTP, so remote workers need no shared filesystem."""
    return ["mlflow", "server", "--backend-store-uri", backend, "--artifacts-destination",
            Path(artifacts).resolve().as_uri(), "--serve-artifacts", "--host", host, "--port",
            str(port), "--workers", str(workers)]
