"""The benchmark grids: which cases are timed together, and the ratios taken between them.

All cases of one shape group (same H, B, T, D and device: every family x layers x direction x
cuDNN setting) are timed interleaved, one quantity at a time, so every ratio inside a group is a
median of per-sample ratios measured side by side.
"""

from __future__ import annotations

import itertools
import statistics

import torch

from rnnbench import flops
from rnnbench.flops import Shape
from rnnbench.speed_bench import Case, make_bench
from rnnbench.speed_timing import (
    cpu_peak_growth_mib,
    cuda_peak_mib,
    interleave,
    ms,
    ratio_samples,
    summarize,
)

QUANTITIES = ("forward", "fwd_bwd", "train_step", "latency_b1")
FAMILY_RATIOS = (("gru", "lstm"), ("rnn", "lstm"), ("numba_rnn", "rnn"))
RATIO_QUANTITIES = ("train_step", "forward")


def group_cases(families: list[str], hidden: int, batch: int, seq_len: int, input_size: int,
                layers: list[int], bidirectional: list[bool], device: str,
                dtype: str) -> list[Case]:
    cudnn = [None] if device == "cpu" else [True, False]
    return [Case(Shape(f, hidden, batch, seq_len, input_size, n, bi), device, dtype, c)
            for f, n, bi, c in itertools.product(families, layers, bidirectional, cudnn)]


def time_group(cases: list[Case], warmup: int, repeats: int, min_sample_s: float,
               seed: int) -> dict[str, dict[str, list[float]]]:
    """quantity -> case key -> seconds per call, `repeats` interleaved samples; plus memory
    ("peak_mem_mib": key -> [MiB]) and parameter counts ("params": key -> [count])."""
    benches = {c.key(): make_bench(c, seed) for c in cases}
    sync = next(iter(benches.values())).sync  # one device per group
    out = {q: interleave({k: getattr(b, q) for k, b in benches.items()}, warmup, repeats,
                         min_sample_s, sync) for q in QUANTITIES}
    out["peak_mem_mib"] = {}
    for c in cases:  # after the timings, one case at a time: the sampler would disturb them
        step = benches[c.key()].train_step
        out["peak_mem_mib"][c.key()] = [cuda_peak_mib(step, c.device) if c.device == "cuda"
                                        else cpu_peak_growth_mib(step)]
    out["params"] = {k: [float(b.params)] for k, b in benches.items()}
    return out


def config_record(case: Case, times: dict, matmul_gflops: float,
                  compile_s: float | None) -> dict:
    s, key = case.shape, case.key()
    step_s = statistics.median(times["train_step"][key])
    train_flops = flops.train_step_flops(s)
    gflops = train_flops / step_s / 1e9
    return {
        "key": key, "family": s.family, "hidden": s.hidden, "batch": s.batch,
        "seq_len": s.seq_len, "input_size": s.input_size, "layers": s.layers,
        "bidirectional": s.bidirectional, "device": case.device, "dtype": case.dtype,
        "cudnn": case.cudnn, "params": int(times["params"][key][0]),
        **{f"{q}_ms": ms(times[q][key]) for q in QUANTITIES},
        "train_seq_per_s": s.batch / step_s,
        "train_steps_per_s": s.batch * s.seq_len / step_s,  # time steps (sequence elements)
        "train_gflops": gflops,
        "forward_gflops": flops.forward_flops(s) / statistics.median(times["forward"][key]) / 1e9,
        "matmul_fraction": gflops / matmul_gflops,
        "peak_mem_mib": times["peak_mem_mib"][key][0],
        "compile_s": compile_s if s.family == "numba_rnn" else None,
        "flops": {"forward": flops.forward_flops(s), "fwd_bwd": flops.fwd_bwd_flops(s),
                  "train_step": train_flops},
    }


def _ratio(name: str, quantity: str, num: Case, den: Case, times: dict,
           family: str | None) -> dict:
    s = den.shape
    stats = summarize(ratio_samples(times[quantity][num.key()], times[quantity][den.key()]))
    return {"name": name, "quantity": quantity, "family": family, "numerator": num.key(),
            "denominator": den.key(), "device": den.device, "hidden": s.hidden,
            "batch": s.batch, "seq_len": s.seq_len, "input_size": s.input_size,
            "layers": s.layers, "bidirectional": s.bidirectional, **stats}


