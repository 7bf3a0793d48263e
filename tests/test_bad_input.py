"""Bad input found in review, each one clear line naming what is wrong and where, exit status 2,
no traceback: YAML nested past Python's recursion limit, a params "file" without a size (a FIFO,
/dev/zero), a data record whose fields are of the wrong JSON type, train.device=cuda that
cannot be had, and a tracking URI naming a file store."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import torch

from rnnbench.config import MAX_YAML_BYTES, MAX_YAML_DEPTH, ConfigError, parse_yaml, read_yaml_file
from tests.conftest import ROOT, TINY
from tests.test_reliability import run_cli


def sets(*prefixes: str) -> list[str]:
    """TINY's overrides of these tasks and models, as --set arguments."""
    return [a for s in TINY if s.startswith(prefixes) for a in ("--set", s)]


def train_argv(tmp_path: Path, model: str = "rnn", *extra: str) -> list[str]:
    return ["train", "--task", "adding", "--model", model, "--out", str(tmp_path / "out"),
            "--out-outside", *sets("tasks.adding", f"models.{model}"), *extra]


def one_line_error(argv: list[str]) -> str:
    """The CLI's error line: status 2, one line on stderr, no traceback."""
    status, err = run_cli(argv)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, (status, err[-2000:])
    assert lines[0].startswith("rnnbench: error: ")
    return lines[0]


# ------------------------------------------------------------------ 1: deep YAML
@pytest.mark.parametrize("depth", [2000, 10000])
@pytest.mark.parametrize("form", ["open", "closed", "mapping"])
def test_yaml_nested_past_the_recursion_limit_is_one_line(depth, form, tmp_path):
    text = {"open": "[" * depth, "closed": "[" * depth + "]" * depth,
            "mapping": "{a: " * depth + "1" + "}" * depth}[form]
    path = tmp_path / "deep.yaml"
    path.write_text(text + "\n")
    line = one_line_error(["list", "--params", str(path)])
    assert line == f"rnnbench: error: {path}: line 1: nested deeper than {MAX_YAML_DEPTH} levels"


def test_a_deep_override_is_one_line():
    line = one_line_error(["list", "--params", str(ROOT / "params.yaml"),
                           "--set", "train.lr=" + "[" * 5000])
    assert "--set 'train.lr=[[[" in line and f"nested deeper than {MAX_YAML_DEPTH}" in line


def test_the_depth_limit_is_the_same_before_and_after_aliases():
    """The composer's bound and the one over expanded aliases count levels alike."""
    deepest = "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1)
    assert parse_yaml(deepest, "t") is not None
    with pytest.raises(ConfigError, match="nested deeper"):
        parse_yaml("[" + deepest + "]", "t")
    inner = "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH
    assert parse_yaml(f"a: &a {inner}\nb: *a\n", "t") is not None
    with pytest.raises(ConfigError, match="nested deeper"):  # deep only once expanded
        parse_yaml(f"a: &a {inner}\nb: [*a]\n", "t")


# ------------------------------------------------------------------ 2: files without a size
def fifo(tmp_path: Path, data: bytes) -> Path:
    """A FIFO a thread writes `data` into (a reader may stop early: the pipe then breaks)."""
    path = tmp_path / "fifo.yaml"
    os.mkfifo(path)

    def write():
        try:
            with open(path, "wb") as f:
                f.write(data)
        except BrokenPipeError:
            pass

    threading.Thread(target=write, daemon=True).start()
    return path


def test_dev_zero_is_refused_in_one_line():
    line = one_line_error(["list", "--params", "/dev/zero"])
    assert line == f"rnnbench: error: /dev/zero: larger than {MAX_YAML_BYTES} bytes; " \
                   "not a params file"


def test_a_fifo_larger_than_the_limit_is_refused_in_one_line(tmp_path):
    path = fifo(tmp_path, b"a: " + b"x" * (2 * MAX_YAML_BYTES))
    line = one_line_error(["list", "--params", str(path)])
    assert line == f"rnnbench: error: {path}: larger than {MAX_YAML_BYTES} bytes; " \
                   "not a params file"


def test_a_fifo_of_a_params_file_is_read(tmp_path):
    """A FIFO is no mistake in itself: --params <(...) is one."""
    text = (ROOT / "params.yaml").read_bytes()
    assert read_yaml_file(fifo(tmp_path, text))["experiment"]


def test_a_file_at_the_limit_is_read_and_one_byte_more_is_not(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * (MAX_YAML_BYTES - 6) + b"\n")
    assert read_yaml_file(path) == {"a": 1}
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(ConfigError, match="larger than"):
        read_yaml_file(path)


# ------------------------------------------------------------------ 3: a malformed data record
@pytest.fixture
def data_dir(tiny_params, tmp_path) -> Path:
    from rnnbench.tasks.data import write_data

    folder = tmp_path / "data" / "adding"
    write_data(tiny_params, "adding", folder)
    return folder


def rewrite_meta(folder: Path, change) -> Path:
    path = folder / "meta.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return path


def without(key):
    return lambda meta: {k: v for k, v in meta.items() if k != key}


