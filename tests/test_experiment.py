"""One tracked run end to end: files, MLflow and data checks agree."""

from __future__ import annotations

import json
import math

import pytest

from rnnbench.tasks.data import DataMismatch, read_data, write_data
from rnnbench.training.run import run_training
from tests.conftest import mlflow_runs


def test_run_writes_outputs_that_agree_with_mlflow(tmp_path, tiny_params):
    write_data(tiny_params, "adding", tmp_path / "data")
    m = run_training(tiny_params, "adding", "gru", 0, tmp_path / "out",
                     data_dir=tmp_path / "data", stage="train@gru-adding-0")
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [".rnnbench-output", "curves.csv", "metrics.json", "model.pt", "probes.json",
                     "result.json", "showcase.json"]
    on_disk = json.loads((tmp_path / "out" / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(m))
    # DVC's metrics file: only the scalars compared across runs, as the record has them
    scalars = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(scalars) <= {"test", "solved", "steps", "solve_at", "train_s", "solve_s",
                            "params"}
    assert scalars["test"] == pytest.approx(m["test"]["mse"], rel=1e-5)
    assert scalars["steps"] == 30 and scalars["params"] == m["n_params"]
    assert all(isinstance(v, int | float) for v in scalars.values())
    assert m["status"] == "ok" and m["steps"] == 30 and m["baseline"]["mse"] == pytest.approx(1 / 6)
    client, runs = mlflow_runs()
    (run,) = runs
    assert run.info.run_id == m["mlflow_run_id"] and run.info.status == "FINISHED"
    assert run.data.tags["dvc_stage"] == "train@gru-adding-0"
    # as the MLflow UI shows it: a model-training experiment, a name, a source, a group, a dataset
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.info.run_name == "gru/adding/seed0"
    assert run.data.tags["mlflow.source.name"] == "train@gru-adding-0"
    assert run.data.tags["run_group"].startswith("pipeline ")
    (inp,) = run.inputs.dataset_inputs
    assert inp.dataset.name == "adding" and inp.dataset.digest == m["data_sha256"][:36]
    assert json.loads(inp.dataset.source)["sha256"] == m["data_sha256"]
    assert {t.key: t.value for t in inp.tags} == {"mlflow.data.context": "train"}
    assert run.data.tags["model"] == "gru" and run.data.tags["seed"] == "0"
    assert run.data.metrics["test_mse"] == pytest.approx(m["test"]["mse"])
    assert run.data.params["model.hidden_size"] == "8"
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 30
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"curves.csv", "metrics.json", "model.pt", "probes.json",
                         "result.json", "showcase.json"}
    lines = (tmp_path / "out" / "curves.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,step,train_time_s,train_loss,val_loss,val_mse")
    assert len(lines) == 1 + 1  # eval_every 50 > 30 steps: one validation, at the end


def test_a_diverged_run_is_recorded_and_does_not_raise(tmp_path, tiny_params):
    from rnnbench.params import load_params

    params = load_params("params.yaml", ["train.lr=1e6", "train.clip=none",
                                         "train.optimizer=sgd", "tasks.sine.train.lr=1e6"])
    m = run_training(params, "sine", "rnn", 0, tmp_path / "out")
    assert m["status"] == "diverged" and m["solved"] is False
    scalars = json.loads((tmp_path / "out" / "metrics.json").read_text())  # strict JSON: no NaN
    assert "test" not in scalars and scalars["solved"] is False
    assert m["reason"].startswith("non-finite")
    _, runs = mlflow_runs()
    assert runs[0].info.status == "FAILED"
    assert runs[0].data.tags["failure_reason"] == m["reason"]


