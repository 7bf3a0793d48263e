"""From real tiny runs to the report: every run records its train-split metrics, the same
weights at 2T and 4T and its keep gates; a depth and an activation study record what their
rules read; the report shows the new claims, their study tables and the length figure."""

from __future__ import annotations

import json

import pytest

from rnnbench.params import load_params
from rnnbench.report.build import build_report
from rnnbench.study.run import run_study
from rnnbench.training.run import run_training
from tests.conftest import TINY
from tests.test_study import TINY as STUDY_TINY
from tests.test_study import write_params

DRAW = ["tasks.draw_digits.train.max_steps=10", "tasks.draw_digits.train.eval_every=5"]  # past TINY


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("claims")
    params = load_params("params.yaml", TINY + DRAW)
    for model in ("lstm", "gru"):
        for task in ("adding", "draw_digits"):
            run_training(params, task, model, 0, tmp / "train" / model / task / "seed0")
    studies = {
        "depth": {"kind": "depth", "task": "adding", "models": ["lstm"], "seeds": [0, 1],
                  "x": "models.{model}.num_layers", "common": STUDY_TINY,
                  "variants": {"1 layer": ["models.lstm.num_layers=1"],
                               "2 layers": ["models.lstm.num_layers=2"],
                               "2 layers, equal size": ["models.lstm.num_layers=2",
                                                        "models.lstm.param_budget=400"]}},
        "act": {"kind": "activation", "task": "adding", "models": ["rnn"], "seeds": [0],
                "x": "models.rnn.w_hh_scale", "common": STUDY_TINY,
                "variants": {"tanh": ["models.rnn.w_hh_scale=1.0"],
                             "relu": ["models.rnn.w_hh_scale=1.0",
                                      "models.rnn.nonlinearity=relu"]}}}
    path = write_params(tmp / "p", studies)
    summaries = {name: run_study(path, name, tmp / "study" / name) for name in studies}
    report = build_report(tmp / "train", tmp / "reports", studies_dir=tmp / "study")
    return tmp, summaries, report.read_text(encoding="utf-8")


def test_runs_record_what_the_new_rules_read(built):
    tmp, summaries, _ = built
    m = json.loads((tmp / "train" / "lstm" / "adding" / "seed0" / "result.json").read_text())
    assert m["train_eval"]["rows"] == 64 and m["definition"].startswith("Arjovsky")
    assert m["lengths"]["same_parameters"] and m["lengths"]["trained"] == 10
    assert [p["length"] for p in m["lengths"]["points"]] == [20, 40]
    assert m["gates"]["cell"] == "lstm" and "l0_fwd" in m["gates"]["layers"]
    d = json.loads((tmp / "train" / "gru" / "draw_digits" / "seed0" / "result.json")
                   .read_text())
    assert d["lengths"] is None and d["gates"] is None and d["steps"] == 10
    runs = summaries["depth"]["runs"]
    assert {r["facts"]["cell"] for r in runs} == {"lstm"}
    assert {r["x_value"] for r in runs} == {1, 2}
    eq = [r for r in runs if r["model_config"]["param_budget"] == 400]
    assert eq and abs(eq[0]["n_params"] - 400) < 100
    assert all(r["train_metric"] is not None and r["best_val_metric"] is not None for r in runs)


def test_the_report_shows_every_new_claim_with_a_verdict(built):
    tmp, _, text = built
    for title in ("LSTM and GRU usually perform about the same",
                  "Model size does not grow with input length",
                  "An RNN processes inputs of any length",
                  "One input, a sequence out: the one-to-many shape",
                  "LSTM: with f = 1 and i = 0 a cell keeps its content indefinitely",
                  "Deeper (stacked) RNNs perform better",
                  "LSTM, having more parameters, overfits small datasets more easily",
                  "tanh is used to keep the gradient from exploding"):
        section = text.split(f"### {title}")[1].split("###")[0]
        assert "**Verdict: " in section, title
    assert "**Verdict: holds**" in text.split("### Model size does not grow")[1].split("###")[0]
    assert "![adding: metric against evaluation length](figures/lengths_adding.png)" in text
    assert (tmp / "reports" / "figures" / "lengths_adding.png").stat().st_size > 1000
    assert "## Study `depth`: stacked layers at equal width and at equal parameter count" in text
    assert "| lstm | equal size | 2 |" in text
    assert "| 1 | relu | ok 1/1 |" in text
