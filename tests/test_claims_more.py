"""The rules of rnnbench/report/claims_more.py and compare.py on hand-made results, one test per
outcome each rule can give."""

from __future__ import annotations

import pytest

from rnnbench.models.families import FAMILIES
from rnnbench.report.claims_more import (
    any_length_claim,
    keep_gate_claim,
    lstm_gru_claim,
    one_to_many_claim,
    size_claim,
)
from rnnbench.report.compare import compare
from rnnbench.report.verdict import Verdict


def facts(family: str) -> dict:
    return FAMILIES[family].facts(FAMILIES[family].config(family=family))


def run(model, family, task, value, seed=0, *, metric="mse", higher=False, base=1.0,
        claims=(), hidden=64, budget=None, solved=None, **extra):
    return {"task": task, "model": model, "family": family, "seed": seed, "status": "ok",
            "metric": metric, "higher_is_better": higher, "test": {metric: value},
            "baseline": {"name": "trivial", metric: base}, "facts": facts(family),
            "solved": bool(solved), "n_params": 100, "claims": list(claims),
            "model_config": {"family": family, "hidden_size": hidden, "num_layers": 1,
                             "bidirectional": False, "param_budget": budget}, **extra}


def grouped(*runs):
    out: dict = {}
    for r in runs:
        out.setdefault(r["task"], {}).setdefault(r["model"], []).append(r)
    return out


# ---------------------------------------------------------------- compare
def test_compare_needs_the_difference_beyond_two_standard_errors_and_the_tolerance():
    assert compare([0.9, 0.92], [0.5, 0.52], True, 0.1).outcome == "better"
    assert compare([0.5, 0.52], [0.9, 0.92], True, 0.1).outcome == "worse"
    assert compare([0.9, 0.5], [0.6, 0.8], True, 0.1).outcome == "same"  # within the spread
    # consistent seeds, but the difference is under 5% of the distance from the baseline
    assert compare([0.900, 0.901], [0.890, 0.891], True, 0.1).outcome == "same"
    assert compare([0.9], [0.5, 0.52], True, 0.1).outcome == "unknown"
    assert compare([0.1, 0.1], [0.2, 0.2], False, 1.0).outcome == "better"  # lower is better
    assert compare([], [0.2], False, 1.0) is None
    # the text's sign says which side is better, whichever way the metric points
    assert "the first better by -0.4" in compare([0.5, 0.5], [0.9, 0.9], True, 0.1).text()
    assert "the first better by +0.1" in compare([0.1, 0.1], [0.2, 0.2], False, 1.0).text()


# ---------------------------------------------------------------- LSTM vs GRU
def pair(task, lstm_vals, gru_vals, base=1.0):
    return [*(run("lstm", "lstm", task, v, s, base=base) for s, v in enumerate(lstm_vals)),
            *(run("gru", "gru", task, v, s, base=base) for s, v in enumerate(gru_vals))]


def test_lstm_gru_about_the_same_on_most_tasks_holds():
    g = grouped(*pair("a", [0.10, 0.12], [0.11, 0.13]), *pair("b", [0.2, 0.3], [0.25, 0.2]))
    assert lstm_gru_claim(g, []).verdict == Verdict.HOLDS


def test_lstm_gru_differing_on_a_task_is_a_condition_naming_the_others():
    g = grouped(*pair("a", [0.10, 0.12], [0.11, 0.13]), *pair("b", [0.1, 0.1], [0.5, 0.51]))
    c = lstm_gru_claim(g, [])
    assert c.verdict == Verdict.CONDITION and c.detail == "about the same only on a"
    assert any("LSTM better" in line for line in c.evidence)


def test_lstm_gru_differing_everywhere_is_not_observed():
    g = grouped(*pair("a", [0.1, 0.1], [0.5, 0.51]))
    assert lstm_gru_claim(g, []).verdict == Verdict.NOT_OBSERVED


def test_lstm_gru_one_seed_or_nothing_learnt_is_not_measured():
    assert lstm_gru_claim(grouped(*pair("a", [0.1], [0.5])), []).verdict == Verdict.NOT_MEASURED
    nothing = lstm_gru_claim(grouped(*pair("a", [0.99, 1.0], [1.0, 0.995])), [])
    assert nothing.verdict == Verdict.NOT_MEASURED and "neither learnt" in nothing.evidence[0]


def test_lstm_gru_pairs_study_runs_by_variant_and_budget_not_width():
    def rec(model, family, v, seed, hidden, variant="v"):
        return {"variant": variant, "model": model, "status": "ok", "test_metric": v,
                "seed": seed, "facts": facts(family), "metric": "mse",
                "higher_is_better": False, "baseline": 1.0,
                "model_config": {"family": family, "hidden_size": hidden, "num_layers": 1,
                                 "bidirectional": False, "param_budget": 20000}}
    s = {"study": "st", "task": "digits", "runs": [
        rec("lstm_eq", "lstm", 0.2, 0, 60), rec("lstm_eq", "lstm", 0.21, 1, 60),
        rec("gru_eq", "gru", 0.8, 0, 70), rec("gru_eq", "gru", 0.81, 1, 70)]}
    c = lstm_gru_claim({}, [s])
    assert c.verdict == Verdict.NOT_OBSERVED and "study st, v" in c.evidence[0]


# ---------------------------------------------------------------- size and length
def lengths(n, counts=(100, 100), same=True, values=(0.1, 0.2), bases=(1.0, 1.0)):
    return {"key": "seq_len", "trained": 10, "n_params": n, "same_parameters": same,
            "reason": None if same else "at 2x T: size mismatch",
            "points": [{"factor": f, "length": 10 * f, "n_params": c, "metrics": {"mse": v},
                        "baseline": {"mse": b}, "solved": False}
                       for f, c, v, b in zip((2, 4), counts, values, bases, strict=True)]}