def group_ratios(cases: list[Case], times: dict) -> list[dict]:
    """GRU/LSTM, RNN/LSTM, numba_rnn/rnn at the base variant (fewest layers, unidirectional if
    timed, cuDNN on); per family: bidirectional/unidirectional, stacked/single, cuDNN off/on."""
    by = {(c.shape.family, c.shape.layers, c.shape.bidirectional, c.cudnn): c for c in cases}
    fams = list(dict.fromkeys(c.shape.family for c in cases))
    layers = sorted({c.shape.layers for c in cases})
    bidirs = {c.shape.bidirectional for c in cases}
    l0, bi0 = layers[0], (False if False in bidirs else True)
    on = None if cases[0].cudnn is None else True
    out = []
    for q in RATIO_QUANTITIES:
        for a, b in FAMILY_RATIOS:
            if a in fams and b in fams:
                out.append(_ratio(f"{a}/{b}", q, by[a, l0, bi0, on], by[b, l0, bi0, on],
                                  times, None))
        for f in fams:
            if bidirs == {False, True}:
                out.append(_ratio("bidirectional/unidirectional", q, by[f, l0, True, on],
                                  by[f, l0, False, on], times, f))
            for n in layers[1:]:
                out.append(_ratio(f"stacked{n}/stacked{l0}", q, by[f, n, bi0, on],
                                  by[f, l0, bi0, on], times, f))
            if on:
                out.append(_ratio("cudnn_off/cudnn_on", q, by[f, l0, bi0, False],
                                  by[f, l0, bi0, True], times, f))
    return out


def full_step_pair(hidden: int, batch: int, seq_len: int, input_size: int, dtype: str,
                   seed: int) -> tuple[dict, tuple]:
    """The whole training step both ways from the same weights and batch: torch (nn.RNN +
    nn.Linear head on the last step + MSE + clip_grad_norm_ + Adam) and the pure-Numba
    NumbaTrainer (the same step in hand-written kernels, no torch). Returns the two step
    callables and the objects they update: (nn.RNN, nn.Linear, NumbaTrainer)."""
    import numpy as np
    from torch import nn

    from rnnbench.kernels.step import NumbaTrainer

    tdtype = getattr(torch, dtype)
    torch.manual_seed(seed)
    rnn = nn.RNN(input_size, hidden, batch_first=True).to(tdtype)
    head = nn.Linear(hidden, 1).to(tdtype)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-4)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, seq_len, input_size, generator=gen, dtype=tdtype)
    y = torch.randn(batch, 1, generator=gen, dtype=tdtype)
    trainer = NumbaTrainer.from_torch(rnn, head, "adam", lr=1e-4, clip="norm", clip_value=1.0)
    x_np, y_np = np.ascontiguousarray(x.numpy()), np.ascontiguousarray(y.numpy())

    def torch_step() -> None:
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(x)
        torch.nn.functional.mse_loss(head(out[:, -1]), y).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    steps = {"torch": torch_step, "numba": lambda: trainer.step(x_np, y_np)}
    return steps, (rnn, head, trainer)


def numba_point(hidden: int, batch: int, seq_len: int, input_size: int, dtype: str,
                warmup: int, repeats: int, min_sample_s: float, matmul_gflops: float,
                seed: int) -> dict:
    """torch nn.RNN vs NumbaRNN at one grid point, interleaved; speedup = torch / numba: the
    recurrent core's training step (NumbaRNN inside torch autograd, as the training loop runs
    it), then the whole step with readout, loss, clipping and Adam (pure_speedup)."""
    cases = {f: Case(Shape(f, hidden, batch, seq_len, input_size), "cpu", dtype)
             for f in ("rnn", "numba_rnn")}
    benches = {f: make_bench(c, seed) for f, c in cases.items()}
    rec: dict = {"hidden": hidden, "batch": batch, "seq_len": seq_len, "input_size": input_size}
    for q in ("train_step", "forward"):
        t = interleave({f: getattr(b, q) for f, b in benches.items()}, warmup, repeats,
                       min_sample_s)
        pre = "" if q == "train_step" else "forward_"
        rec[f"torch_{q}_ms"], rec[f"numba_{q}_ms"] = ms(t["rnn"]), ms(t["numba_rnn"])
        rec[f"{pre}speedup"] = summarize(ratio_samples(t["rnn"], t["numba_rnn"]))
        if q == "train_step":
            step_s = statistics.median(t["numba_rnn"])
            rec["numba_gflops"] = flops.train_step_flops(cases["numba_rnn"].shape) / step_s / 1e9
            rec["matmul_fraction"] = rec["numba_gflops"] / matmul_gflops
    steps, _ = full_step_pair(hidden, batch, seq_len, input_size, dtype, seed)
    t = interleave(steps, warmup, repeats, min_sample_s)
    rec["torch_full_step_ms"], rec["pure_numba_step_ms"] = ms(t["torch"]), ms(t["numba"])
    rec["pure_speedup"] = summarize(ratio_samples(t["torch"], t["numba"]))
    rec["pure_matmul_fraction"] = (flops.train_step_flops(cases["numba_rnn"].shape)
                                   / statistics.median(t["numba"]) / 1e9 / matmul_gflops)
    return rec