def test_data_generated_with_other_params_is_refused(tmp_path, tiny_params):
    from rnnbench.params import load_params

    write_data(tiny_params, "adding", tmp_path / "data")
    changed = load_params("params.yaml", ["tasks.adding.seq_len=12"])
    with pytest.raises(DataMismatch, match=r"data/meta.json: .*tasks.adding.seq_len"):
        read_data(changed, "adding", tmp_path / "data")
    splits, meta = read_data(tiny_params, "adding", tmp_path / "data")
    assert meta["sizes"] == {"train": 256, "val": 64, "test": 64}


def test_a_failed_run_leaves_previous_results_intact(tmp_path, tiny_params, monkeypatch):
    out = tmp_path / "out"
    run_training(tiny_params, "sine", "rnn", 0, out)
    before = (out / "result.json").read_text()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr("rnnbench.training.run.write_json_atomic", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        run_training(tiny_params, "sine", "rnn", 1, out)
    assert (out / "result.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left behind


def test_probes_run_at_init_and_after_training(tmp_path, params_path):
    from rnnbench.params import load_params
    from tests.conftest import TINY

    params = load_params(params_path, TINY + ["models.numba_rnn.hidden_size=8"])
    m = run_training(params, "adding", "numba_rnn", 0, tmp_path / "out")
    probes = json.loads((tmp_path / "out" / "probes.json").read_text())
    assert [p["step"] for p in probes] == [0, m["steps"]]
    assert probes[0]["cell"] == "rnn_tanh" and probes[0]["figures"]["bound.holds"] is True


EVERY_TASK = ["sine", "adding", "copy", "chars", "digits", "sunspots", "co2", "sentiment",
              "tagging", "dates", "reverse", "draw_digits", "selective_copy"]


@pytest.mark.parametrize("mode", ["parallel", "numba"])
def test_a_state_free_model_trains_end_to_end_unprobed(tmp_path, params_path, mode):
    """minGRU through the same run as every model; the probes, which unroll a classic cell,
    leave it out, and its facts say what it is."""
    from rnnbench.params import load_params
    from tests.conftest import TINY

    params = load_params(params_path, TINY + ["models.mingru.hidden_size=8",
                                              f"models.mingru.mode={mode}"])
    m = run_training(params, "adding", "mingru", 0, tmp_path / "out")
    assert m["status"] == "ok" and m["steps"] > 0 and math.isfinite(m["test"]["mse"])
    assert m["facts"]["state_free"] and m["facts"]["classic"] == "gru"
    assert m["model_config"]["mode"] == mode and m["n_params"] == 2 * (2 * 8 + 8) + 8 + 1
    assert json.loads((tmp_path / "out" / "probes.json").read_text()) == []


@pytest.mark.parametrize("task", EVERY_TASK)
def test_every_task_trains_end_to_end(tmp_path, params_path, task):
    """A tiny tracked run of each task, from the data stage's files to metrics and MLflow."""
    from rnnbench.params import load_params
    from rnnbench.tasks.registry import TASKS
    from tests.conftest import TINY

    assert sorted(EVERY_TASK) == sorted(TASKS)  # a new task joins this test
    model = "seq2seq_gru_attn" if task in ("dates", "reverse") else "gru"
    params = load_params(params_path, TINY + [f"tasks.{task}.train.max_steps=6",
                                              f"tasks.{task}.train.eval_every=3"])
    write_data(params, task, tmp_path / "data")
    m = run_training(params, task, model, 0, tmp_path / "out", data_dir=tmp_path / "data")
    assert m["status"] == "ok" and m["steps"] == 6 and m["task"] == task
    value = m["test"][m["metric"]]
    assert math.isfinite(value) and m["baseline"]["name"]  # and a named trivial baseline
    assert m["solved"] == (value >= m["solved_threshold"] if m["higher_is_better"]
                           else value <= m["solved_threshold"])
    (run,) = mlflow_runs()[1]
    assert run.info.status == "FINISHED" and run.data.tags["task"] == task
    assert run.data.metrics[f"test_{m['metric']}"] == pytest.approx(value)
    assert m["train_eval"]["rows"] > 0 and math.isfinite(m["train_eval"][m["metric"]])
