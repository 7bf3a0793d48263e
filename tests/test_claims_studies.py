"""The study-based rules (rnnbench/report/claims_studies.py) on hand-made summaries, one test per
outcome, and the study tables that show them."""

from __future__ import annotations

from rnnbench.models.families import FAMILIES
from rnnbench.report.claims_studies import activation_claim, depth_claim, overfit_claim
from rnnbench.report.study_more import study_body_more
from rnnbench.report.verdict import Verdict


def facts(family: str) -> dict:
    return FAMILIES[family].facts(FAMILIES[family].config(family=family))


def rec(model, family, value, seed=0, *, layers=1, budget=None, n_params=1000, status="ok",
        variant="v", higher=True, base=0.1, x=None, train=None, val=None, best=None,
        growth=None, **config):
    return {"variant": variant, "model": model, "family": family, "seed": seed,
            "status": status, "diverged_at_step": None if status == "ok" else 5,
            "metric": "accuracy" if higher else "mse", "higher_is_better": higher,
            "test_metric": value if status == "ok" else None, "val_metric": val,
            "train_metric": train, "best_val_metric": best, "baseline": base,
            "solved": False, "x_value": x, "n_params": n_params, "facts": facts(family),
            "grad": {"init": None if growth is None else {"decay_factor": growth}},
            "model_config": {"family": family, "hidden_size": 64, "num_layers": layers,
                             "bidirectional": False, "param_budget": budget, **config}}


def summary(kind, runs, task="digits", name=None):
    return {"study": name or kind, "kind": kind, "task": task, "runs": runs}


# ---------------------------------------------------------------- depth
def depth_runs(model, family, by_layers, eq=None, n1=1000, eq_params=1000):
    runs = [rec(model, family, v, s, layers=L, n_params=n1 * L)
            for L, vals in by_layers.items() for s, v in enumerate(vals)]
    runs += [rec(model, family, v, s, layers=L, budget=n1, n_params=eq_params)
             for L, vals in (eq or {}).items() for s, v in enumerate(vals)]
    return runs


def test_depth_holds_when_every_deeper_model_wins_in_every_case():
    runs = depth_runs("lstm", "lstm", {1: [0.5, 0.52], 2: [0.7, 0.72], 3: [0.8, 0.81]},
                      eq={2: [0.7, 0.71], 3: [0.75, 0.76]})
    c = depth_claim([summary("depth", runs)])
    assert c.verdict == Verdict.HOLDS and c.number == "deeper better in 2 of 2 cases"


def test_depth_at_equal_width_only_is_a_condition_that_names_the_case():
    runs = depth_runs("lstm", "lstm", {1: [0.5, 0.52], 2: [0.7, 0.72]}, eq={2: [0.5, 0.51]})
    c = depth_claim([summary("depth", runs)])
    assert c.verdict == Verdict.CONDITION
    assert c.detail == "only for lstm at equal width on digits"


def test_depth_worse_or_within_the_spread_is_not_observed():
    worse = depth_runs("rnn", "rnn", {1: [0.8, 0.81], 2: [0.6, 0.62], 3: [0.9, 0.2]})
    c = depth_claim([summary("depth", worse)])
    assert c.verdict == Verdict.NOT_OBSERVED
    assert "2 vs 1 layer: deeper worse, 3 vs 1 layer: about the same" in c.evidence[0]


def test_depth_one_seed_is_not_measured_and_unequal_sizes_are_left_out():
    assert depth_claim([summary("depth", depth_runs("lstm", "lstm", {1: [0.5], 2: [0.9]}))]
                       ).verdict == Verdict.NOT_MEASURED
    assert depth_claim([]).verdict == Verdict.NOT_MEASURED
    off = depth_runs("lstm", "lstm", {1: [0.5, 0.52]}, eq={2: [0.9, 0.91]}, eq_params=1500)
    c = depth_claim([summary("depth", off)])
    assert c.verdict == Verdict.NOT_MEASURED and "not within 10%" in c.evidence[0]


