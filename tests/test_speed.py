from __future__ import annotations

import csv
import json
import statistics
import time

import pytest
import torch

from rnnbench.report.speed import speed_section
from rnnbench.speed import grid as speed_grid
from rnnbench.speed.export import HEADLINE_RATIOS
from rnnbench.speed.grid import numba_point
from rnnbench.speed.run import run_speed
from rnnbench.speed.schema import SpeedConfig
from rnnbench.speed.timing import interleave, measure, one_sample, summarize, timer_check
from tests.conftest import mlflow_runs

SLEEP_S = 0.004
STAT_KEYS = {"median", "q25", "q75", "iqr", "samples"}
TOP_KEYS = {"schema_version", "config", "environment", "matmul", "configs", "ratios",
            "numba_vs_torch", "length", "timer_check", "numba_compile", "cached_start", "parity",
            "skipped",
            "mlflow_runs", "wall_s"}
CONFIG_KEYS = {"index", "key", "family", "cell", "hidden", "batch", "seq_len", "input_size",
               "layers", "bidirectional", "device", "dtype", "impl", "kernel", "optimizer",
               "params", "forward_ms", "train_step_ms", "latency_b1_ms", "train_seq_per_s",
               "train_steps_per_s", "train_gflops", "forward_gflops", "matmul_fraction",
               "peak_mem_mib", "compile_s", "flops"}


def tiny_config(**over) -> SpeedConfig:
    base = dict(models=["rnn", "gru", "numba_rnn"], hidden=[8], batch=[2], seq_len=[3, 6],
                input_size=4, layers=[1], bidirectional=[False], numba_grid=None, warmup=1,
                repeats=2, min_sample_s=0.001, check_timer=1, cached_start=False, parity_steps=0)
    return SpeedConfig(**{**base, **over})


# ---------------------------------------------------------------- the timing procedure
def test_sleep_median_and_warmup_excluded():
    calls = []

    def fake():
        calls.append(time.perf_counter())
        time.sleep(10 * SLEEP_S if len(calls) <= 2 else SLEEP_S)  # the 2 warm-ups are slow

    samples = measure(fake, warmup=2, repeats=5, min_sample_s=1e-9)
    assert len(calls) == 2 + 5  # min_sample_s ~ 0: one call per sample
    assert len(samples) == 5
    assert all(s < 5 * SLEEP_S for s in samples)  # no warm-up inside a sample
    assert SLEEP_S <= summarize(samples)["median"] < 4 * SLEEP_S


def test_sample_loops_until_min_sample_s():
    n = [0]

    def fake():
        n[0] += 1
        time.sleep(SLEEP_S)

    per_call, calls = one_sample(fake, min_sample_s=5 * SLEEP_S)
    assert calls == n[0] and calls >= 2
    assert per_call >= SLEEP_S
    assert per_call * calls >= 5 * SLEEP_S


def test_summary_keeps_raw_samples():
    raw = [3.0, 1.0, 2.0, 10.0]
    s = summarize(raw)
    assert s["samples"] == raw
    assert s["iqr"] >= 0 and s["q25"] <= s["median"] <= s["q75"]
    assert s["median"] == 2.5


def test_interleaving_alternates():
    order = []
    fns = {"A": lambda: order.append("A"), "B": lambda: order.append("B")}
    out = interleave(fns, warmup=2, repeats=3, min_sample_s=0)
    assert order == ["A", "B"] * 5
    assert [len(v) for v in out.values()] == [3, 3]


def test_timer_check_agrees_on_a_sleep():
    res = timer_check(lambda: time.sleep(SLEEP_S), threads=1, warmup=1, repeats=3,
                      min_sample_s=0.02)
    assert 0.6 < res["ratio"] < 1.6  # generous: the machine is shared
    assert res["ours_ms"] >= 1e3 * SLEEP_S


# ---------------------------------------------------------------- configuration
def test_config_rejects_duplicates_and_unknown_keys():
    with pytest.raises(ValueError, match="hidden"):
        tiny_config(hidden=[8, 8])
    with pytest.raises(ValueError):
        SpeedConfig(bogus=1)


