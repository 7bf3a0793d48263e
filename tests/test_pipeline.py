"""End to end: `dvc repro` on a tiny profile in a copy of the repository; the outputs, the
MLflow runs and the report must agree with each other, and DVC must re-run only what changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rnnbench.warm.client import ENV
from tests.conftest import ROOT, TINY, mlflow_runs, warm_server

GENERATED = ("data/", "results/", "reports/benchmark.md", "reports/figures/", "dvc.lock",
             "mlflow.db", "mlruns/")


def sh(cmd: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git copy of the project with a tiny params.yaml, and an env whose PATH has our venv."""
    dest = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for f in filter(None, files):
        if f.startswith(GENERATED) or not (ROOT / f).is_file():
            continue
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    from rnnbench.config import apply_overrides

    raw = yaml.safe_load((dest / "params.yaml").read_text())
    raw = apply_overrides(raw, TINY + ["grid.blocks.main={models: [rnn, gru, lecture_rnn], "
                                       "tasks: [sine]}",
                                       "grid.blocks.suite={models: [rnn, gru], "
                                       "tasks: [adding, chars]}",
                                       "grid.blocks.headline={models: [gru], tasks: [copy], "
                                       "seeds: [1]}",  # a block with its own seeds
                                       "grid.blocks.bidirectional={models: [bigru], "
                                       "tasks: [tagging]}", "models.bigru.hidden_size=8",
                                       "grid.blocks.seq2seq={models: [seq2seq_gru_attn], "
                                       "tasks: [reverse]}",
                                       "grid.blocks.one_to_many={models: [gru], "
                                       "tasks: [draw_digits]}",
                                       "grid.blocks.state_free={models: [mingru], "
                                       "tasks: [adding]}", "models.mingru.hidden_size=8",
                                       "experiment=tiny"])
    raw["studies"] = {"tiny": {  # one small study: two sigmas, the tiny adding task
        "kind": "sigma", "task": "adding", "models": ["rnn"], "seeds": [0],
        "x": "models.rnn.w_hh_scale",
        "variants": {"sigma=0.5": ["models.rnn.w_hh_scale=0.5"],
                     "sigma=3.0": ["models.rnn.w_hh_scale=3.0"]}}}
    (dest / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(dest)  # the copy's code, not the installed checkout's
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    sh(["git", "init", "-q"], dest, env)
    sh(git + ["add", "-A"], dest, env)
    sh(git + ["commit", "-qm", "tiny"], dest, env)
    with warm_server(dest / ".warm.sock"):  # stages start warm, as under `make run`
        env[ENV] = str(dest / ".warm.sock")
        sh(["dvc", "repro", "-q"], dest, env)
        yield dest, env


def test_outputs_mlflow_and_report_agree(repo):
    dest, _ = repo
    expected = {("main", "rnn", "sine"), ("main", "gru", "sine"), ("main", "lecture_rnn", "sine"),
                ("suite", "rnn", "adding"), ("suite", "gru", "adding"), ("suite", "rnn", "chars"),
                ("suite", "gru", "chars"), ("bidirectional", "bigru", "tagging"),
                ("seq2seq", "seq2seq_gru_attn", "reverse"), ("one_to_many", "gru", "draw_digits"),
                ("state_free", "mingru", "adding")}
    metrics, blocks = {}, {}
    for block, model, task in expected:
        out = dest / "results" / "train" / block / model / task / "seed0"
        assert (out / "model.pt").exists() and (out / "curves.csv").exists()
        assert (dest / "results" / "metrics" / block / model / task / "seed0.json").exists()
        metrics[model, task] = json.loads((out / "result.json").read_text())
        blocks[model, task] = block
    for task in ("adding", "sine"):
        meta = json.loads((dest / "data" / task / "meta.json").read_text())
        assert all(m["data_sha256"] == meta["sha256"] for (_, t), m in metrics.items() if t == task)

    _, runs = mlflow_runs(f"sqlite:///{dest.resolve()}/mlflow.db")
    train_runs = [r for r in runs if r.data.tags.get("dvc_stage", "").startswith("train")]
    # one MLflow run per (model, task, seed): the headline block adds gru on copy, seed 1
    assert len(train_runs) == len(expected) + 1
    assert (dest / "results" / "metrics" / "headline" / "gru" / "copy" / "seed1.json").exists()
    by_id = {r.info.run_id: r for r in runs}
    for (model, task), m in metrics.items():
        run = by_id[m["mlflow_run_id"]]
        assert run.data.tags["dvc_stage"] == m["stage"]
        assert m["stage"] == f"train@{blocks[model, task]}"
        assert run.data.tags["block"] == blocks[model, task]
        assert run.data.metrics[f"test_{m['metric']}"] == pytest.approx(m["test"][m["metric"]])
        assert run.info.status == ("FINISHED" if m["status"] == "ok" else "FAILED")
        assert run.info.artifact_uri.startswith((dest.resolve() / "mlruns").as_uri())

    speed = json.loads((dest / "results" / "speed" / "speed.json").read_text())
    assert {c["family"] for c in speed["configs"]} == {"rnn", "gru"}
    assert run_ids_of(speed) <= set(by_id)  # the speed runs are in the same store

    report = (dest / "reports" / "benchmark.md").read_text()
    for (model, _), m in metrics.items():
        assert f"| {model} | {m['test'][m['metric']]:.4g} |" in report
    assert (dest / "reports" / "figures" / "curves_adding.png").exists()
    assert "## Gradient flow through time" in report and "## Speed" in report
    assert (dest / "reports" / "figures" / "decay_adding.png").exists()
    summary = json.loads((dest / "results" / "study" / "tiny" / "summary.json").read_text())
    assert len(summary["runs"]) == 2 and {r["mlflow_run_id"] for r in summary["runs"]} <= set(by_id)
    assert "## Controlled experiments" in report
    assert "### One input, a sequence out: the one-to-many shape" in report
    assert (dest / "reports" / "figures" / "lengths_adding.png").exists()


def run_ids_of(speed: dict) -> set[str]:
    return set(speed["mlflow_runs"].values())


def test_dvc_knows_what_changed(repo):
    dest, env = repo
    assert "Data and pipelines are up to date." in sh(["dvc", "repro"], dest, env)
    raw = yaml.safe_load((dest / "params.yaml").read_text())
    raw["models"]["gru"]["hidden_size"] = 6
    (dest / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    changed = set(json.loads(sh(["dvc", "status", "--json"], dest, env)))
    # every grid block (a block reads the whole models section: DVC cannot list its own
    # presets), and the study stages: a study's variants may name any preset
    assert changed == {"train@main", "train@suite", "train@headline", "train@bidirectional",
                       "train@seq2seq", "train@one_to_many", "train@state_free", "study@tiny"}
    raw["models"]["gru"]["hidden_size"] = 8
    (dest / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert json.loads(sh(["dvc", "status", "--json"], dest, env)) == {}


def test_editing_a_metric_function_makes_its_train_stages_stale(repo):
    """Code a stage runs is one of its deps: a changed metric leaves no stale result unseen."""
    dest, env = repo
    source = dest / "rnnbench" / "tasks" / "adding.py"
    original = source.read_text()
    edited = original.replace('return {"loss": mse, "mse": mse}',
                              'return {"loss": mse, "mse": mse * 1.0}')
    assert edited != original
    source.write_text(edited)
    try:
        changed = json.loads(sh(["dvc", "status", "--json"], dest, env))
        assert {f"train@{b}" for b in ("main", "suite", "headline")} <= set(changed)
        assert "changed deps" in json.dumps(changed["train@suite"])
        assert all(n.startswith(("train", "data@", "study@", "speed", "report"))
                   for n in changed)
    finally:
        source.write_text(original)
    assert json.loads(sh(["dvc", "status", "--json"], dest, env)) == {}


def test_metrics_plots_and_experiments(repo):
    dest, env = repo
    shown = sh(["dvc", "metrics", "show", "--json"], dest, env)
    assert "results/metrics/suite/gru/adding/seed0.json" in shown
    files = next(iter(json.loads(shown).values()))["data"]  # the workspace
    assert all(isinstance(v, int | float) for f in files.values() for v in f["data"].values())
    assert len({k for f in files.values() for k in f["data"]}) <= 9  # a table a terminal holds
    table = sh(["dvc", "metrics", "show"], dest, env)
    assert max(map(len, table.splitlines())) <= 160, table
    plots = json.loads(sh(["dvc", "plots", "show", "--json"], dest, env))
    assert not plots.get("errors"), plots["errors"]
    assert {"reports/plots/curves/adding.csv", "reports/plots/decay/adding.csv",
            "reports/plots/speed/train_step.csv"} <= set(plots["data"])
    sh(["dvc", "plots", "show", "-o", "plots_html"], dest, env)
    assert (dest / "plots_html" / "index.html").stat().st_size > 1000
    assert (dest / "reports" / "benchmark.html").read_text().startswith("<!DOCTYPE html>")
    # one block's models: only that block's stage and the report run again
    out = sh(["dvc", "exp", "run", "-S", "grid.blocks.main.models=[rnn, gru]"], dest, env)
    assert "Running stage 'train@main'" in out and "Running stage 'report'" in out
    assert "Running stage 'train@suite'" not in out and "Running stage 'data@sine'" not in out
    exps = json.loads(sh(["dvc", "exp", "show", "--json"], dest, env))
    models = [e["data"]["params"]["params.yaml"]["data"]["grid"]["blocks"]["main"]["models"]
              for rev in exps for e in (rev.get("experiments") or []) for e in e["revs"]]
    assert ["rnn", "gru"] in models
