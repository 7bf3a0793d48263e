"""params.yaml validation: every malformed input fails at once, in one line naming the file,
the key path and the value, with exit status 2, no MLflow run and no output written."""

from __future__ import annotations

import shutil

import pytest
import yaml

from rnnbench.cli import main
from rnnbench.config import ConfigError, parse_override
from rnnbench.params import load_params
from tests.conftest import mlflow_runs

BAD_OVERRIDES = [
    ("train.lr=abc", "train.lr = 'abc'"),
    ("train.lr=-0.1", "train.lr = -0.1"),
    ("train.lrr=0.1", "train.lrr: unknown key"),
    ("train.clip=maybe", "train.clip = 'maybe'"),
    ("models.lstm.hidden_size=-4", "models.lstm.hidden_size = -4"),
    ("models.gru.num_layers=0", "models.gru.num_layers = 0"),
    ("models.gru.family=transformer", "models.gru.family = 'transformer'"),
    ("models.gru.forget_bias=1.0", "models.gru.forget_bias: unknown key"),
    ("models.bad-name.family=rnn", "models.bad-name"),
    ("tasks.adding.seq_len=1", "tasks.adding.seq_len = 1: too short for the adding task"),
    ("tasks.copy.delay=0", "tasks.copy.delay = 0: too short for the copy task"),
    ("tasks.sine.window=95", "tasks.sine.window = 95"),
    ("tasks.addng.seq_len=50", "tasks.addng: unknown key"),
    ("grid.blocks.main.models=[rnn, transformer]",
     "grid.blocks.main.models.1 = 'transformer': unknown model"),
    ("grid.blocks.main.tasks=[adding, translation]", "grid.blocks.main.tasks.1 = 'translation'"),
    ("grid.seeds=[-1]", "grid.seeds.0 = -1"),
    ("grid.processes=0", "grid.processes = 0"),
    ("grid.blocks={}", "grid.blocks"),
    ("grid.blocks.main.tasks=[adding]", "grid.blocks.headline: trains numba_rnn on adding with "
                                        "seed 0, as grid.blocks.main does (one block per run"),
    ("tasks.adding.n_train=0", "tasks.adding.n_train = 0"),
    ("experiment=", "experiment = ''"),
]


@pytest.mark.parametrize("override,expected", BAD_OVERRIDES)
def test_bad_override_is_one_clear_line(override, expected, params_path):
    with pytest.raises(ConfigError) as info:
        load_params(params_path, [override])
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{params_path} (with --set): ")
    assert expected in msg


@pytest.mark.parametrize("edit,expected", [
    (lambda p: p["train"].update(batch_size="big"), "train.batch_size = 'big'"),
    (lambda p: p.update(extra_section={}), "extra_section: unknown key"),
    (lambda p: p["models"]["lstm"].pop("family"), "models.lstm.family: required key is missing"),
    (lambda p: p.pop("grid"), "grid: required key is missing"),
])
def test_bad_file_names_file_key_and_value(tmp_path, params_path, edit, expected):
    raw = yaml.safe_load(params_path.read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=None) as info:
        load_params(path)
    assert str(info.value) == f"{path}: {expected}" or str(info.value).startswith(
        f"{path}: {expected}")


def test_unparseable_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"params.yaml: line \d+: not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_params(tmp_path / "nope.yaml")


def test_override_syntax():
    assert parse_override("train.lr=0.01") == (["train", "lr"], 0.01)
    assert parse_override("grid.seeds=[0, 1]") == (["grid", "seeds"], [0, 1])
    with pytest.raises(ConfigError, match="expected key.path=value"):
        parse_override("train.lr")


def test_train_overrides_merge_per_task(params_path):
    params = load_params(params_path, ["tasks.sine.train.batch_size=4", "train.batch_size=32"])
    assert params.train.with_overrides(params.task("sine").train).batch_size == 4
    assert params.train.with_overrides(params.task("adding").train).batch_size == 32


def test_cli_fails_before_any_work(tmp_path, params_path, monkeypatch, capsys,
                                   _private_mlflow):
    monkeypatch.chdir(tmp_path)
    shutil.copy(params_path, tmp_path / "params.yaml")
    out = tmp_path / "out"
    code = main(["train", "--task", "adding", "--model", "lstm", "--out", str(out),
                 "--set", "models.lstm.hidden_size=-4"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0
    assert err == ("rnnbench: error: params.yaml (with --set): models.lstm.hidden_size = -4: "
                   "Input should be greater than 0")
    assert not out.exists()
    assert not (tmp_path / "mlflow.db").exists()
    _, runs = mlflow_runs()
    assert runs == []


def test_unknown_model_or_task_on_command_line(tmp_path, params_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(params_path, tmp_path / "params.yaml")
    assert main(["train", "--task", "adding", "--model", "transformer"]) == 2
    assert "model 'transformer' is not defined in params" in capsys.readouterr().err
    assert main(["train", "--task", "translation", "--model", "rnn"]) == 2
    assert "task 'translation' is not configured" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