# ---------------------------------------------------------------- run_speed end to end
def _check_stats(s: dict, n: int) -> None:
    assert set(s) == STAT_KEYS and len(s["samples"]) == n and s["iqr"] >= 0


def test_run_speed_writes_schema_csv_and_one_mlflow_run(tmp_path):
    cfg = tiny_config()
    data = run_speed(cfg, tmp_path, "speedtest", stage="pytest")
    on_disk = json.loads((tmp_path / "speed.json").read_text())
    assert on_disk == json.loads(json.dumps(data))
    assert set(on_disk) == TOP_KEYS and on_disk["schema_version"] == 3
    configs = on_disk["configs"]
    # per T: rnn, gru, numba_rnn as shipped; rnn and gru without oneDNN and unrolled
    assert len(configs) == (3 + 2 * 2) * 2
    assert {(c["family"], c["impl"]) for c in configs} == {
        ("rnn", "default"), ("gru", "default"), ("numba_rnn", "default"), ("rnn", "no_onednn"),
        ("gru", "no_onednn"), ("rnn", "unrolled"), ("gru", "unrolled")}
    for i, c in enumerate(configs):
        assert set(c) == CONFIG_KEYS and c["index"] == i
        for q in ("forward_ms", "train_step_ms", "latency_b1_ms"):
            _check_stats(c[q], cfg.repeats)
        assert c["train_seq_per_s"] * c["train_step_ms"]["median"] == pytest.approx(2e3)
        assert (c["compile_s"] is not None) == (c["family"] == "numba_rnn")
    names = {(r["name"], r["quantity"]) for r in on_disk["ratios"]}
    assert ("numba_rnn/rnn", "train_step") in names
    for r in on_disk["ratios"]:
        _check_stats({k: r[k] for k in STAT_KEYS}, cfg.repeats)
    assert on_disk["matmul"]["cpu"]["rate_gflops"] > 0
    assert len(on_disk["timer_check"]) == 1
    if not torch.cuda.is_available():
        assert {"device": "cuda", "reason": "no CUDA device is available"} in on_disk["skipped"]

    with open(tmp_path / "speed.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["key"] for r in rows] == [c["key"] for c in configs]
    assert float(rows[1]["train_step_ms"]) == pytest.approx(configs[1]["train_step_ms"]["median"])
    # DVC's metrics file: a few scalars, each from speed.json
    scalars = json.loads((tmp_path / "metrics.json").read_text())
    assert scalars["gflops"] == pytest.approx(on_disk["matmul"]["cpu"]["rate_gflops"], abs=0.01)
    gru_lstm = [r["median"] for r in on_disk["ratios"]
                if r["name"] == "gru/lstm" and r["quantity"] == "train_step"
                and r["impl"] == "default"]
    assert scalars.get("gru/lstm") == (pytest.approx(statistics.median(gru_lstm), abs=1e-3)
                                       if gru_lstm else None)  # no LSTM in this grid: none
    assert len(scalars) <= 1 + len(HEADLINE_RATIOS)

    client, runs = mlflow_runs()
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_id == on_disk["mlflow_runs"]["models/cpu"]
    assert run.info.status == "FINISHED"
    assert {k: run.data.tags[k] for k in ("kind", "device", "grid", "stage")} == \
        {"kind": "speed", "device": "cpu", "grid": "models", "stage": "pytest"}
    history = client.get_metric_history(run.info.run_id, "train_step_ms")
    logged = {m.step: m.value for m in history}
    assert logged == pytest.approx({c["index"]: c["train_step_ms"]["median"] for c in configs})
    assert "speed.json" in [a.path for a in client.list_artifacts(run.info.run_id)]


def test_failure_midway_leaves_the_previous_results(tmp_path, monkeypatch):
    run_speed(tiny_config(models=["rnn"], seq_len=[3], check_timer=0), tmp_path, "speedtest")
    before = (tmp_path / "speed.json").read_text()
    real, made = speed_grid.make_bench, []

    def flaky(case, seed=0):
        made.append(case)
        if len(made) > 2:
            raise RuntimeError("boom")
        return real(case, seed)

    monkeypatch.setattr(speed_grid, "make_bench", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        run_speed(tiny_config(models=["rnn", "gru"]), tmp_path, "speedtest")
    assert (tmp_path / "speed.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".rnnbench-output", "metrics.json",
                                                           "speed.csv", "speed.json"]


def test_numba_point_reports_speedup_from_interleaved_samples():
    rec = numba_point(8, 2, 4, 3, "float32", warmup=1, repeats=3, min_sample_s=0.001,
                      matmul_gflops=10.0, seed=0)
    t, n = rec["torch_train_step_ms"], rec["numba_train_step_ms"]
    _check_stats(rec["speedup"], 3)
    expected = [a / b for a, b in zip(t["samples"], n["samples"], strict=True)]
    assert rec["speedup"]["samples"] == pytest.approx(expected)
    assert rec["matmul_fraction"] == pytest.approx(rec["numba_gflops"] / 10.0)


@pytest.mark.slow
def test_cached_start_reuses_the_cache():
    from rnnbench.speed.startup import cached_start

    res = cached_start(threads=1, dtype="float32")
    assert res["cached"]["numba_work_s"] < res["fresh_cache"]["numba_work_s"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path(tmp_path):
    cfg = tiny_config(models=["lstm", "gru", "numba_rnn"], devices=["cuda"], seq_len=[5])
    data = run_speed(cfg, tmp_path, "speedtest-gpu")
    cuda = [c for c in data["configs"] if c["device"] == "cuda"]
    assert {c["impl"] for c in cuda} == {"default", "no_cudnn", "unrolled"}
    assert all(c["family"] in ("lstm", "gru") and c["peak_mem_mib"] > 0 for c in cuda)
    assert {c["kernel"].split(":")[0] for c in cuda if c["impl"] == "default"} == {"cudnn"}
    assert any(s.get("family") == "numba_rnn" for s in data["skipped"])
    assert any(r["name"] == "no_cudnn/default" for r in data["ratios"])
    assert data["environment"]["gpu_name"]


# ---------------------------------------------------------------- report
def _ratio(median, q75, hidden=64, impl="default"):
    return {"name": "gru/lstm", "quantity": "train_step", "device": "cpu", "hidden": hidden,
            "batch": 16, "seq_len": 50, "median": median, "q75": q75, "q25": median / 2,
            "impl": impl}


def _cfg(family, t, ms, impl="default", hidden=64):
    return {"family": family, "cell": family, "device": "cpu", "impl": impl, "layers": 1,
            "bidirectional": False, "hidden": hidden, "batch": 16, "seq_len": t,
            "kernel": "onednn: fused" if family == "lstm" else "aten: loop",
            "flops": {"train_step": {"gru": 3, "lstm": 4}.get(family, 1)},
            "train_step_ms": {"median": ms}}


def _claims_text(data):
    from rnnbench.report.speed import speed_claim_lines

    return "\n".join(speed_claim_lines(data))


@pytest.mark.parametrize("ratios,verdict", [
    ([_ratio(0.8, 0.9), _ratio(0.9, 0.95, impl="no_onednn")], "holds**"),
    ([_ratio(4.4, 4.6), _ratio(0.92, 0.95, impl="no_onednn"),
      _ratio(0.8, 0.9, impl="unrolled")], "holds only under a condition: under equal "
                                          "implementations only; as shipped"),
    ([_ratio(0.8, 0.9), _ratio(1.0, 1.1, 128)], "holds only under a condition: at some"),
    ([_ratio(1.1, 1.2), _ratio(1.1, 1.2, impl="no_onednn")], "not observed"),
])
def test_gru_claim_verdicts(ratios, verdict):
    data = {"ratios": ratios, "matmul": {"cpu": {}},
            "configs": [_cfg(f, 50, 1.0, impl, h) for f in ("gru", "lstm")
                        for impl in ("default", "no_onednn", "unrolled") for h in (64, 128)]}
    text = _claims_text(data)
    gru_part = text.split("### Recurrence")[0]
    assert f"**Verdict: {verdict}" in gru_part
    assert "0.75–0.75× the flops of an LSTM's" in gru_part  # the architecture, apart


@pytest.mark.parametrize("times,verdict", [
    ((3.0, 4.0, 6.0), "holds"),        # 2 ms fixed + 0.04 ms a step: affine, hence linear
    ((1.0, 4.0, 1.5), "not observed"),  # no straight line through these
    ((1.0, 4.0), "not observed: the grid needs three"),
])
def test_linear_time_claim(times, verdict):
    configs = [_cfg("rnn", t, ms) for t, ms in zip((25, 50, 100), times, strict=False)]
    data = {"ratios": [], "matmul": {"cpu": {}}, "configs": configs}
    text = _claims_text(data).split("### Recurrence")[1]
    assert f"**Verdict: {verdict}" in text


def test_linear_time_claim_partly():
    configs = [_cfg("rnn", t, ms) for t, ms in ((25, 3.0), (50, 4.0), (100, 6.0))]
    configs += [{**_cfg("gru", t, ms), "family": "gru"} for t, ms in
                ((25, 1.0), (50, 4.0), (100, 1.5))]
    data = {"ratios": [], "matmul": {"cpu": {}}, "configs": configs}
    text = _claims_text(data).split("### Recurrence")[1]
    assert "**Verdict: holds only under a condition: linear for 1 of 2" in text
    assert "gru H=64 B=16" in text


def test_the_throughput_figure_plots_against_what_the_grid_varies(tmp_path):
    from rnnbench.report.speed import figure_axis, throughput_caption, throughput_figure

    def data(pairs):
        return {"matmul": {"cpu": {}}, "configs": [
            {**_cfg("rnn", t, 1.0, hidden=h), "train_seq_per_s": 100.0 / t} for h, t in pairs]}

    one_width = data([(64, 10), (64, 20), (64, 40)])  # the quick grid's shape: T varies
    assert figure_axis(one_width["configs"]) == "seq_len"
    caption = throughput_caption(one_width)
    assert caption.startswith("Training throughput against sequence length T")
    assert "H = 64" in caption
    widths = data([(32, 10), (64, 10), (128, 10)])
    assert figure_axis(widths["configs"]) == "hidden"
    still = data([(64, 10)])  # nothing varies: no figure of one column of dots
    assert figure_axis(still["configs"]) is None
    assert throughput_figure(still, tmp_path) is None
    assert throughput_figure(one_width, tmp_path) == "speed_throughput.png"


def test_speed_section_from_a_real_run(tmp_path):
    data = run_speed(tiny_config(models=["rnn", "lstm", "gru"], hidden=[4, 8]), tmp_path / "out",
                     "speedtest")
    lines = speed_section(json.loads(json.dumps(data)), tmp_path / "figures")
    text = "\n".join(lines)
    assert (tmp_path / "figures" / "speed_throughput.png").stat().st_size > 0
    assert text.count("| gru | as shipped |") >= 4  # one row per (H, T)
    assert "| gru | oneDNN off | aten |" in text and "| gru | cell by cell | unrolled |" in text
    assert "gru/lstm" in text
    assert "GRU trains faster than LSTM" not in text  # the claims go to the report's claims
    assert "GRU trains faster than LSTM" in _claims_text(data)


def test_a_failed_method_check_shows_as_failed(tmp_path):
    data = run_speed(tiny_config(models=["rnn"], seq_len=[3]), tmp_path / "out", "speedtest")
    data["timer_check"][0].update(ratio=1.5, ok=False)
    text = "\n".join(speed_section(data, tmp_path / "figures"))
    assert "**Method check FAILED for 1 of 1 cases:**" in text and "**FAILED** |" in text
    data["timer_check"][0].update(ratio=1.02, ok=True)
    assert "FAILED" not in "\n".join(speed_section(data, tmp_path / "figures"))


def test_the_benchmark_times_the_training_step_fit_takes(monkeypatch):
    """The timed call is TrainStep itself: the same update as a TrainStep that fit would take on
    the same model, weights and batch."""
    from rnnbench.models.build import build_model
    from rnnbench.models.families import GRUConfig
    from rnnbench.speed.bench import Case, make_bench
    from rnnbench.training import step as step_module

    calls = []
    real = step_module.TrainStep.__call__
    monkeypatch.setattr(step_module.TrainStep, "__call__",
                        lambda self, x, y: calls.append(1) or real(self, x, y))
    case = Case("gru", hidden=5, batch=3, seq_len=4, input_size=2, dtype="float64")
    bench = make_bench(case, seed=3)
    bench.train_step()
    assert len(calls) == 1
    torch.manual_seed(3)
    twin = build_model(GRUConfig(family="gru", hidden_size=5), case.spec()).double()
    step_module.TrainStep(twin, case.train_config(), case.spec())(*bench.inputs)
    for a, b in zip(bench.model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("family,impl,kernel", [
    ("lstm", "default", "onednn"), ("lstm", "no_onednn", "aten"), ("gru", "default", "aten"),
    ("rnn", "default", "aten"), ("gru", "unrolled", "unrolled"), ("numba_rnn", "default", "numba"),
])
def test_the_kernel_that_ran_is_read_from_a_profile(family, impl, kernel):
    from rnnbench.speed.bench import Case, kernel_of, make_bench

    if kernel == "onednn" and not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN")
    case = Case(family, hidden=8, batch=2, seq_len=3, input_size=4, impl=impl)
    assert kernel_of(make_bench(case), case).split(":")[0] == kernel


def test_a_timer_disagreement_is_a_failed_check(monkeypatch):
    from rnnbench.speed import timing

    real = timing.one_sample
    # our samples read 1.5 x what they took: the methods disagree, and the check says so
    monkeypatch.setattr(timing, "one_sample",
                        lambda fn, s, sync=timing._noop: (1.5 * real(fn, s, sync)[0],
                                                          real(fn, s, sync)[1]))
    res = timer_check(lambda: time.sleep(SLEEP_S), threads=1, warmup=1, repeats=2,
                      min_sample_s=0.01, pairs_per_repeat=2)
    assert res["ratio"] > 1.3 and res["ok"] is False
    monkeypatch.setattr(timing, "one_sample", real)
    ok = timer_check(lambda: time.sleep(SLEEP_S), threads=1, warmup=1, repeats=2,
                     min_sample_s=0.01, pairs_per_repeat=2, tolerance=0.5)
    assert ok["ok"] is True


def test_drift_of_the_machine_lands_on_both_sides_of_the_timer_check():
    """A function that gets slower the more it is called: taken one after the other, ours first,
    the Timer would read it slower; sample by sample the two see the same drift."""
    calls = [0]

    def drifting():
        calls[0] += 1
        time.sleep(SLEEP_S * (1 + calls[0] / 100))

    res = timer_check(drifting, threads=1, warmup=0, repeats=3, min_sample_s=0.01,
                      pairs_per_repeat=2)
    assert res["pairs"] == 6 and res["ok"] is True


def test_speed_metrics_hold_the_matmul_rate_and_the_median_gru_lstm_step_ratio():
    from rnnbench.speed.export import scalar_metrics

    def ratio(median, name="gru/lstm", quantity="train_step", impl="default"):
        return {"name": name, "quantity": quantity, "impl": impl, "median": median}

    data = {"matmul": {"cpu": {"rate_gflops": 66.8167}},
            "ratios": [ratio(1.0), ratio(4.0), ratio(2.0), ratio(9.0, impl="unrolled"),
                       ratio(9.0, quantity="forward"), ratio(9.0, name="rnn/lstm")]}
    assert scalar_metrics(data) == {"gflops": 66.82, "gru/lstm": 2.0}
    assert scalar_metrics({"matmul": {}, "ratios": []}) == {}
