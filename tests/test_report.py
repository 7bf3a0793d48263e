"""The report reads result files only, and its verdicts follow the stated rules."""

from __future__ import annotations

import json
from pathlib import Path

from rnnbench.models.families import FAMILIES
from rnnbench.report.build import build_report, load_results
from rnnbench.report.claims import against_baseline, gates_claim, numba_claim
from rnnbench.report.verdict import render_claim
from tests.conftest import complete_metrics

CLAIMS = {"adding": ["gates_long_range"], "sine": ["worked_example"]}


def facts(family: str) -> dict:
    cfg = FAMILIES[family].config(family=family)
    return FAMILIES[family].facts(cfg)


def result(model, family, task, mse, seed=0, status="ok", hidden=64):
    base = {"adding": {"name": "predict 1", "mse": 1 / 6},
            "sine": {"name": "mean", "mse": 0.7, "mse_last_value": 0.02,
                     "mse_noise_floor": 0.01}}[task]
    return {
        "task": task, "model": model, "family": family, "seed": seed, "status": status,
        "reason": None if status == "ok" else "non-finite training loss (nan) at step 3",
        "metric": "mse", "higher_is_better": False, "solved_threshold": 0.01,
        "test": {"mse": mse} if status == "ok" else {}, "val": {}, "baseline": base,
        "solved": status == "ok" and mse <= 0.01, "n_params": {"gru": 3, "lstm": 4}.get(family, 1),
        "train_time_s": 2.0, "steps": 100, "steps_to_solve": 50 if mse <= 0.01 else None,
        "time_to_solve_s": 1.0 if mse <= 0.01 else None,
        "device": "cpu", "dtype": "float32", "threads": {"torch_threads": 1},
        "data_sha256": "ab" * 32,
        "model_config": {"hidden_size": hidden, "num_layers": 1, "bidirectional": False,
                         "family": family},
        "task_config": {"seq_len": 100}, "facts": facts(family), "claims": CLAIMS[task],
    }


def write(root: Path, r: dict, curves: str = "epoch,step,val_mse\n1,10,0.2\n2,20,0.1\n"):
    d = root / r["model"] / r["task"] / f"seed{r['seed']}"
    d.mkdir(parents=True)
    (d / "result.json").write_text(json.dumps(complete_metrics(r)))
    (d / "curves.csv").write_text(curves)


def by_model(*runs):
    out = {}
    for r in runs:
        out.setdefault(r["model"], []).append(r)
    return out


def verdict(claim):
    return next(line for line in render_claim(claim) if line.startswith("**Verdict"))


def test_gates_claim_rules():
    holds = by_model(result("lstm", "lstm", "adding", 0.002), result("gru", "gru", "adding", 0.001),
                     result("rnn", "rnn", "adding", 0.17))
    assert verdict(gates_claim({'adding': holds})) == "**Verdict: holds**"
    partly = by_model(result("lstm", "lstm", "adding", 0.002),
                      result("gru", "gru", "adding", 0.15), result("rnn", "rnn", "adding", 0.17))
    assert "holds only under a condition" in verdict(gates_claim({'adding': partly}))
    vanilla_solves = by_model(result("lstm", "lstm", "adding", 0.002),
                              result("rnn", "rnn", "adding", 0.005))
    assert "holds only under a condition" not in verdict(gates_claim({'adding': vanilla_solves}))
    assert verdict(gates_claim({'adding': vanilla_solves})) == "**Verdict: not observed**"
    diverged = by_model(result("lstm", "lstm", "adding", 0.5, status="diverged"),
                        result("rnn", "rnn", "adding", 0.17))
    assert verdict(gates_claim({'adding': diverged})) == "**Verdict: not observed**"


def test_a_metric_past_the_baseline_is_called_worse_however_close():
    # MSE (lower is better) against 1/6: 0.17 is 2% worse, within the 5% band that counts as
    # "at" only on the better side
    assert against_baseline(0.17, 1 / 6, False) == "worse than the trivial baseline"
    assert against_baseline(0.21, 1 / 6, False) == "worse than the trivial baseline"
    assert against_baseline(0.16, 1 / 6, False) == "at the trivial baseline"
    assert against_baseline(0.05, 1 / 6, False) == "better than the trivial baseline"
    assert against_baseline(0.49, 0.5, True) == "worse than the trivial baseline"  # accuracy
    assert against_baseline(0.51, 0.5, True) == "at the trivial baseline"
    lines = gates_claim({"adding": by_model(result("rnn", "rnn", "adding", 0.17))}).evidence
    assert "worse than the trivial baseline" in lines[0] and "at the" not in lines[0]


def test_the_task_table_says_how_its_runs_stopped_and_which_model_was_tested():
    from rnnbench.report.build import stopping_line, task_table

    fixed = [{**result("gru", "gru", "adding", 0.1, seed=s), "early_stop": False,
              "keep_best": True, "stopped": "budget"} for s in (0, 1)]
    line = stopping_line(fixed)
    assert line == ("Training: a fixed budget (no stop at the threshold), the checkpoint with "
                    "the best validation metric tested (2 trained the whole budget).")
    early = {**result("rnn", "rnn", "adding", 0.005), "early_stop": True, "keep_best": False,
             "stopped": "solved"}
    both = stopping_line([*fixed, early])
    assert "stopping early once the validation metric reached the threshold, the last model " \
           "tested" in both and "1 stopped at the threshold" in both
    assert line in task_table(by_model(*fixed))
    assert stopping_line([result("rnn", "rnn", "adding", 0.1)]) == ""  # older records