@pytest.mark.parametrize(("change", "why"), [
    (lambda m: {**m, "config": [1, 2]}, "key 'config' is an array, expected an object"),
    (lambda m: {**m, "config": "adding"}, "key 'config' is a string, expected an object"),
    (lambda m: {**m, "config": None}, "key 'config' is null, expected an object"),
    (lambda m: {**m, "config": 3}, "key 'config' is a number, expected an object"),
    (without("config"), "key 'config' is missing, expected an object"),
    (lambda m: {**m, "sha256": {}}, "key 'sha256' is an object, expected a string"),
    (lambda m: [m], "not a data record (an array, not an object)"),
    (lambda m: "meta", "not a data record (a string, not an object)"),
    (lambda m: 7, "not a data record (a number, not an object)"),
])
def test_a_data_record_of_the_wrong_shape_is_one_line(change, why, data_dir, tiny_params):
    from rnnbench.tasks.data import DataMismatch, read_data

    path = rewrite_meta(data_dir, change)
    with pytest.raises(DataMismatch) as exc:
        read_data(tiny_params, "adding", data_dir)
    assert str(exc.value) == f"{path}: {why}; regenerate it (dvc repro)"


def test_a_data_record_nested_too_deep_is_one_line(data_dir, tiny_params):
    from rnnbench.tasks.data import DataMismatch, read_data

    (data_dir / "meta.json").write_text("[" * 100_000)
    with pytest.raises(DataMismatch, match=r"meta.json: not valid JSON \(nested too deep\)"):
        read_data(tiny_params, "adding", data_dir)


def test_train_on_a_record_whose_config_is_no_mapping_is_one_line(data_dir, tmp_path,
                                                                  _private_mlflow):
    path = rewrite_meta(data_dir, lambda m: {**m, "config": ["seq_len", 10]})
    line = one_line_error([*train_argv(tmp_path), "--data", str(data_dir)])
    assert line == f"rnnbench: error: {path}: key 'config' is an array, expected an object; " \
                   "regenerate it (dvc repro)"
    assert not (tmp_path / "out").exists() and not (_private_mlflow / "mlflow.db").exists()


# ------------------------------------------------------------------ 4: device=cuda
@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_cuda_device_names_the_key(tmp_path, _private_mlflow):
    line = one_line_error(train_argv(tmp_path, "rnn", "--set", "train.device=cuda"))
    assert line.startswith("rnnbench: error: params.yaml (with --set): train.device = 'cuda': "
                           "no CUDA device is available")
    assert line.endswith("; set train.device to auto or cpu")
    assert not (tmp_path / "out").exists() and not (_private_mlflow / "mlflow.db").exists()


def test_cuda_for_a_cpu_only_model_names_the_key(tmp_path, _private_mlflow):
    line = one_line_error(train_argv(tmp_path, "numba_rnn", "--set", "train.device=cuda"))
    assert line == "rnnbench: error: params.yaml (with --set): train.device = 'cuda': this " \
                   "model runs on the CPU only; set train.device to auto or cpu"
    assert not (tmp_path / "out").exists() and not (_private_mlflow / "mlflow.db").exists()


# ------------------------------------------------------------------ 5: file stores
@pytest.fixture
def no_file_store_opt_out(monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)


@pytest.mark.parametrize("form", ["path", "file URI", "relative path"])
def test_a_file_store_is_refused_naming_the_uri(form, tmp_path, monkeypatch,
                                                no_file_store_opt_out):
    from rnnbench.store import TrackingError, check_reachable

    monkeypatch.chdir(tmp_path)
    uri = {"path": str(tmp_path / "mlruns"), "file URI": (tmp_path / "mlruns").as_uri(),
           "relative path": "mlruns"}[form]
    with pytest.raises(TrackingError) as exc:
        check_reachable(uri)
    folder = Path(os.getcwd()) if form == "relative path" else tmp_path
    assert str(exc.value) == (
        f"tracking store {uri}: a file store, which MLflow deprecates and refuses (use "
        f"sqlite:///{folder / 'mlflow.db'}, or set MLFLOW_ALLOW_FILE_STORE=true to keep it)")
    assert list(tmp_path.iterdir()) == []


def test_only_paths_and_file_uris_are_file_stores(tmp_path):
    from rnnbench.store import file_store_path

    assert file_store_path("mlruns") == Path("mlruns")
    assert file_store_path((tmp_path / "m").as_uri()) == tmp_path / "m"
    for other in ("databricks", "databricks://profile", "http://127.0.0.1:5001",
                  "sqlite:///x/mlflow.db", "postgresql://u@h/db"):
        assert file_store_path(other) is None, other


@pytest.mark.parametrize("form", ["path", "file URI"])
def test_an_allowed_file_store_under_a_missing_folder_is_a_typo(form, tmp_path, monkeypatch):
    from rnnbench.store import TrackingError, check_reachable

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = tmp_path / "no" / "where" / "mlruns"
    uri = str(store) if form == "path" else store.as_uri()
    with pytest.raises(TrackingError) as exc:
        check_reachable(uri)
    assert str(exc.value) == (f"tracking store {uri}: folder {store.parent} does not exist "
                              "(create it, or set MLFLOW_TRACKING_URI)")
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrackingError, match="file: .*file is not a folder"):
        check_reachable((tmp_path / "file").as_uri())
    assert check_reachable(str(tmp_path / "mlruns")) == str(tmp_path / "mlruns")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing created


def test_train_with_a_file_store_fails_in_one_line_before_any_work(tmp_path, monkeypatch,
                                                                   no_file_store_opt_out):
    import rnnbench.training.run as run

    monkeypatch.setattr(run, "run_training", lambda *a, **k: pytest.fail("work started"))
    uri = str(tmp_path / "no" / "mlruns")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    line = one_line_error(train_argv(tmp_path))
    assert line.startswith(f"rnnbench: error: tracking store {uri}: a file store")
    assert list(tmp_path.iterdir()) == []