def test_size_claim_holds_when_every_count_is_equal_and_fails_otherwise():
    ok = grouped(run("lstm", "lstm", "adding", 0.05, claims=["any_length"],
                     lengths=lengths(100)))
    assert size_claim(ok).verdict == Verdict.HOLDS
    grows = grouped(run("lstm", "lstm", "adding", 0.05, claims=["any_length"],
                        lengths=lengths(100, counts=(100, 120))),
                    run("gru", "gru", "adding", 0.05, claims=["any_length"],
                        lengths=lengths(100, same=False)))
    assert size_claim(grows).verdict == Verdict.NOT_OBSERVED
    assert size_claim(grouped(run("lstm", "lstm", "sine", 0.1))).verdict == Verdict.NOT_MEASURED


def test_any_length_keeps_its_gain_holds_loses_it_not_and_unlearnt_models_are_left_out():
    keeps = run("lstm", "lstm", "adding", 0.1, claims=["any_length"],
                lengths=lengths(100, values=(0.2, 0.5)))  # gains 0.9, 0.8, 0.5 of 1.0
    loses = run("gru", "gru", "adding", 0.1, claims=["any_length"],
                lengths=lengths(100, values=(0.3, 0.9)))  # 0.1 / 0.9 at 4T
    unlearnt = run("rnn", "rnn", "adding", 0.99, claims=["any_length"], lengths=lengths(100))
    assert any_length_claim(grouped(keeps, unlearnt)).verdict == Verdict.HOLDS
    c = any_length_claim(grouped(keeps, loses, unlearnt))
    assert c.verdict == Verdict.CONDITION and c.detail == "only for lstm on adding"
    assert "not learnt at T" in " ".join(c.evidence)
    assert any_length_claim(grouped(loses)).verdict == Verdict.NOT_OBSERVED


def test_any_length_calls_a_longer_length_past_its_baseline_worse_not_at_it():
    # at 2T the MSE is 1.02 against a baseline of 1.0: 2% worse, never "at the baseline"
    r = run("lstm", "lstm", "adding", 0.1, claims=["any_length"],
            lengths=lengths(100, values=(1.02, 0.99)))
    text = " ".join(any_length_claim(grouped(r)).evidence)
    assert "nothing (worse than the trivial baseline) at 2T" in text
    assert "nothing (at the trivial baseline) at 4T" in text


# ---------------------------------------------------------------- one-to-many
SERVING = sorted(n for n, f in FAMILIES.items() if "one_to_many" in f.shapes)


def drawn(family, value):
    return run(family, family, "draw", value, claims=["one_to_many"], base=0.07,
               definition="class -> image")


def test_one_to_many_holds_only_when_every_serving_family_ran_and_beat_the_baseline():
    assert len(SERVING) >= 4
    every = grouped(*(drawn(f, 0.045) for f in SERVING))
    assert one_to_many_claim(every).verdict == Verdict.HOLDS
    one_short = grouped(*(drawn(f, 0.045) for f in SERVING[1:]))
    c = one_to_many_claim(one_short)
    assert c.verdict == Verdict.CONDITION and SERVING[0] in c.evidence[-1]
    at_base = grouped(*(drawn(f, 0.07) for f in SERVING))
    assert one_to_many_claim(at_base).verdict == Verdict.NOT_OBSERVED
    assert one_to_many_claim({}).verdict == Verdict.NOT_MEASURED


# ---------------------------------------------------------------- the keep gate
def gated(family, keeping_cells, write, solved=True, seed=0):
    g = {"cell": family, "gate": "f" if family == "lstm" else "z", "near_one": 0.95,
         "keeps": 0.5, "span_mean": 50.0, "examples": 128,
         "layers": {"l0_fwd": {"near_one_fraction": 0.1, "keeping_fraction": 0.1,
                               "keeping_cells": keeping_cells, "keeping_write": write,
                               "retention_median": 0.01, "keep_mean": 0.7}}}
    return run(family, family, "adding", 0.005 if solved else 0.2, seed, solved=solved,
               claims=["gate_keeps_content"], gates=g,
               probes=[{"step": 300, "figures": {"final.l0_fwd.horizon@0.001": 42}}])


def test_keep_gate_claim_on_each_outcome():
    assert keep_gate_claim(grouped(gated("lstm", 3, 0.02), gated("gru", 0, None))).verdict \
        == Verdict.HOLDS
    c = keep_gate_claim(grouped(gated("lstm", 3, 0.4)))  # keeps, but writes all along
    assert c.verdict == Verdict.NOT_OBSERVED and "42" in c.evidence[0]
    assert keep_gate_claim(grouped(gated("lstm", 0, None))).verdict == Verdict.NOT_OBSERVED
    unsolved = keep_gate_claim(grouped(gated("lstm", 3, 0.02, solved=False)))
    assert unsolved.verdict == Verdict.NOT_MEASURED


@pytest.mark.parametrize("seeds_keeping,expected", [((True, True, False), Verdict.HOLDS),
                                                    ((True, False, False),
                                                     Verdict.NOT_OBSERVED)])
def test_keep_gate_needs_most_solved_seeds(seeds_keeping, expected):
    runs = [gated("lstm", 2 if k else 0, 0.01 if k else None, seed=s)
            for s, k in enumerate(seeds_keeping)]
    assert keep_gate_claim(grouped(*runs)).verdict == expected
