"""Grid blocks (the train@<block> stages): every run of a block, on parallel workers, the same
numbers as one at a time, written whole, and never over what rnnbench did not write."""

from __future__ import annotations

import json

import pytest

from rnnbench.config import ConfigError
from rnnbench.io import OutputError
from rnnbench.training.block import run_block
from rnnbench.training.schema import RunScalars
from tests.conftest import ROOT, TINY, mlflow_runs

BLOCK = [*TINY, "grid.blocks.tiny={models: [rnn, gru], tasks: [adding], seeds: [7, 8]}",
         "models.rnn.hidden_size=8", "models.gru.hidden_size=8"]
RUNS = [f"{m}/adding/seed{s}" for m in ("rnn", "gru") for s in (7, 8)]


def _run(tmp_path, processes: int) -> dict[str, dict]:
    out, metrics = tmp_path / f"p{processes}" / "runs", tmp_path / f"p{processes}" / "metrics"
    folders = run_block(ROOT / "params.yaml", [*BLOCK, f"grid.processes={processes}"], "tiny",
                        out, metrics, data=None)
    assert folders == RUNS
    results = {}
    for f in folders:
        scalars = json.loads((metrics / f"{f}.json").read_text())
        RunScalars.model_validate(scalars)
        assert not (out / f / "metrics.json").exists()  # it lives in the metrics folder only
        results[f] = {**json.loads((out / f / "result.json").read_text()), "scalars": scalars}
    return results


def test_a_block_on_two_workers_gives_the_results_of_one(tmp_path):
    one, two = _run(tmp_path, 1), _run(tmp_path, 2)
    for f in RUNS:
        assert one[f]["test"] == two[f]["test"] and one[f]["steps"] == two[f]["steps"]
        assert one[f]["scalars"]["test"] == two[f]["scalars"]["test"]
    _, runs = mlflow_runs()
    assert sorted(r.data.tags["block_processes"] for r in runs) == ["1"] * 4 + ["2"] * 4
    assert {r.data.tags["block"] for r in runs} == {"tiny"}


def test_an_unknown_block_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^grid.blocks: no block 'tinny' \(blocks: main, "):
        run_block(ROOT / "params.yaml", BLOCK, "tinny", tmp_path / "r", tmp_path / "m", None)


def test_a_device_the_runs_cannot_have_is_one_line_before_any_worker(tmp_path, monkeypatch):
    import torch

    import rnnbench.training.block as block

    if torch.cuda.is_available():
        pytest.skip("CUDA is present: the device can be had")

    def no_workers(*_a, **_k):
        raise AssertionError("workers started")

    monkeypatch.setattr(block, "run_jobs", no_workers)
    with pytest.raises(ConfigError, match=r"^\S*params.yaml \(with --set\): train.device = "
                                          r"'cuda': no CUDA device"):
        run_block(ROOT / "params.yaml", [*BLOCK, "train.device=cuda"], "tiny",
                  tmp_path / "r", tmp_path / "m", None)
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()
    _, runs = mlflow_runs()
    assert runs == []  # no run started, none recorded FAILED


def test_a_metrics_folder_of_the_users_is_refused_before_any_run(tmp_path):
    metrics = tmp_path / "m"
    metrics.mkdir()
    (metrics / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="files rnnbench did not write"):
        run_block(ROOT / "params.yaml", BLOCK, "tiny", tmp_path / "r", metrics, None)
    assert (metrics / "notes.txt").read_text() == "mine" and not (tmp_path / "r").exists()
    _, runs = mlflow_runs()
    assert runs == []


def test_a_failed_run_leaves_the_previous_results_of_the_block(tmp_path, monkeypatch):
    import rnnbench.training.run as run

    out, metrics = tmp_path / "r", tmp_path / "m"
    run_block(ROOT / "params.yaml", [*BLOCK, "grid.processes=1"], "tiny", out, metrics, None)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    calls = []

    def second_fails(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", "model.pt")
        return original(*a, **k)

    original = run.torch.save
    monkeypatch.setattr(run.torch, "save", second_fails)
    with pytest.raises(OSError):
        run_block(ROOT / "params.yaml", [*BLOCK, "grid.processes=1"], "tiny", out, metrics, None)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
