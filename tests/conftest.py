from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tiny settings that keep a full training run to about a second.
TINY = [
    "tasks.adding.seq_len=10", "tasks.adding.n_train=256", "tasks.adding.n_val=64",
    "tasks.adding.n_test=64", "tasks.adding.train.max_steps=30",
    "tasks.copy.delay=3", "tasks.copy.n_train=256", "tasks.copy.n_val=64",
    "tasks.copy.n_test=64", "tasks.copy.train.max_steps=30",
    "tasks.sine.train.max_epochs=3",
    "tasks.chars.max_chars=60000", "tasks.chars.streams=8", "tasks.chars.train.max_steps=20",
    "tasks.tagging.n_train=256", "tasks.tagging.n_val=64", "tasks.tagging.n_test=64",
    "tasks.tagging.train.max_steps=20", "tasks.sentiment.n_train=256",
    "tasks.sentiment.n_val=64", "tasks.sentiment.n_test=64",
    "tasks.reverse.n_train=256", "tasks.reverse.n_val=64", "tasks.reverse.n_test=64",
    "tasks.reverse.max_len=6", "tasks.reverse.train.max_steps=20",
    "tasks.dates.n_train=256", "tasks.dates.n_val=64", "tasks.dates.n_test=64",
    "tasks.draw_digits.train.max_steps=20",
    "models.seq2seq_gru_attn.hidden_size=8",
    "models.rnn.hidden_size=8", "models.lstm.hidden_size=8", "models.gru.hidden_size=8",
    "models.lecture_rnn.hidden_size=8", "models.numba_rnn.hidden_size=8",
    "speed.models=[rnn, gru]", "speed.hidden=[8]", "speed.seq_len=[3, 6, 9]",
    "speed.layers=[1]", "speed.bidirectional=[false]", "speed.numba_grid=null",
    "speed.cached_start=false", "speed.warmup=1", "speed.repeats=2",
    "speed.min_sample_s=0.001", "speed.check_timer=1",
]


# Outcomes per test file (passed, failed, skipped), for a module that summarises what it ran.
OUTCOMES: dict[str, dict[str, int]] = {}


def pytest_runtest_logreport(report) -> None:
    if report.when == "call" or report.outcome != "passed":  # a failed setup or teardown too
        counts = OUTCOMES.setdefault(report.nodeid.split("::")[0],
                                     {"passed": 0, "failed": 0, "skipped": 0})
        counts[report.outcome] += 1


@pytest.fixture(autouse=True)
def _private_mlflow(tmp_path_factory, monkeypatch):
    """Every test logs to its own throwaway store, never the repository's mlflow.db."""
    store = tmp_path_factory.mktemp("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    yield store


@pytest.fixture
def params_path() -> Path:
    return ROOT / "params.yaml"


@pytest.fixture
def tiny_params(params_path):
    from rnnbench.params import load_params

    return load_params(params_path, TINY)


def mlflow_runs(uri: str | None = None):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri or os.environ["MLFLOW_TRACKING_URI"])
    runs = []
    for exp in client.search_experiments():
        runs += client.search_runs([exp.experiment_id])
    return client, runs


@contextmanager
def warm_server(sock: Path) -> Iterator[subprocess.Popen]:
    """`rnnbench warm` listening on `sock` (as `make run` starts it) until the block ends."""
    proc = subprocess.Popen([sys.executable, "-m", "rnnbench.cli", "warm", "--socket", str(sock)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not sock.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "warm server did not start"
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


RUN_DEFAULTS = {
    "schema_version": 1, "stage": "test", "mlflow_run_id": "0" * 32, "git_commit": "0" * 40,
    "reason": None,
    "diverged_at_step": None, "epochs": 1.0, "wall_time_s": 1.0, "steps_to_solve": None,
    "time_to_solve_s": None, "clipped_fraction": 0.0, "threads": {}, "compile_s": 0.0,
    "val": {}, "definition": "test fixture", "solved_threshold": None, "breakdowns": {},
    "train_eval": {}, "lengths": None, "gates": None, "claims": [], "task_config": {},
    "device": "cpu", "dtype": "float32", "data_sha256": "0" * 64, "n_params": 1,
    "train_time_s": 1.0, "steps": 1, "early_stop": False, "keep_best": False,
    "stopped": "budget", "best_step": None,
}


def complete_metrics(partial: dict) -> dict:
    """A hand-made metrics.json with the fields a test leaves out filled in, so that it matches
    the schema (rnnbench.training.schema.RunResult) the report reads it through."""
    return {**RUN_DEFAULTS, **partial}


STUDY_RUN_DEFAULTS = {
    "slug": "v", "path": "v/m/seed0", "mlflow_run_id": "0" * 32, "reason": None,
    "val_metric": None, "baselines": {}, "steps": 1, "time_to_solve_s": None,
    "train_time_s": 1.0, "n_params": 1, "train_metric": None, "best_val_metric": None,
}


def family_facts(family: str) -> dict:
    """The registry facts a run of `family` records (rnnbench.models.families)."""
    from rnnbench.models.families import FAMILIES

    return FAMILIES[family].facts(FAMILIES[family].config(family=family))


def complete_summary(partial: dict) -> dict:
    """A hand-made study summary.json completed to its schema (rnnbench.study.schema)."""
    runs = [{**STUDY_RUN_DEFAULTS, "facts": family_facts(r["family"]), **r}
            for r in partial.get("runs", [])]
    variants = [{"slug": v["label"], "x_value": None, **v} for v in partial.get("variants", [])]
    return {"schema_version": 1, "x": None, "params_path": "params.yaml", "stage": "test",
            "wall_time_s": 1.0, "processes": 1, **partial, "runs": runs, "variants": variants}
