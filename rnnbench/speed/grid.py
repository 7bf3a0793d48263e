"""The benchmark grids: which cases are timed together, and the ratios taken between them.

All cases of one shape group (same H, B, T, D and device) are timed interleaved, one quantity at
a time, so every ratio inside a group is a median of per-sample ratios measured side by side.
A group holds every family x layers x direction as shipped (impl "default"), and at the base
variant (fewest layers, one direction) every torch cell under each other implementation that
applies on the device, so that cells are compared as shipped and under equal implementations.
"""

from __future__ import annotations

import itertools
import statistics

from rnnbench.models.cost import STATE_FREE
from rnnbench.models.families import FAMILIES
from rnnbench.speed.bench import Case, applicable, kernel_of, make_bench
from rnnbench.speed.timing import (
    cpu_peak_growth_mib,
    cuda_peak_mib,
    interleave,
    ms,
    ratio_samples,
    summarize,
)

QUANTITIES = ("forward", "train_step", "latency_b1")
RATIO_QUANTITIES = ("train_step", "forward")
OTHER_IMPLS = {"cpu": ("no_onednn", "unrolled", "sequential", "numba_scan"),
               "cuda": ("no_cudnn", "unrolled", "sequential")}


def _pairs(families: list[str]) -> list[tuple[str, str]]:
    """Family ratios: each other family against the LSTM by cell, an implementation of the
    same cell against torch's (numba_rnn / rnn), and a state-free cell against the classic one
    it simplifies (mingru / gru), from the registry's facts."""
    cell = {f: FAMILIES[f].fixed_cell for f in families}
    torch_of = {cell[f]: f for f in families if FAMILIES[f].implementation == "torch"}
    out = [(f, torch_of["lstm"]) for f in families if "lstm" in torch_of and f in torch_of.values()
           and cell[f] != "lstm"]
    out += [(f, torch_of[cell[f]]) for f in families
            if FAMILIES[f].implementation != "torch" and cell[f] in torch_of]
    out += [(f, torch_of[STATE_FREE[cell[f]]]) for f in families
            if STATE_FREE.get(cell[f]) in torch_of]
    return list(dict.fromkeys(out))


def group_cases(families: list[str], hidden: int, batch: int, seq_len: int, input_size: int,
                layers: list[int], bidirectional: list[bool], device: str, dtype: str,
                optimizer: str = "adam") -> list[Case]:
    cases = [Case(f, hidden, batch, seq_len, input_size, n, bi, device, dtype, "default",
                  optimizer)
             for f, n, bi in itertools.product(families, layers, bidirectional)]
    l0, bi0 = min(layers), min(bidirectional)
    cases += [Case(f, hidden, batch, seq_len, input_size, l0, bi0, device, dtype, impl, optimizer)
              for f in families for impl in OTHER_IMPLS[device]]
    return [c for c in cases if applicable(c) is None]


def time_group(cases: list[Case], warmup: int, repeats: int, min_sample_s: float,
               seed: int) -> dict:
    """quantity -> case key -> seconds per call, `repeats` interleaved samples; then, one case
    at a time, "peak_mem_mib" (key -> MiB), "params" and "flops" (key -> figure) and "kernel"
    (key -> what ran, from a profile)."""
    benches = {c.key(): make_bench(c, seed) for c in cases}
    sync = next(iter(benches.values())).sync  # one device per group
    out: dict = {q: interleave({k: getattr(b, q) for k, b in benches.items()}, warmup, repeats,
                               min_sample_s, sync) for q in QUANTITIES}
    out["peak_mem_mib"], out["kernel"] = {}, {}
    for c in cases:  # after the timings: the sampler and the profiler would disturb them
        b = benches[c.key()]
        out["peak_mem_mib"][c.key()] = cuda_peak_mib(b.train_step, c.device) \
            if c.device == "cuda" else cpu_peak_growth_mib(b.train_step)
        out["kernel"][c.key()] = kernel_of(b, c)
    out["params"] = {k: b.params for k, b in benches.items()}
    out["flops"] = {k: b.flops for k, b in benches.items()}
    return out


