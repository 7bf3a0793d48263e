"""Time against T (rnnbench.speed.length, rnnbench.report.speed_length): the cases timed, the
equal-size widths, a real tiny run, and the fits, crossovers and claim on hand-made records."""

from __future__ import annotations

import json

import pytest

from rnnbench.models.families import FAMILIES, param_count
from rnnbench.report.speed import linear_time_claim, speed_section
from rnnbench.report.speed_length import crossover, growth_exponent, log_depth_claim
from rnnbench.speed.bench import Case, applicable
from rnnbench.speed.length import length_cases, widths
from rnnbench.speed.run import run_speed
from rnnbench.speed.schema import LengthGrid
from tests.test_speed import tiny_config


def test_cases_each_model_as_shipped_and_the_state_free_ones_in_every_mode():
    grid = LengthGrid(seq_len=[5, 10, 20], hidden=8, batch=2, input_size=3)
    cpu = {(c.family, c.impl) for c in length_cases(grid, "width", 10, "cpu", "float32", "adam")}
    assert cpu == {("gru", "default"), ("lstm", "default"), ("mingru", "default"),
                   ("mingru", "sequential"), ("mingru", "numba_scan"), ("minlstm", "default"),
                   ("minlstm", "sequential"), ("minlstm", "numba_scan")}
    cuda = {(c.family, c.impl) for c in length_cases(grid, "width", 10, "cuda", "float32",
                                                     "adam")}
    assert ("mingru", "numba_scan") not in cuda and ("mingru", "sequential") in cuda


def test_equal_size_widths_come_closest_to_the_reference_count():
    grid = LengthGrid(seq_len=[5, 10, 20], hidden=64, batch=2, input_size=32)
    h = widths(grid, "params")
    assert h["gru"] == 64 and h["mingru"] > 4 * 64  # no W_hh: far wider at the same count
    spec = Case("gru", 64, 2, 1, 32).spec()

    def count(f, width):
        return param_count(FAMILIES[f].config(family=f, hidden_size=width), spec)

    ref = count("gru", 64)
    for f, w in h.items():
        assert abs(count(f, w) - ref) <= min(abs(count(f, w + 1) - ref), abs(count(f, w - 1) - ref))
    assert widths(grid, "width") == {f: 64 for f in grid.models}


@pytest.mark.parametrize("case,reason", [
    (Case("gru", 4, 1, 2, 3, impl="sequential"), "no scan modes"),
    (Case("mingru", 4, 1, 2, 3, impl="unrolled"), "torch's own cells only"),
    (Case("mingru", 4, 1, 2, 3, impl="no_onednn"), "torch's own cells only"),
    (Case("mingru", 4, 1, 2, 3, device="cuda", impl="numba_scan"), "CPU only"),
])
def test_modes_apply_where_they_exist(case, reason):
    assert reason in applicable(case)


def test_bad_length_grid_names_the_key():
    with pytest.raises(ValueError, match="reference = 'rnn': not one of models"):
        LengthGrid(models=["gru", "mingru"], reference="rnn")
    with pytest.raises(ValueError, match="at least 3"):
        LengthGrid(seq_len=[5, 10])


def test_a_real_tiny_run_records_and_renders_the_length_grid(tmp_path):
    grid = LengthGrid(models=["gru", "mingru"], seq_len=[3, 6, 12], hidden=4, batch=2,
                      input_size=3, repeats=2)
    data = run_speed(tiny_config(models=["gru"], seq_len=[3], length_grid=grid.model_dump()),
                     tmp_path / "out", "speedtest")
    recs = data["length"]
    assert len(recs) == 2 * 3 * (1 + 3)  # sizes x T x (gru + mingru in three modes)
    kernels = {r["impl"]: r["kernel"].split(":")[0] for r in recs if r["family"] == "mingru"}
    assert kernels == {"default": "scan", "sequential": "loop", "numba_scan": "numba"}
    assert {r["hidden"] for r in recs if r["size"] == "params" and r["family"] == "mingru"} \
        != {4}
    text = "\n".join(speed_section(json.loads(json.dumps(data)), tmp_path / "figures"))
    assert "### Training-step time against sequence length" in text
    assert "| mingru (Numba loop) |" in text and "Crossovers" in text


