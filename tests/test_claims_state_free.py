"""The rule of rnnbench/report/claims_state_free.py on hand-made results: one test per outcome,
and the pairing by facts and shape."""

from __future__ import annotations

from rnnbench.report.claims_state_free import pairs, state_free_claim
from rnnbench.report.verdict import Verdict
from tests.test_claims_more import grouped, run

CLAIM = ("state_free_gates",)


def side(model, family, task, values, *, budget=None, hidden=64, claims=CLAIM, mode=None):
    out = []
    for s, v in enumerate(values):
        r = run(model, family, task, v, s, metric="accuracy", higher=True, base=0.125,
                claims=claims, hidden=hidden, budget=budget)
        if mode:
            r["model_config"]["mode"] = mode
        out.append(r)
    return out


def test_pairs_follow_the_facts_and_the_shape():
    g = grouped(*side("mingru", "mingru", "t", [0.9, 0.9], mode="parallel"),
                *side("gru", "gru", "t", [0.9, 0.9]),
                *side("lstm", "lstm", "t", [0.9, 0.9]),  # no minLSTM: unpaired
                *side("mingru_wide", "mingru", "t", [0.5, 0.5], hidden=128, mode="parallel"),
                *side("minlstm_eq", "minlstm", "t", [0.8, 0.8], budget=20000, hidden=90),
                *side("lstm_eq", "lstm", "t", [0.8, 0.8], budget=20000, hidden=40))
    found = {(a, b) for a, _, b, _ in pairs(g["t"])}
    assert found == {("mingru", "gru"), ("minlstm_eq", "lstm_eq")}


def test_holds_when_no_task_costs_accuracy():
    g = grouped(*side("mingru", "mingru", "copy", [0.90, 0.93]),
                *side("gru", "gru", "copy", [0.91, 0.92]),
                *side("minlstm", "minlstm", "adding", [0.99, 0.99]),
                *side("lstm", "lstm", "adding", [0.6, 0.62]))
    c = state_free_claim(g)
    assert c.verdict is Verdict.HOLDS and c.number == "costs accuracy on 0 of 2 tasks"
    assert any("**the state-free model better**" in line for line in c.evidence)


def test_under_a_condition_when_some_tasks_cost():
    g = grouped(*side("mingru", "mingru", "copy", [0.90, 0.93]),
                *side("gru", "gru", "copy", [0.91, 0.92]),
                *side("mingru", "mingru", "selective_copy", [0.30, 0.31]),
                *side("gru", "gru", "selective_copy", [0.95, 0.96]))
    c = state_free_claim(g)
    assert c.verdict is Verdict.CONDITION
    assert c.detail == "no cost on copy; it costs accuracy on selective_copy"


def test_not_observed_when_every_task_costs():
    g = grouped(*side("mingru", "mingru", "copy", [0.30, 0.31]),
                *side("gru", "gru", "copy", [0.95, 0.96]))
    assert state_free_claim(g).verdict is Verdict.NOT_OBSERVED


def test_one_seed_or_nothing_learnt_is_not_judged_and_other_tasks_do_not_count():
    g = grouped(*side("mingru", "mingru", "copy", [0.5]), *side("gru", "gru", "copy", [0.9]),
                *side("mingru", "mingru", "adding", [0.125, 0.126]),
                *side("gru", "gru", "adding", [0.124, 0.125]),
                *side("mingru", "mingru", "sine", [0.1, 0.1], claims=()),
                *side("gru", "gru", "sine", [0.9, 0.9], claims=()))
    c = state_free_claim(g)
    assert c.verdict is Verdict.NOT_MEASURED
    text = "\n".join(c.evidence)
    assert "copy: mingru vs gru" in text and "one seed on a side, not judged" in text
    assert "neither learnt the task, left out" in text and "sine" not in text
