"""Result files go through one schema on both sides: a writer cannot add a field the readers
do not know, and a reader names the file, key and value of a file that does not match."""

from __future__ import annotations

import json

import pytest

from rnnbench.io import ResultError, read_result, write_result
from rnnbench.speed.schema import SpeedResult, TimerCheck
from rnnbench.study.schema import StudySummary
from rnnbench.training.schema import RunResult
from tests.conftest import complete_metrics

RUN = complete_metrics({"task": "adding", "model": "gru", "family": "gru", "seed": 0,
                        "status": "ok", "metric": "mse", "higher_is_better": False,
                        "test": {"mse": 0.01}, "baseline": {"name": "predict 1", "mse": 1 / 6},
                        "solved": True, "facts": {"gated": True},
                        "model_config": {"family": "gru", "hidden_size": 8}})


def test_a_complete_run_round_trips(tmp_path):
    write_result(tmp_path / "result.json", RunResult, RUN)
    assert read_result(tmp_path / "result.json", RunResult) == RUN


def test_the_writer_refuses_an_undeclared_field(tmp_path):
    with pytest.raises(ResultError, match=r"result.json \(as written\): extra: unknown key"):
        write_result(tmp_path / "result.json", RunResult, RUN | {"extra": 1})
    assert not (tmp_path / "result.json").exists()


@pytest.mark.parametrize("change,message", [
    ({"solved": "yes"}, "solved = 'yes': Input should be a valid boolean"),
    ({"status": "done"}, "status = 'done': Input should be 'ok' or 'diverged'"),
    ({"test": {"mse": "low"}}, "test.mse = 'low': Input should be a valid number"),
])
def test_the_reader_names_file_key_and_value(tmp_path, change, message):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(RUN | change))
    with pytest.raises(ResultError) as err:
        read_result(path, RunResult)
    assert str(err.value) == f"{path}: {message}"


def test_a_missing_key_or_broken_json_is_named(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({k: v for k, v in RUN.items() if k != "data_sha256"}))
    with pytest.raises(ResultError, match="data_sha256: required key is missing"):
        read_result(path, RunResult)
    path.write_text("{")
    with pytest.raises(ResultError, match="not a JSON result file"):
        read_result(path, RunResult)


def test_the_report_command_fails_in_one_line_on_a_bad_result(tmp_path, capsys):
    from rnnbench.cli import main

    d = tmp_path / "train" / "gru" / "adding" / "seed0"
    d.mkdir(parents=True)
    (d / "result.json").write_text(json.dumps(RUN | {"n_params": 1.5}))
    status = main(["report", "--results", str(tmp_path / "train"), "--out-outside", "--out",
                   str(tmp_path / "reports")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "n_params = 1.5" in err[0]
    assert not (tmp_path / "reports").exists()


def test_speed_and_study_schemas_check_their_records():
    check = {"key": "k", "quantity": "train_step", "ours_ms": 1.0, "timer_ms": 1.5,
             "ratio": 0.67, "pairs": 8, "tolerance": 0.1, "ok": False}
    assert not TimerCheck.model_validate(check).ok
    with pytest.raises(ValueError, match="ok"):
        TimerCheck.model_validate({k: v for k, v in check.items() if k != "ok"})
    with pytest.raises(ValueError, match="schema_version"):
        SpeedResult.model_validate({"schema_version": 1})
    with pytest.raises(ValueError, match="runs"):
        StudySummary.model_validate({"schema_version": 1, "study": "s", "kind": "sigma",
                                     "task": "adding", "x": None, "models": [], "seeds": [],
                                     "params_path": "p", "stage": "s", "wall_time_s": 1.0,
                                     "processes": 1, "variants": []})


def test_the_dvc_metrics_file_is_the_scalars_of_the_record(tmp_path):
    from rnnbench.training.run import scalar_metrics
    from rnnbench.training.schema import RunScalars

    scalars = scalar_metrics(RUN)
    write_result(tmp_path / "metrics.json", RunScalars, scalars)
    assert scalars["test"] == 0.01 and scalars["solved"] is True
    with pytest.raises(ResultError, match="config: unknown key"):
        write_result(tmp_path / "metrics.json", RunScalars, scalars | {"config": {}})