# ---------------------------------------------------------------- rules on hand-made records
def _rec(family, impl, t, ms, size="width", device="cpu"):
    return {"size": size, "family": family, "impl": impl, "device": device, "hidden": 8,
            "batch": 2, "input_size": 3, "params": 100, "seq_len": t,
            "state_free": family.startswith("min"), "train_step_ms": {"median": ms}}


TS = (50, 200, 800, 3200)


def _curve(family, impl, f, size="width", device="cpu"):
    return [_rec(family, impl, t, f(t), size, device) for t in TS]


def test_growth_exponent_of_power_laws():
    for p in (0.0, 0.3, 1.0, 2.0):
        assert growth_exponent(list(TS), [5 * t ** p for t in TS]) == pytest.approx(p)
    # a fixed cost dominating the shortest T hides less of the linear growth: the fit over the
    # longer half says 0.86, one over every T would say 0.75
    assert growth_exponent(list(TS), [50 + 0.5 * t for t in TS]) > 0.85


def test_crossover_lengths():
    slow = _curve("gru", "default", lambda t: t)
    assert crossover(_curve("mingru", "default", lambda t: 0.5 * t), slow) == "every T"
    assert crossover(_curve("mingru", "default", lambda t: 300 + 0.1 * t), slow) == "T ≥ 800"
    assert crossover(_curve("mingru", "default", lambda t: 2 * t), slow) == "never"
    # faster in the middle only: not a crossover
    mid = [_rec("mingru", "default", t, ms) for t, ms in zip(TS, (60, 100, 700, 4000),
                                                              strict=True)]
    assert crossover(mid, slow) == "never"


def test_log_depth_claim_holds_where_only_the_scan_is_sublinear():
    recs = _curve("gru", "default", lambda t: 0.1 * t) + \
        _curve("mingru", "default", lambda t: 3 * t ** 0.2) + \
        _curve("mingru", "sequential", lambda t: 0.2 * t)
    c = log_depth_claim({"length": recs})
    assert c.verdict.name == "HOLDS" and "mingru p = 0.20" in c.evidence[0]


def test_log_depth_claim_is_not_observed_when_the_scan_grows_linearly():
    recs = _curve("gru", "default", lambda t: 0.1 * t) + \
        _curve("mingru", "default", lambda t: 2 + 0.15 * t)
    c = log_depth_claim({"length": recs})
    assert c.verdict.name == "NOT_OBSERVED" and "no scan's time grows sublinearly" in c.detail


def test_log_depth_claim_fails_when_a_classic_cell_is_sublinear_too():
    recs = _curve("gru", "default", lambda t: 3 * t ** 0.2) + \
        _curve("mingru", "default", lambda t: 3 * t ** 0.2)
    assert log_depth_claim({"length": recs}).verdict.name == "NOT_OBSERVED"


def test_log_depth_claim_under_a_condition_and_not_measured():
    recs = _curve("gru", "default", lambda t: 0.1 * t, device="cuda") + \
        _curve("mingru", "default", lambda t: 3 * t ** 0.2, device="cuda") + \
        _curve("gru", "default", lambda t: 0.1 * t) + \
        _curve("mingru", "default", lambda t: 0.3 * t)
    c = log_depth_claim({"length": recs})
    assert c.verdict.name == "CONDITION" and c.detail == "on cuda equal width only"
    assert log_depth_claim({"length": []}).verdict.name == "NOT_MEASURED"
    assert log_depth_claim({}).verdict.name == "NOT_MEASURED"


def test_the_linear_time_claim_leaves_the_state_free_cells_to_their_own():
    def cfg(family, t, ms):
        return {"family": family, "cell": family, "device": "cpu", "impl": "default",
                "layers": 1, "bidirectional": False, "hidden": 8, "batch": 2, "seq_len": t,
                "train_step_ms": {"median": ms}}
    configs = [cfg("gru", t, 1 + 0.1 * t) for t in (25, 50, 100)]
    configs += [cfg("mingru", t, ms) for t, ms in ((25, 1.0), (50, 4.0), (100, 1.5))]
    c = linear_time_claim({"matmul": {"cpu": {}}, "configs": configs})
    assert c.verdict.name == "HOLDS" and len(c.evidence) == 1