def test_report_tables_agree_with_the_result_files(tmp_path):
    results = tmp_path / "results"
    for r in (result("lstm", "lstm", "adding", 0.002), result("lstm", "lstm", "adding", 0.004, 1),
              result("gru", "gru", "adding", 0.001), result("rnn", "rnn", "adding", 0.17),
              result("rnn", "rnn", "sine", 0.5, status="diverged")):
        write(results, r)
    assert len(load_results(results)) == 5
    path = build_report(results, tmp_path / "reports", title="T",
                        expected=[("rnn", "adding", 0), ("rnn", "copy", 0)])
    text = path.read_text()
    assert text.startswith("<!-- generated by rnnbench report")
    assert text.splitlines()[1] == "# T"
    assert "| lstm | 0.003 ± 0.0014 | 2/2 | 4 | 2.0 | 100 | 50 | 1.0 | ok |" in text
    assert "| rnn | 0.17 | 0/1 |" in text
    assert "rnn seed 0: **diverged** — non-finite training loss (nan) at step 3" in text
    assert "**Missing runs** (in the grid, no result file): rnn/copy/seed0" in text
    assert "**Verdict: holds**" in text
    assert "(0.75×)" in text  # the GRU/LSTM parameter ratio from the result files
    assert (tmp_path / "reports" / "figures" / "curves_adding.png").stat().st_size > 1000
    assert "![learning curves on adding](figures/curves_adding.png)" in text


def test_what_a_killed_stage_left_half_written_is_not_counted(tmp_path):
    results = tmp_path / "results"
    write(results / "headline", result("gru", "gru", "adding", 0.001))
    # a stage killed mid-block leaves its temporary sibling, runs and all
    write(results / ".headline.k3j9x2ab.tmp", result("gru", "gru", "adding", 0.5))
    write(results / "headline" / ".gru.tmp", result("gru", "gru", "adding", 0.4, seed=1))
    assert [r["test"]["mse"] for r in load_results(results)] == [0.001]


def test_numba_claim_compares_the_initial_gradient_curves():
    def with_curve(r, ratio):
        r["probes"] = [{"step": 0, "gradients": {"final": {"curves": {"l0_fwd":
                                                                      {"ratio": ratio}}}}}]
        return r

    t = with_curve(result("rnn", "rnn", "adding", 0.17), [1.0, 0.5, 0.25, None])
    n = with_curve(result("numba_rnn", "numba_rnn", "adding", 0.18), [1.0, 0.50001, 0.25, None])
    assert verdict(numba_claim({"adding": by_model(t, n)})) == "**Verdict: holds**"
    off = with_curve(result("numba_rnn", "numba_rnn", "adding", 0.17), [1.0, 0.5, 0.26, None])
    assert "not observed" in verdict(numba_claim({"adding": by_model(t, off)}))
    sine = [dict(r, task="sine") for r in (t, n)]
    mixed = {"adding": by_model(t, off), "sine": by_model(*sine)}
    assert "only under a condition: not on every task" in verdict(numba_claim(mixed))
    other = with_curve(result("numba_rnn", "numba_rnn", "adding", 0.17, hidden=32), [1.0])
    assert "not measured" in verdict(numba_claim({"adding": by_model(t, other)}))


def test_report_includes_probes_and_speed_when_present(tmp_path):
    results = tmp_path / "results"
    probe = {"step": 0, "checkpoint": 0.0, "cell": "rnn_tanh", "seq_len": 3, "batch": 2,
             "thresholds": [1e-3], "bound": {"applicable": False},
             "figures": {"final.l0_fwd.decay_factor": 0.5, "final.l0_fwd.horizon@0.001": 2},
             "gradients": {"final": {"curves": {"l0_fwd": {"ratio": [1.0, 0.5, 0.25]}}}}}
    for r in (result("rnn", "rnn", "adding", 0.17), result("gru", "gru", "adding", 0.001)):
        write(results, r)
        d = results / r["model"] / "adding" / "seed0"
        (d / "probes.json").write_text(json.dumps([probe]))
    from rnnbench.speed.run import run_speed
    from tests.test_speed import tiny_config

    run_speed(tiny_config(models=["rnn", "gru"]), tmp_path / "speed", "speedtest")
    text = build_report(results, tmp_path / "reports",
                        speed_json=tmp_path / "speed" / "speed.json").read_text()
    assert "## Gradient flow through time" in text
    assert "![gradient decay on adding](figures/decay_adding.png)" in text
    assert (tmp_path / "reports" / "figures" / "decay_adding.png").exists()
    assert "## Speed" in text
    # the speed run's record feeds the Environment, its grid the speed plot's data
    env = text.split("## Environment")[1].split("\n## ")[0]
    speed = json.loads((tmp_path / "speed" / "speed.json").read_text())
    assert f"{speed['environment']['cpu_count']} CPUs" in env
    assert f"torch {speed['environment']['torch']}" in env
    rows = (tmp_path / "reports" / "plots" / "speed" / "train_step.csv").read_text().splitlines()
    assert rows[0] == "seq_len,series,train_step_ms" and len(rows) == 1 + 2 * 2  # rnn, gru x T
    assert "MLflow runs of the speed benchmark: models/cpu `" in text
