"""MLflow tracking: the only module that imports mlflow.

The embedded store is SQLite at the repository root, by absolute path, so runs from DVC's
temporary experiment folders (.dvc/tmp/exps/...) land in the same database; MLFLOW_TRACKING_URI
overrides it (an `mlflow server` shared by a team or by remote workers).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from rnnbench.io import project_root

METRIC_BATCH = 1000  # MLflow accepts at most 1000 metrics per log_batch call


def tracking_uri(root: Path | None = None) -> str:
    env = os.environ.get("MLFLOW_TRACKING_URI")
    return env if env else f"sqlite:///{(root or project_root()) / 'mlflow.db'}"


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
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


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


class Tracker:
    """One MLflow run: `with Tracker(...) as t: t.log_metrics(...)`; ends FINISHED or FAILED."""

    def __init__(self, experiment: str, run_name: str, tags: dict[str, str],
                 params: dict[str, Any], root: Path | None = None):
        import mlflow
        from mlflow.tracking import MlflowClient

        self.root = root or project_root()
        self.uri = tracking_uri(self.root)
        self.client = MlflowClient(tracking_uri=self.uri)
        self._mlflow_entities = mlflow.entities
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            # A SQLite store keeps its artifacts beside it, by absolute path (a server decides
            # for itself); MLflow's default would be ./mlruns of whatever folder runs the stage.
            location = (Path(self.uri.removeprefix("sqlite:///")).parent / "mlruns").as_uri() \
                if self.uri.startswith("sqlite:///") else None
            exp_id = self.client.create_experiment(experiment, artifact_location=location)
        else:
            exp_id = exp.experiment_id
        all_tags = {**tags, "git_commit": git_commit(self.root),
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

    def set_tags(self, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))

    def log_artifact(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def end(self, failed: bool = False, reason: str | None = None) -> None:
        if reason:
            self.client.set_tag(self.run_id, "failure_reason", reason)
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:  # a bug: record it, then let it propagate
            self.end(failed=True, reason=f"{exc_type.__name__}: {exc}"[:5000])
        elif self.client.get_run(self.run_id).info.status == "RUNNING":
            self.end()


def run_ui(port: int = 5000) -> int:
    """Serve the MLflow UI for this project's store on 127.0.0.1."""
    cmd = ["mlflow", "ui", "--backend-store-uri", tracking_uri(), "--host", "127.0.0.1",
           "--port", str(port)]
    return subprocess.call(cmd)
