"""rnn vs numba_rnn training losses beside torch against itself one ulp off: the measurement
(rnnbench/training/parity.py) and the rule and figure of the report (rnnbench/report/parity.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnbench.report.parity import climb, parity_lines, parting_step, parts_like_rounding


def parity(numba_gap, ulp_gap):
    return {"hidden": 64, "seq_len": 100, "batch": 32, "lr": 0.01, "steps": len(numba_gap),
            "gap": {"numba_vs_rnn": list(numba_gap), "ulp_vs_rnn": list(ulp_gap)}}


def gap(parts_at: int, steps: int = 60, growth: float = 10.0) -> list[float]:
    """1e-15 until `parts_at`, then growing `growth`-fold a step from 1.5e-9."""
    return [1e-15 if s < parts_at else 1.5e-9 * growth ** (s - parts_at)
            for s in range(1, steps + 1)]


def test_parting_step_and_growth_on_hand_made_gaps():
    g = gap(20, growth=10.0)
    g[14:19] = [1.5e-14 * 10 ** k for k in range(5)]  # steps 15-19 climb tenfold a step
    g[13] = 1e-14  # step 14: still rounding
    assert parting_step(g) == 20
    a, b, factor = climb(g)
    assert (a, b) == (14, 20) and factor == pytest.approx((1.5e-9 / 1e-14) ** (1 / 6))
    assert parting_step([1e-15] * 5) is None and climb([1e-15] * 5) is None


def test_numba_parting_far_sooner_than_one_ulp_fails_the_rule(tmp_path):
    ok, n, u = parts_like_rounding(parity(gap(41), gap(42)))
    assert ok and (n, u) == (41, 42)
    bad = parity(gap(10), gap(42))  # a kernel bug: apart long before rounding could do it
    assert parts_like_rounding(bad)[0] is False
    text = "\n".join(parity_lines(bad, tmp_path / "figures"))
    assert "**FAILED: sooner than a one-ulp change" in text
    assert "step 10 for rnn vs numba_rnn and at step 42" in text
    assert "climbs ×1.5e+06 a step from step 9 to 10" in text  # 1e-15 to 1.5e-9 in a step
    assert (tmp_path / "figures" / "parity.png").stat().st_size > 0
    never = parity([1e-15] * 60, gap(42))  # never parting is no failure
    assert parts_like_rounding(never)[0] is True


def test_one_ulp_and_a_short_measurement():
    from rnnbench.models.build import build_model
    from rnnbench.models.families import RNNConfig
    from rnnbench.tasks.adding import Adding, AddingConfig
    from rnnbench.training.parity import loss_divergence, nudge_one_ulp

    torch.manual_seed(0)
    model = build_model(RNNConfig(family="rnn", hidden_size=4),
                        Adding().spec(AddingConfig(seq_len=5))).double()
    before = model.core.weight_hh_l0.detach().clone()
    delta = nudge_one_ulp(model)
    after = model.core.weight_hh_l0.detach()
    assert delta == pytest.approx(np.spacing(before[0, 0].item()), rel=1e-12)
    assert torch.equal(before.flatten()[1:], after.flatten()[1:])
    r = loss_divergence(hidden=8, seq_len=10, steps=6, batch=8)
    assert len(r["loss"]["rnn"]) == len(r["gap"]["numba_vs_rnn"]) == 6
    assert r["gap"]["numba_vs_rnn"][0] < 1e-12 and r["gap"]["ulp_vs_rnn"][0] < 1e-12
