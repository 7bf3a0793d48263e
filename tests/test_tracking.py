"""MLflow tracking: the store's location, batched logging, run status."""

from __future__ import annotations

import pytest

from rnnbench.io import project_root
from rnnbench.store import tracking_uri
from rnnbench.tracking import Tracker, flatten
from tests.conftest import mlflow_runs


def test_store_is_sqlite_at_the_root_by_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    sub = tmp_path / "pipelines"
    sub.mkdir()
    assert project_root(sub) == tmp_path.resolve()
    assert tracking_uri(project_root(sub)) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5555")
    assert tracking_uri(tmp_path) == "http://127.0.0.1:5555"


def test_dvc_temporary_experiment_folders_log_to_the_outer_repository(tmp_path):
    inner = tmp_path / ".dvc" / "tmp" / "exps" / "tmpabc123" / "pipelines"
    inner.mkdir(parents=True)
    (inner.parent / "dvc.yaml").write_text("stages: {}\n")
    assert project_root(inner) == tmp_path.resolve()


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_run_records_params_tags_metric_series_and_status(tmp_path):
    with Tracker("exp", "m/t/seed0", {"task": "t"}, {"train": {"lr": 0.1}, "seed": 0},
                 root=tmp_path) as t:
        t.log_series({"train_loss": [float(i) for i in range(2500)]}, first_step=1)
        t.log_metrics({"val_mse": 0.5}, step=7)
    client, runs = mlflow_runs()
    (run,) = runs
    assert run.info.status == "FINISHED" and run.info.run_name == "m/t/seed0"
    assert run.data.params == {"train.lr": "0.1", "seed": "0"}
    assert run.data.tags["task"] == "t" and "git_commit" in run.data.tags
    assert "version.torch" in run.data.tags
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert len(history) == 2500 and history[-1].step == 2500 and history[-1].value == 2499.0


def test_a_failed_run_is_marked_failed_with_its_reason(tmp_path):
    t = Tracker("exp", "diverged", {}, {}, root=tmp_path)
    t.end(failed=True, reason="non-finite training loss (nan) at step 3")
    with pytest.raises(ZeroDivisionError), Tracker("exp", "bug", {}, {}, root=tmp_path):
        1 / 0  # noqa: B018
    _, runs = mlflow_runs()
    by_name = {r.info.run_name: r for r in runs}
    assert by_name["diverged"].info.status == "FAILED"
    assert by_name["diverged"].data.tags["failure_reason"].startswith("non-finite")
    assert by_name["bug"].info.status == "FAILED"
    assert "ZeroDivisionError" in by_name["bug"].data.tags["failure_reason"]


def test_run_names_and_groups_say_what_a_row_is(monkeypatch):
    from rnnbench.tracking import run_group, run_name

    assert run_name("rnn", "adding", 0, {}) == "rnn/adding/seed0"
    study = {"study": "sigma", "variant": "σ=0.5, no clipping"}
    assert run_name("rnn", "adding", 0, study) == "sigma: σ=0.5, no clipping · rnn/adding/seed0"
    assert run_name("rnn", "adding", 1, {"sweep": "lr"}) == "lr · rnn/adding/seed1"
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    assert run_group(study, "study@sigma", "abcdef0123") == "study sigma"
    assert run_group({"sweep": "lr"}, "sweep", "abcdef0123") == "sweep lr"
    assert run_group({}, "cli", "abcdef0123") == "cli"
    assert run_group({}, "train@rnn-adding-0", "abcdef0123") == "pipeline abcdef01"
    monkeypatch.setenv("DVC_EXP_NAME", "tight-lr")
    assert run_group({}, "train@rnn-adding-0", "abcdef0123") == "pipeline abcdef01 exp tight-lr"


def test_an_experiment_made_before_kinds_gets_its_kind(tmp_path):
    from mlflow.tracking import MlflowClient

    from rnnbench.store import ensure_experiment

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    c = MlflowClient(tracking_uri=uri)
    old = c.create_experiment("old")
    assert "mlflow.experimentKind" not in c.get_experiment(old).tags
    assert ensure_experiment("old", uri) == old
    assert c.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"
    new = ensure_experiment("new", uri)
    assert c.get_experiment(new).tags["mlflow.experimentKind"] == "custom_model_development"


def test_compare_prints_the_selected_runs_as_a_table(capsys):
    from rnnbench.cli import main
    from rnnbench.tracking import Tracker

    ids = {}
    for model, mse, group in (("lstm", 0.002, "study sigma"), ("gru", 0.15, "study sigma"),
                              ("rnn", 0.17, "pipeline abc exp tight-lr")):
        tags = {"task": "adding", "model": model, "seed": "0"}
        tags |= {"study": "sigma"} if group.startswith("study") else {}
        with Tracker("cmp", f"{model}/adding/seed0", tags, {"seed": 0}, source="cli") as t:
            t.set_tags({"run_group": group})
            t.log_metrics({"test_mse": mse, "solved": float(mse < 0.01), "n_params": 1200.0,
                           "train_time_s": 2.5})
        ids[model] = t.run_id
    assert main(["compare", "--experiment", "cmp", "--study", "sigma"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| run | name | group | status | test_mse | solved | params | train s |"
    assert out[2] == f"| `{ids['lstm'][:8]}` | lstm/adding/seed0 | study sigma | FINISHED " \
                     "| 0.002 | 1 | 1,200 | 2.5 |"
    assert len(out) == 4 + 2 and out[-1] == "2 run(s) of experiment 'cmp'"
    assert main(["compare", "--experiment", "cmp", "--exp", "tight-lr"]) == 0
    assert "| rnn/adding/seed0 |" in capsys.readouterr().out
    assert main(["compare", "--experiment", "cmp", "--run", ids["gru"][:8]]) == 0
    shown = capsys.readouterr().out
    assert "gru/adding/seed0" in shown and "lstm/adding" not in shown
    assert main(["compare", "--experiment", "cmp", "--run", "ffffffff0"]) == 2
    assert capsys.readouterr().err.strip() == \
        "rnnbench: error: compare: no run with id 'ffffffff0' in 'cmp' matching the selection"
    assert main(["compare", "--experiment", "nope"]) == 2
    assert "no MLflow experiment 'nope'" in capsys.readouterr().err
    assert main(["compare", "--experiment", "cmp", "--model", "rnn", "--model", "gru"]) == 0
    shown = capsys.readouterr().out
    assert "rnn/adding" in shown and "gru/adding" in shown and "lstm/adding" not in shown
    assert main(["compare", "--experiment", "cmp", "--filter", "tags.model ~ 'x'"]) == 2
    assert capsys.readouterr().err.startswith("rnnbench: error: compare: filter ")


def test_the_ui_gives_older_experiments_their_kind_before_it_starts(monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    from rnnbench import tracking

    c = MlflowClient(tracking_uri=tracking_uri())  # not mlflow's global URI
    old = c.create_experiment("made-before-kinds")
    started = []
    monkeypatch.setattr(tracking.subprocess, "call", lambda cmd: started.append(cmd) or 0)
    assert tracking.run_ui(5999) == 0
    assert c.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"
    assert started and started[0][:2] == ["mlflow", "ui"] and "5999" in started[0]
    assert f"made-before-kinds: http://127.0.0.1:5999/#/experiments/{old}?workflowType=" \
           "machine_learning" in capsys.readouterr().out