# ---------------------------------------------------------------- overfitting
def overfit_runs(lstm_gaps, gru_gaps, lstm_best=None, gru_best=None, budget=None):
    """Accuracy runs whose train - validation gap is given; LSTM 4/3 the GRU's parameters."""
    out = []
    for (model, family, gaps, best, n) in (("lstm", "lstm", lstm_gaps, lstm_best, 400),
                                           ("gru", "gru", gru_gaps, gru_best, 300)):
        best = best or (0.9,) * len(gaps)
        out += [rec(model, family, 0.9, s, budget=budget, n_params=n, train=0.9 + g / 2,
                    val=0.9 - g / 2, best=b)
                for s, (g, b) in enumerate(zip(gaps, best, strict=True))]
    return out


def test_overfit_holds_when_the_lstm_gap_is_larger_and_the_gru_as_good():
    s = summary("overfit", overfit_runs((0.2, 0.22), (0.05, 0.06))
                + overfit_runs((0.2, 0.21), (0.05, 0.05), budget=2000))
    c = overfit_claim([s])
    assert c.verdict == Verdict.HOLDS and "LSTM overfits more" in c.evidence[0]


def test_overfit_at_equal_width_only_is_a_condition():
    s = summary("overfit", overfit_runs((0.2, 0.22), (0.05, 0.06))
                + overfit_runs((0.05, 0.06), (0.05, 0.05), budget=2000))
    c = overfit_claim([s])
    assert c.verdict == Verdict.CONDITION and c.detail == "only on digits at equal width"


def test_overfit_not_observed_when_the_gru_is_worse_or_overfits_as_much():
    worse = summary("overfit", overfit_runs((0.2, 0.22), (0.05, 0.06), gru_best=(0.5, 0.52)))
    assert overfit_claim([worse]).verdict == Verdict.NOT_OBSERVED
    same = summary("overfit", overfit_runs((0.1, 0.3), (0.1, 0.25)))
    c = overfit_claim([same])
    assert c.verdict == Verdict.NOT_OBSERVED and "about as much" in c.evidence[0]
    assert overfit_claim([summary("overfit", overfit_runs((0.2,), (0.05,)))]).verdict \
        == Verdict.NOT_MEASURED


def test_overfit_table_shows_the_gap():
    s = summary("overfit", overfit_runs((0.2, 0.22), (0.05, 0.06)))
    table = "\n".join(study_body_more(s))
    # train 1.0 and 1.01, validation 0.8 and 0.79: the gaps 0.2 and 0.22
    assert "| lstm | lstm | equal width | 400 | 1.005 ± 0.0071 | 0.795 ± 0.0071" in table
    assert "0.21 ± 0.014 |" in table


# ---------------------------------------------------------------- tanh vs relu
def act_runs(sigma, tanh_div, relu_div, tanh_growth, relu_growth, n=3):
    return [rec("rnn", "rnn", 0.16, s, x=sigma, higher=False, base=1 / 6,
                status="diverged" if s < div else "ok", growth=g, nonlinearity=act)
            for act, div, g in (("tanh", tanh_div, tanh_growth), ("relu", relu_div, relu_growth))
            for s in range(n)]


def test_activation_holds_when_tanh_grows_less_and_diverges_less_wherever_relu_explodes():
    s = summary("activation", act_runs(1.0, 0, 0, 0.9, 0.8) + act_runs(3.0, 1, 3, 1.2, 2.0),
                task="adding")
    c = activation_claim([s])
    assert c.verdict == Verdict.HOLDS, c.detail


def test_activation_condition_names_where_each_part_held():
    s = summary("activation", act_runs(1.5, 3, 2, 1.06, 1.05) + act_runs(3.0, 3, 3, 1.3, 2.0),
                task="adding")
    c = activation_claim([s])
    assert c.verdict == Verdict.CONDITION
    assert c.detail == ("tanh's gradient grew less than relu's at σ = 3 (of 2 where it could); "
                        "fewer tanh runs diverged at no σ (of 2 where it could)")


def test_activation_not_observed_when_tanh_explodes_as_much_or_nothing_explodes():
    s = summary("activation", act_runs(3.0, 3, 3, 2.5, 2.0), task="adding")
    assert activation_claim([s]).verdict == Verdict.NOT_OBSERVED
    calm = activation_claim([summary("activation", act_runs(0.5, 0, 0, 0.5, 0.4))])
    assert calm.verdict == Verdict.NOT_OBSERVED and "neither" in calm.detail
    assert activation_claim([]).verdict == Verdict.NOT_MEASURED