def config_record(case: Case, times: dict, matmul_gflops: float,
                  compile_s: float | None) -> dict:
    key = case.key()
    step_s = statistics.median(times["train_step"][key])
    fl = times["flops"][key]
    gflops = fl.total / step_s / 1e9
    return {
        "key": key, "family": case.family, "cell": case.cell, "hidden": case.hidden,
        "batch": case.batch, "seq_len": case.seq_len, "input_size": case.input_size,
        "layers": case.layers, "bidirectional": case.bidirectional, "device": case.device,
        "dtype": case.dtype, "impl": case.impl, "kernel": times["kernel"][key],
        "optimizer": case.optimizer, "params": int(times["params"][key]),
        **{f"{q}_ms": ms(times[q][key]) for q in QUANTITIES},
        "train_seq_per_s": case.batch / step_s,
        "train_steps_per_s": case.batch * case.seq_len / step_s,  # time steps per second
        "train_gflops": gflops,
        "forward_gflops": fl.forward / statistics.median(times["forward"][key]) / 1e9,
        "matmul_fraction": gflops / matmul_gflops,
        "peak_mem_mib": times["peak_mem_mib"][key],
        "compile_s": compile_s if FAMILIES[case.family].implementation == "numba" else None,
        "flops": {"core_forward": fl.core_forward, "core_backward": fl.core_backward,
                  "head": fl.head, "loss": fl.loss, "update": fl.update,
                  "train_step": fl.total},
    }


def _ratio(name: str, quantity: str, num: Case, den: Case, times: dict,
           family: str | None) -> dict:
    stats = summarize(ratio_samples(times[quantity][num.key()], times[quantity][den.key()]))
    impl = num.impl if num.impl == den.impl else f"{num.impl}/{den.impl}"
    return {"name": name, "quantity": quantity, "family": family, "impl": impl,
            "numerator": num.key(), "denominator": den.key(), "device": den.device,
            "hidden": den.hidden, "batch": den.batch, "seq_len": den.seq_len,
            "input_size": den.input_size, "layers": den.layers,
            "bidirectional": den.bidirectional, **stats}


def group_ratios(cases: list[Case], times: dict) -> list[dict]:
    """At the base variant (fewest layers, one direction): each family pair (GRU/LSTM, RNN/LSTM,
    numba_rnn/rnn) under every implementation both were timed with; per family:
    bidirectional/unidirectional and stacked/single as shipped, and each other implementation
    against the default."""
    by = {(c.family, c.layers, c.bidirectional, c.impl): c for c in cases}
    fams = list(dict.fromkeys(c.family for c in cases))
    layers = sorted({c.layers for c in cases})
    bidirs = {c.bidirectional for c in cases}
    impls = list(dict.fromkeys(c.impl for c in cases))
    l0, bi0 = layers[0], min(bidirs)
    out = []
    for q in RATIO_QUANTITIES:
        for (a, b), impl in itertools.product(_pairs(fams), impls):
            if (a, l0, bi0, impl) in by and (b, l0, bi0, impl) in by:
                out.append(_ratio(f"{a}/{b}", q, by[a, l0, bi0, impl], by[b, l0, bi0, impl],
                                  times, None))
        for f in fams:
            base = by[f, l0, bi0, "default"]
            if bidirs == {False, True}:
                out.append(_ratio("bidirectional/unidirectional", q, by[f, l0, True, "default"],
                                  base, times, f))
            for n in layers[1:]:
                out.append(_ratio(f"stacked{n}/stacked{l0}", q, by[f, n, bi0, "default"], base,
                                  times, f))
            for impl in impls:
                if impl != "default" and (f, l0, bi0, impl) in by:
                    out.append(_ratio(f"{impl}/default", q, by[f, l0, bi0, impl], base, times,
                                      f))
    return out


def numba_point(hidden: int, batch: int, seq_len: int, input_size: int, dtype: str,
                warmup: int, repeats: int, min_sample_s: float, matmul_gflops: float,
                seed: int, families: tuple[str, str] = ("rnn", "numba_rnn"),
                optimizer: str = "adam") -> dict:
    """torch's Elman RNN against the Numba one at one grid point, the training step (as fit
    takes it) and the forward pass interleaved; speedup = torch time / Numba time."""
    torch_f, numba_f = families
    cases = {f: Case(f, hidden, batch, seq_len, input_size, dtype=dtype, optimizer=optimizer)
             for f in families}
    benches = {f: make_bench(c, seed) for f, c in cases.items()}
    rec: dict = {"hidden": hidden, "batch": batch, "seq_len": seq_len, "input_size": input_size}
    for q in ("train_step", "forward"):
        t = interleave({f: getattr(b, q) for f, b in benches.items()}, warmup, repeats,
                       min_sample_s)
        pre = "" if q == "train_step" else "forward_"
        rec[f"torch_{q}_ms"], rec[f"numba_{q}_ms"] = ms(t[torch_f]), ms(t[numba_f])
        rec[f"{pre}speedup"] = summarize(ratio_samples(t[torch_f], t[numba_f]))
        if q == "train_step":  # the flops of what was timed: core, head, loss, clip, update
            step_s = statistics.median(t[numba_f])
            rec["numba_gflops"] = benches[numba_f].flops.total / step_s / 1e9
            rec["matmul_fraction"] = rec["numba_gflops"] / matmul_gflops
    return rec
