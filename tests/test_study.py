"""Studies: sets of tracked runs, validated up front, summarised, and reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rnnbench.config import ConfigError
from rnnbench.report.study import (
    clip_mode_verdict,
    clipping_verdict,
    memory_table,
    memory_verdict,
    sigma_verdict,
    study_claims,
    study_section,
)
from rnnbench.report.verdict import render_claim
from rnnbench.study.run import load_studies, run_study, validate_study
from rnnbench.study.schema import StudyConfig, slug
from tests.conftest import ROOT, family_facts, mlflow_runs

TINY = ["tasks.adding.seq_len=8", "tasks.adding.n_train=128", "tasks.adding.n_val=32",
        "tasks.adding.n_test=32", "tasks.adding.train.max_steps=20",
        "tasks.adding.train.eval_every=10", "models.rnn.hidden_size=8",
        "models.gru.hidden_size=8", "models.lstm.hidden_size=8"]


def write_params(tmp_path: Path, studies: dict) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["studies"] = studies
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def study(kind="clip_mode", variants=None, **kw) -> dict:
    return {"kind": kind, "task": "adding", "models": kw.pop("models", ["rnn"]),
            "seeds": kw.pop("seeds", [0]), "common": TINY,
            "variants": variants or {"norm": ["train.clip=norm"], "value": ["train.clip=value"]},
            **kw}


# ---------------------------------------------------------------- config and validation
def test_study_config_rejects_unknown_keys_missing_x_and_clashing_folders():
    with pytest.raises(ValueError, match="extra"):
        StudyConfig.model_validate({**study(), "colour": "red"})
    with pytest.raises(ValueError, match="x: required for kind 'memory'"):
        StudyConfig.model_validate(study("memory"))
    with pytest.raises(ValueError, match="already used"):
        StudyConfig.model_validate(study(variants={"a b": [], "a-b": []}))
    assert slug("sigma=0.5, no clip") == "sigma-0.5-no-clip"


def test_a_bad_override_fails_before_any_run(tmp_path):
    bad = study("sigma", x="models.rnn.w_hh_scale",
                variants={"sigma=0.5": ["models.rnn.w_hh_scale=0.5"],
                          "sigma<0": ["train.clip=none", "models.rnn.w_hh_scale=-1"]})
    path = write_params(tmp_path, {"s": bad, "typo": study(variants={"v": ["train.cilp=none"]})})
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as err:
        run_study(path, "s", out)
    msg = str(err.value)
    assert "\n" not in msg
    assert "studies.s.variants.sigma<0: override 'models.rnn.w_hh_scale=-1'" in msg
    assert "models.rnn.w_hh_scale = -1" in msg  # load_params' own reason, key and value
    with pytest.raises(ConfigError, match=r"studies.typo.variants.v: override 'train.cilp=none'"
                                          r".*train.cilp: unknown key"):
        run_study(path, "typo", out)
    with pytest.raises(ConfigError, match=r"studies.s.x = 'tasks.adding.nope': no such key"):
        validate_study(write_params(tmp_path, {"s": {**bad, "x": "tasks.adding.nope",
                                                      "variants": {"a": []}}}), "s")
    with pytest.raises(ConfigError, match="studies.nope: no such study"):
        run_study(path, "nope", out)
    assert not out.exists()
    _, runs = mlflow_runs()
    assert runs == []


def test_models_that_cannot_serve_the_task_are_refused(tmp_path):
    path = write_params(tmp_path, {"s": study(models=["rnn", "ghost"])})
    with pytest.raises(ConfigError, match="studies.s.models: unknown model 'ghost'"):
        validate_study(path, "s")
    assert list(load_studies(path)) == ["s"]


# ---------------------------------------------------------------- running
def test_run_study_writes_a_folder_per_run_and_a_summary_that_agrees(tmp_path):
    spec = study(models=["rnn", "gru"], seeds=[0, 1])
    out = tmp_path / "out"
    summary = run_study(write_params(tmp_path, {"clips": spec}), "clips", out, stage="study")
    folders = sorted(str(p.parent.relative_to(out)) for p in out.glob("*/*/*/metrics.json"))
    assert folders == sorted(f"{v}/{m}/seed{s}" for v in ("norm", "value")
                             for m in ("rnn", "gru") for s in (0, 1))
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert summary["schema_version"] == 1 and summary["kind"] == "clip_mode"
    assert [v["label"] for v in summary["variants"]] == ["norm", "value"]
    assert [(r["variant"], r["model"], r["seed"]) for r in summary["runs"]] == \
        [(v, m, s) for v in ("norm", "value") for m in ("rnn", "gru") for s in (0, 1)]
    client, runs = mlflow_runs()
    by_id = {r.info.run_id: r for r in runs}
    assert len(by_id) == 8
    for r in summary["runs"]:
        m = json.loads((out / r["path"] / "result.json").read_text())
        assert r["status"] == m["status"] == "ok" and r["steps"] == m["steps"] == 20
        assert r["test_metric"] == pytest.approx(m["test"]["mse"])
        assert r["baseline"] == pytest.approx(1 / 6) and r["solved"] == m["solved"]
        assert r["mlflow_run_id"] == m["mlflow_run_id"]
        assert r["train"]["clip"] == r["variant"]
        tags = by_id[r["mlflow_run_id"]].data.tags
        assert (tags["study"], tags["variant"], tags["kind"]) == ("clips", r["variant"],
                                                                  "clip_mode")
        assert tags["dvc_stage"] == "study"
        init = r["grad"]["init"]  # params.yaml probes at init and at the end
        assert init["decay_factor"] > 0 and set(init["horizon"]) == {"0.001", "1e-06"}
        assert r["grad"]["trained"]["train_grad_norm"]["steps"] == 10
        assert r["probes"][0]["step"] == 0
        assert len(r["probes"][0]["gradients"]["final"]["curves"]["l0_fwd"]["ratio"]) == 8
    lines = study_section(summary, tmp_path / "figures")
    assert any(line.startswith("| norm | norm ≤ 1 | rnn | ok 2/2 |") for line in lines)
    assert "**Verdict: not observed: no run without clipping to compare with**" in lines


def test_a_failure_midway_leaves_the_previous_study_intact(tmp_path, monkeypatch):
    import rnnbench.training.run

    out = tmp_path / "out"
    params = write_params(tmp_path, {"s": study()})
    run_study(params, "s", out)
    before = (out / "summary.json").read_text()
    real, calls = rnnbench.training.run.run_training, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(rnnbench.training.run, "run_training", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        run_study(params, "s", out)
    assert (out / "summary.json").read_text() == before
    assert (out / "norm" / "rnn" / "seed0" / "metrics.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_exploding_sigma_study_records_the_divergence_and_reports_it(tmp_path):
    spec = study("sigma", x="models.{model}.w_hh_scale",
                 variants={"sigma=0.5, clip": ["models.rnn.w_hh_scale=0.5", "train.clip=norm"],
                           "sigma=50, no clip": ["models.rnn.w_hh_scale=50", "train.clip=none",
                                                 "train.optimizer=sgd", "train.lr=1e6"]})
    out = tmp_path / "out"
    summary = run_study(write_params(tmp_path, {"sig": spec}), "sig", out)
    ok, bad = summary["runs"]
    assert (ok["status"], ok["x_value"], bad["x_value"]) == ("ok", 0.5, 50)
    assert bad["status"] == "diverged" and bad["diverged_at_step"] >= 1
    assert bad["reason"].startswith("non-finite") and bad["test_metric"] is None
    assert ok["grad"]["init"]["sigma_max"] == pytest.approx(0.5, rel=1e-4)
    assert ok["grad"]["init"]["decay_factor"] < 1 < bad["grad"]["init"]["sigma_max"]
    figures = tmp_path / "report" / "figures"
    text = "\n".join(study_section(summary, figures))
    for name in ("sig_init_gradients.png", "sig_metric.png"):
        assert (figures / name).stat().st_size > 1000
        assert f"](figures/{name})" in text
    assert "| 50 | none | rnn | ok 0/1, diverged 1 |" in text
    assert "Clipping the gradient tames explosion" in text


def test_runs_in_parallel_processes_give_the_sequential_results(tmp_path):
    spec = study(seeds=[0, 1], variants={"none": ["train.clip=none"],
                                         "norm": ["train.clip=norm"]})
    volatile = ("mlflow_run_id", "train_time_s", "time_to_solve_s")
    summaries = {}
    for n in (1, 2):
        path = write_params(tmp_path / str(n), {"clips": {**spec, "processes": n}})
        summaries[n] = run_study(path, "clips", tmp_path / str(n) / "out", stage="study")
    one, two = ([{k: v for k, v in r.items() if k not in volatile} for r in summaries[n]["runs"]]
                for n in (1, 2))
    assert len(one) == 4 and one == two  # same records, in the same order
    assert [summaries[n]["processes"] for n in (1, 2)] == [1, 2]
    _, runs = mlflow_runs()
    assert len({r.info.run_id for r in runs}) == 8 and all(
        r.info.status == "FINISHED" for r in runs)
    # runs that shared the machine say so beside their times
    assert sorted(r.data.tags["study_processes"] for r in runs) == ["1"] * 4 + ["2"] * 4


# ---------------------------------------------------------------- report rules
def run(x, model="rnn", seed=0, solved=False, status="ok", family=None, **kw) -> dict:
    """A hand-made summary run with the fields the report reads."""
    return {"variant": f"T={x}", "x_value": x, "model": model, "family": family or model,
            "seed": seed, "status": status, "solved": solved, "diverged_at_step": None,
            "test_metric": None if status != "ok" else (0.001 if solved else 0.16),
            "baseline": 1 / 6, "metric": "mse", "higher_is_better": False,
            "solved_threshold": 0.01, "steps_to_solve": None, "clipped_fraction": 0.0,
            "train": {"clip": "norm", "clip_value": 1.0}, "model_config": {},
            "grad": {"loss": "final", "init": None, "trained": None}, "probes": [],
            "facts": family_facts(family or model), **kw}


def test_longest_t_solved_needs_at_least_half_the_seeds():
    runs = ([run(10, seed=s, solved=True) for s in (0, 1)]
            + [run(25, seed=0, solved=True), run(25, seed=1)]  # 1 of 2: counts
            + [run(50, seed=s) for s in (0, 1)]
            + [run(100, seed=0, solved=True), run(100, seed=1), run(100, seed=2)])  # 1 of 3
    rows, longest = memory_table(runs)
    assert longest == 25
    assert [(r["x"], r["solved"], r["n"]) for r in rows] == [(10, 2, 2), (25, 1, 2), (50, 0, 2),
                                                             (100, 1, 3)]
    assert memory_table([run(10, status="diverged"), run(10, seed=1)])[1] is None
    gated = [run(x, model="gru", solved=True) for x in (10, 25, 50, 100)]
    assert memory_verdict(runs + gated).verdict_text == "holds"
    assert memory_verdict(runs + [run(10, model="gru", solved=True)]).verdict_text == \
        "not observed"
    # a state-free gated cell counts as gated through the facts its runs record
    gated_facts = {"gated": True, "state_free": True}
    mingru = [run(x, model="mingru", solved=x <= 25, facts=gated_facts) for x in (10, 25, 50)]
    assert memory_verdict(runs + gated + mingru).verdict_text == \
        "holds only under a condition: not for every gated model"
    assert memory_verdict(runs + [run(10, model="mingru", facts=gated_facts)]).verdict_text \
        == "not observed"


def test_the_memory_section_renders_tables_figure_and_citations(tmp_path):
    runs = [run(x, seed=s, solved=x < 50) for x in (10, 25, 50) for s in (0, 1)]
    runs += [run(x, model="lstm", seed=s, solved=True) for x in (10, 25, 50) for s in (0, 1)]
    summary = {"study": "mem", "kind": "memory", "task": "adding", "x": "tasks.adding.seq_len",
               "models": ["rnn", "lstm"], "seeds": [0, 1], "runs": runs,
               "variants": [{"label": f"T={x}", "overrides": []} for x in (10, 25, 50)]}
    text = "\n".join(study_section(summary, tmp_path / "figures"))
    assert (tmp_path / "figures" / "mem_memory.png").exists()
    assert "](figures/mem_memory.png)" in text
    assert "**rnn**: longest T solved **25**" in text
    assert "**lstm**: longest T solved **50**" in text
    assert "| 50 | 0/2 | 0% | 0.16 ± 0 | 0.1667 | 0 |" in text
    assert "Arjovsky, Shah & Bengio (2016)" in text and "Bai, Kolter & Koltun" in text
    assert "**Verdict: holds**" in text


def test_the_sigma_rule_on_hand_made_probe_figures():
    holds = sigma_verdict([(0.5, 0.4), (0.9, 0.8), (1.0, 0.95), (1.5, 1.2), (3.0, 1.3)])
    assert holds.verdict_text == "holds" and "σ=0.5 0.4" in holds.number
    verdict = sigma_verdict([(0.5, 0.4), (1.5, 1.1), (3.0, 0.3)]).verdict_text  # saturation
    assert verdict.startswith("holds only under a condition") and "σ ∈ {1.5}" in verdict
    assert sigma_verdict([(0.5, 1.2), (3.0, 0.5)]).verdict_text == "not observed"
    assert sigma_verdict([(1.0, 0.9), (0.5, None)]).verdict_text == "not observed"
    verdict = sigma_verdict([(0.5, 0.4)]).verdict_text
    assert verdict.startswith("holds only under a condition") and "not probed" in verdict


def test_the_clipping_rule_pairs_runs_that_differ_only_in_clipping():
    none = {"clip": "none", "clip_value": 1.0}
    runs = [run(3.0, status="diverged", train=none, diverged_at_step=7), run(3.0),
            run(1.5, status="diverged", train=none), run(1.5, status="diverged"),
            run(0.5, train=none), run(0.5)]
    c = clipping_verdict(runs)
    verdict, lines = c.verdict_text, c.evidence
    assert verdict == "holds only under a condition: 1 of 2 diverging runs tamed"
    assert c.number == "1 of 2 diverging runs tamed"
    assert len(lines) == 2 and "σ=3, rnn, seed 0: diverged without clipping at step 7" in lines[1]
    assert clipping_verdict(runs[:2]).verdict_text == "holds"
    assert clipping_verdict(runs[4:]).verdict_text.startswith("not observed: no run diverged")
    assert clipping_verdict(runs[1:2]).verdict_text.startswith(
        "not observed: no run without clipping")
    claims = "\n".join(line for c in study_claims({"kind": "sigma", "runs": runs[:2]})
                       for line in render_claim(c))
    assert "**Verdict: holds**" in claims  # the clipping claim
    # kept finite, but 12x the baseline MSE: not tamed
    far = [runs[0], run(3.0, test_metric=2.0)]
    c = clipping_verdict(far)
    verdict, lines = c.verdict_text, c.evidence
    assert verdict == "not observed" and "kept finite but far past the baseline" in lines[0]
    tamed = clipping_verdict([runs[0], run(3.0, test_metric=0.24)])  # < 1.5 x 1/6
    assert tamed.verdict_text == "holds"


def test_the_clip_mode_rule_judges_each_mode_against_no_clipping():
    none = {"clip": "none", "clip_value": 1.0}
    value = {"clip": "value", "clip_value": 1.0}
    runs = [run(None, variant=v, train=t, **kw) for v, t, kw in (
        ("no clipping", none, {"status": "diverged", "diverged_at_step": 27}),
        ("global norm", {"clip": "norm", "clip_value": 1.0}, {"test_metric": 0.17}),
        ("by value", value, {"test_metric": 3.0}))]
    c = clip_mode_verdict(runs)
    verdict, lines = c.verdict_text, c.evidence
    assert verdict == "holds only under a condition: only when clipping by norm"
    assert lines == ["- rnn, seed 0: diverged without clipping at step 27; norm ≤ 1: trained "
                     "to the end, test 0.17 (baseline 0.1667); value ≤ 1: trained to the end, "
                     "test 3 (baseline 0.1667), kept finite but far past the baseline"]
    runs[2]["test_metric"] = 0.16
    assert clip_mode_verdict(runs).verdict_text == "holds"
    claims = "\n".join(line for c in study_claims({"kind": "clip_mode", "runs": runs})
                       for line in render_claim(c))
    assert "Clipping by value tames explosion as clipping by global norm does" in claims
