"""The speed section of the report and its claims, from speed.json alone."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rnnbench.models.cost import STATE_FREE  # noqa: E402
from rnnbench.report.figures import save_figure  # noqa: E402
from rnnbench.report.parity import parity_lines  # noqa: E402
from rnnbench.report.speed_length import (  # noqa: E402
    affine_fit,
    length_lines,
    log_depth_claim,
)
from rnnbench.report.speed_length import table as _table  # noqa: E402
from rnnbench.report.verdict import Claim, Verdict, render_claim  # noqa: E402

LINEAR_R2 = 0.98  # R^2 of time = a + b T above which the growth counts as linear
EQUAL_IMPLS = ("no_onednn", "no_cudnn", "unrolled")  # every cell through the same kind of code
IMPL_TEXT = {"default": "as shipped", "no_onednn": "oneDNN off", "no_cudnn": "cuDNN off",
             "unrolled": "cell by cell", "sequential": "plain loop",
             "numba_scan": "Numba loop"}


def _stat(s: dict) -> str:
    return f"{s['median']:.3g} ± {s['iqr'] / 2:.2g}"


def base_configs(data: dict, device: str, impl: str = "default") -> list[dict]:
    """Configs at the base variant of the grid (fewest layers, one direction) under `impl`."""
    cfgs = [c for c in data["configs"] if c["device"] == device and c["impl"] == impl]
    if not cfgs:
        return []
    l0 = min(c["layers"] for c in cfgs)
    bi0 = min(c["bidirectional"] for c in cfgs)
    return [c for c in cfgs if c["layers"] == l0 and c["bidirectional"] == bi0]


def environment_lines(data: dict) -> list[str]:
    env, mm = data["environment"], data["matmul"]
    threads = ", ".join(f"{k} {v}" for k, v in env["threads"].items())
    lines = [f"- CPU: {env['cpu_model']} ({env['cpu_count']} cores); GPU: {env['gpu_name']} "
             f"(CUDA {env['cuda_version']}, cuDNN {env['cudnn_version']})",
             f"- torch {env['torch']}, numba {env['numba']}, numpy {env['numpy']}; {threads}"]
    for dev, m in mm.items():
        parts = [f"{k.removesuffix('_gflops')} {m[k]['median']:.1f}" for k in
                 ("numpy_gflops", "torch_gflops") if k in m]
        lines.append(f"- {dev} {m['n']}² {m['dtype']} matmul GFLOP/s: {', '.join(parts)} "
                     f"(reference {m['rate_gflops']:.1f})")
    return lines + [""]


def config_table(configs: list[dict]) -> list[str]:
    header = ["model", "implementation", "kernel that ran", "H", "B", "T", "L", "bi",
              "train step ms", "forward ms", "latency B=1 ms", "GFLOP/s", "of matmul",
              "peak MiB", "params"]
    rows = [[c["family"], IMPL_TEXT[c["impl"]], c["kernel"].split(":")[0], str(c["hidden"]),
             str(c["batch"]), str(c["seq_len"]), str(c["layers"]),
             "yes" if c["bidirectional"] else "no", _stat(c["train_step_ms"]),
             _stat(c["forward_ms"]), _stat(c["latency_b1_ms"]), f"{c['train_gflops']:.2f}",
             f"{c['matmul_fraction']:.1%}", f"{c['peak_mem_mib']:.2f}", str(c["params"])]
            for c in configs]
    kernels = sorted({c["kernel"] for c in configs})
    return ["The training step timed is the one training runs (rnnbench.training.step: the "
            f"network and its head, MSE, clipping by norm, {configs[0]['optimizer']}); "
            "GFLOP/s count all of it (rnnbench.models.cost). Times: median ± half the IQR. "
            "Kernels, read from each step's autograd graph: " + "; ".join(kernels) + ".", "",
            *_table(header, rows)]


def ratio_table(ratios: list[dict]) -> list[str]:
    header = ["ratio", "family", "implementation", "quantity", "H", "B", "T", "L", "bi",
              "median", "IQR"]
    rows = [[r["name"], r["family"] or "–", r["impl"], r["quantity"], str(r["hidden"]),
             str(r["batch"]), str(r["seq_len"]), str(r["layers"]),
             "yes" if r["bidirectional"] else "no", f"{r['median']:.3f}", f"{r['iqr']:.3f}"]
            for r in ratios]
    return ["Median of per-sample ratios, the two cases timed interleaved in one run "
            "(< 1: the numerator is faster).", "", *_table(header, rows)]


def numba_table(points: list[dict]) -> list[str]:
    header = ["H", "B", "T", "D", "torch ms", "numba ms", "speedup", "forward speedup",
              "numba GFLOP/s", "of matmul"]
    rows = [[str(p["hidden"]), str(p["batch"]), str(p["seq_len"]), str(p["input_size"]),
             _stat(p["torch_train_step_ms"]), _stat(p["numba_train_step_ms"]),
             f"{p['speedup']['median']:.2f}", f"{p['forward_speedup']['median']:.2f}",
             f"{p['numba_gflops']:.2f}", f"{p['matmul_fraction']:.1%}"] for p in points]
    return ["Speedup = torch time / Numba time (> 1: Numba is faster), median of interleaved "
            "per-sample ratios, of the training step as fit takes it (NumbaRNN inside torch "
            "autograd, the same head, loss, clipping and optimiser as nn.RNN).", "",
            *_table(header, rows)]


def start_lines(data: dict) -> list[str]:
    lines = []
    comp = data.get("numba_compile")
    if comp:
        lines.append(f"- Numba JIT in this process: compile or cache load "
                     f"{comp['compile_s']:.3f} s (first step {comp['first_call_s']:.3f} s, "
                     f"warm {comp['warm_call_s'] * 1e3:.2f} ms)")
    cs = data.get("cached_start")
    if cs:
        for name in ("fresh_cache", "cached"):
            r = cs[name]
            lines.append(f"- {name}: spawn to end of first step {r['to_first_step_s']:.2f} s "
                         f"(interpreter {r['interpreter_s']:.2f}, imports {r['import_s']:.2f}, "
                         f"model build incl. numba import {r.get('build_s', 0):.2f}, "
                         f"Numba work {r['numba_work_s']:.2f} s)")
        ok = "meets" if cs["cached_meets_target"] else "misses"
        lines.append(f"- cached start {ok} the target of < {cs['target_numba_work_s']:g} s "
                     "of Numba work")
    return lines + [""] if lines else []


def timer_lines(checks: list[dict]) -> list[str]:
    if not checks:
        return []
    rows = [[t["key"], f"{t['ours_ms']:.3f}", f"{t['timer_ms']:.3f}", f"{t['ratio']:.3f}",
             "ok" if t["ok"] else "**FAILED**"] for t in checks]
    failed = [t for t in checks if not t["ok"]]
    head = (f"**Method check FAILED for {len(failed)} of {len(checks)} cases:** our timer and "
            "torch's disagree by more than the tolerance; the timings above are suspect."
            if failed else f"Our timer agrees with torch's within ±{checks[0]['tolerance']:.0%} "
            "on every case checked.")
    how = (f"The two take turns sample by sample ({checks[0].get('pairs', '?')} pairs: one of our "
           "samples, then one Timer block of as many calls), so the machine's drift hits both.")
    return ["### Method check against torch.utils.benchmark.Timer", "", head, how, "",
            *_table(["case", "ours ms", "Timer ms", "ours/Timer", "check"], rows)]


SIZES = ("hidden", "seq_len", "batch")
SIZE_NAMES = {"hidden": "hidden size H", "seq_len": "sequence length T (steps)",
              "batch": "batch size B (sequences)"}


def figure_axis(configs: list[dict]) -> str | None:
    """What the grid varies most among H, T and B: the throughput figure's x-axis; None when
    the grid varies none of them (a figure would be one column of dots)."""
    axis = max(SIZES, key=lambda k: len({c[k] for c in configs}))
    return axis if len({c[axis] for c in configs}) > 1 else None


def _base(data: dict) -> list[dict]:
    return [c for dev in data["matmul"] for c in base_configs(data, dev)]


def throughput_caption(data: dict) -> str:
    """The figure's caption: what it plots against, and the sizes held fixed in this grid."""
    configs = _base(data)
    axis = figure_axis(configs)
    held = ", ".join(f"{k[0].upper()} = {'/'.join(str(v) for v in sorted({c[k] for c in configs}))}"
                     for k in SIZES if k != axis)
    return (f"Training throughput against {SIZE_NAMES[axis].split(' (')[0]}, the size this grid "
            f"varies most ({held}; a line per model and held size).")


def throughput_figure(data: dict, folder: Path) -> str | None:
    """Training throughput (sequences/s) against what the grid varies most, log-log, one line
    per (model, device, the other two sizes); None when the grid varies no size."""
    configs = _base(data)
    axis = figure_axis(configs) if configs else None
    if axis is None:
        return None
    others = [k for k in SIZES if k != axis]
    series: dict[tuple, list[tuple[int, float]]] = {}
    for c in configs:
        key = (c["family"], c["device"], *(c[k] for k in others))
        series.setdefault(key, []).append((c[axis], c["train_seq_per_s"]))
    fams = list(dict.fromkeys(k[0] for k in series))
    shapes = sorted({k[2:] for k in series})
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for key, pts in series.items():
        pts.sort()
        label = f"{key[0]} {key[1]} " + " ".join(f"{k[0].upper()}={v}"
                                                  for k, v in zip(others, key[2:], strict=True))
        ax.plot(*zip(*pts, strict=True), marker="o", color=f"C{fams.index(key[0]) % 10}",
                ls=["-", "--", ":", "-."][shapes.index(key[2:]) % 4], label=label)
    names = SIZE_NAMES
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(names[axis])
    ax.set_ylabel("training throughput (sequences/s)")
    ax.set_title(f"training step throughput against {names[axis].split(' (')[0]}")
    ax.legend(fontsize=7, ncol=2)
    name = "speed_throughput.png"
    save_figure(fig, folder / name)
    return name


def speed_section(data: dict, figures_dir: Path) -> list[str]:
    lines = ["## Speed", "", *environment_lines(data)]
    for device, title in (("cpu", "CPU"), ("cuda", "GPU")):
        configs = [c for c in data["configs"] if c["device"] == device]
        if configs:
            lines += [f"### {title}", "", *config_table(configs)]
    fig = throughput_figure(data, Path(figures_dir))
    if fig:
        lines += [throughput_caption(data), "",
                  f"![training throughput]({Path(figures_dir).name}/{fig})", ""]
    if data["ratios"]:
        lines += ["### Ratios measured side by side", "", *ratio_table(data["ratios"])]
    if data["numba_vs_torch"]:
        lines += ["### NumbaRNN vs torch nn.RNN", "", *numba_table(data["numba_vs_torch"])]
    lines += parity_lines(data.get("parity"), Path(figures_dir))
    if data.get("length"):
        lines += length_lines(data["length"])
    lines += start_lines(data)
    lines += timer_lines(data["timer_check"])
    if data["skipped"]:
        lines += [f"- skipped: {s.get('family') or ''} {s['device']}: {s['reason']}"
                  for s in data["skipped"]] + [""]
    return lines


# ---------------------------------------------------------------- claims
def _faster(ratios: list[dict]) -> list[bool]:
    """GRU faster at a shape: the 75th percentile of its per-sample ratios is below 1."""
    return [r["q75"] < 1 for r in ratios]


def _median_of(rs: list[dict]) -> str:
    meds = sorted(r["median"] for r in rs)
    return f"{meds[0]:.2f}" if len(meds) == 1 else f"{meds[0]:.2f}–{meds[-1]:.2f}"


def gru_faster_claim(data: dict) -> Claim:
    """What the architecture does (flops per step, counted) apart from what this build of torch
    does (GRU/LSTM time ratios per implementation). Holds if GRU is faster at every shape both
    under equal implementations and as shipped; holds only under a condition if under equal
    implementations only (or at some shapes only); not observed if nowhere."""
    rs = [r for r in data["ratios"] if r["name"] == "gru/lstm" and r["quantity"] == "train_step"]
    flops = {(c["cell"], c["hidden"], c["batch"], c["seq_len"], c["device"]): c["flops"]
             for c in data["configs"] if c["impl"] == "default"}
    fl = [flops[("gru", r["hidden"], r["batch"], r["seq_len"], r["device"])]["train_step"]
          / flops[("lstm", r["hidden"], r["batch"], r["seq_len"], r["device"])]["train_step"]
          for r in rs if ("gru", r["hidden"], r["batch"], r["seq_len"], r["device"]) in flops
          and ("lstm", r["hidden"], r["batch"], r["seq_len"], r["device"]) in flops]
    kernels = {(c["cell"], c["impl"]): c["kernel"].split(":")[0] for c in data["configs"]}
    evidence = [f"- architecture: a GRU training step counts {min(fl):.2f}–{max(fl):.2f}× the "
                "flops of an LSTM's (3 gate blocks against 4)" if fl else
                "- architecture: GRU has 3 gate blocks against the LSTM's 4"]
    by_impl: dict[str, list[dict]] = {}
    for r in rs:
        by_impl.setdefault(r["impl"], []).append(r)
    for impl, group in by_impl.items():
        k = f"GRU {kernels.get(('gru', impl), '?')}, LSTM {kernels.get(('lstm', impl), '?')}"
        evidence.append(f"- {IMPL_TEXT[impl]} ({k}): GRU/LSTM {_median_of(group)} over "
                        f"{len(group)} shape(s); GRU faster at {sum(_faster(group))}")
        evidence += [f"  - {r['device']} H={r['hidden']} B={r['batch']} T={r['seq_len']}: "
                     f"median {r['median']:.3f} (q25 {r['q25']:.3f}, q75 {r['q75']:.3f})"
                     for r in group]
    equal = [r for impl in EQUAL_IMPLS for r in by_impl.get(impl, [])]
    shipped = by_impl.get("default", [])
    measurement = ("the training step of GRU and LSTM timed interleaved at each shape, as "
                   "shipped and under equal implementations (oneDNN off: both through ATen's "
                   "per-step loop; cell by cell: both through the same generic ops); GRU is "
                   "faster at a shape when the 75th percentile of the per-sample GRU/LSTM "
                   "ratios is < 1. The flop count says what the architecture costs, the "
                   "timings what this build of torch does with it.")
    number = (f"GRU/LSTM {_median_of(equal)} under equal implementations, "
              f"{_median_of(shipped)} as shipped" if equal and shipped else
              f"GRU/LSTM {_median_of(rs)}" if rs else "")
    if not rs:
        return Claim("GRU trains faster than LSTM", measurement, Verdict.NOT_OBSERVED,
                     "the grid timed no GRU and LSTM side by side", evidence)
    eq_fast, sh_fast = _faster(equal), _faster(shipped)
    if eq_fast and all(eq_fast) and sh_fast and all(sh_fast):
        verdict, detail = Verdict.HOLDS, ""
    elif eq_fast and all(eq_fast):
        shipped_kernel = kernels.get(("lstm", "default"), "?")
        verdict, detail = Verdict.CONDITION, (
            "under equal implementations only; as shipped, this torch build runs the LSTM "
            f"through a {shipped_kernel} fused kernel and the GRU through a per-step loop, and "
            f"the GRU is slower (GRU/LSTM {_median_of(shipped)})" if shipped else
            "under equal implementations (not timed as shipped)")
    elif any(eq_fast) or any(sh_fast):
        verdict, detail = Verdict.CONDITION, "at some shapes and implementations only"
    else:
        verdict, detail = Verdict.NOT_OBSERVED, ""
    return Claim("GRU trains faster than LSTM", measurement, verdict, detail, evidence, number)


def _affine_fits(data: dict) -> list[tuple[list[dict], float, float, float]]:
    """Per (model, device, H, B) with >= 3 sequence lengths: least-squares train-step time =
    a + b T; returns (configs by T, a in ms, b in ms per step, R^2)."""
    groups: dict[tuple, list[dict]] = {}
    for dev in data["matmul"]:
        for c in base_configs(data, dev):
            if c["cell"] in STATE_FREE:  # their claim is the next one (speed_length)
                continue
            groups.setdefault((c["family"], dev, c["hidden"], c["batch"]), []).append(c)
    out = []
    for cs in groups.values():
        cs = sorted(cs, key=lambda c: c["seq_len"])
        if len({c["seq_len"] for c in cs}) < 3:
            continue
        a, b, r2 = affine_fit([float(c["seq_len"]) for c in cs],
                              [c["train_step_ms"]["median"] for c in cs])
        out.append((cs, a, b, r2))
    return out


def linear_time_claim(data: dict) -> Claim:
    """Holds if, for every (model, H, B), time = a + b T fits the measured training-step times
    with R^2 >= LINEAR_R2 and b > 0: a fixed cost plus the same cost for every time step. The
    cells whose gates read h_{t-1} only: the state-free ones are the counterpart claim's."""
    rule = ("training-step time at three or more sequence lengths T for each model, H and B, "
            "fitted by least squares as a + b·T (a: fixed cost per call, b: cost per time "
            f"step); linear when b > 0 and R² ≥ {LINEAR_R2}.")
    fits = _affine_fits(data)
    rows = [f"- {cs[0]['family']} {cs[0]['device']} H={cs[0]['hidden']} B={cs[0]['batch']}: "
            + ", ".join(f"T={c['seq_len']} {c['train_step_ms']['median']:.3g} ms" for c in cs)
            + f"; a = {a:.3g} ms, b = {b * 1e3:.3g} µs per step, R² = {r2:.3f}"
            for cs, a, b, r2 in fits]
    ok = [b > 0 and r2 >= LINEAR_R2 for _, _, b, r2 in fits]
    title = "Recurrence is sequential: time grows linearly with sequence length"
    number = f"R² ≥ {min(f[3] for f in fits):.3f} over {len(fits)} fits" if fits else ""
    if not fits:
        return Claim(title, rule, Verdict.NOT_OBSERVED, "the grid needs three sequence lengths",
                     rows)
    if all(ok):
        return Claim(title, rule, Verdict.HOLDS, "", rows, number)
    if any(ok):
        off = ", ".join(f"{cs[0]['family']} H={cs[0]['hidden']} B={cs[0]['batch']} "
                        f"(R² {r2:.3f})" for (cs, _, _, r2), good in zip(fits, ok, strict=True)
                        if not good)
        return Claim(title, rule, Verdict.CONDITION,
                     f"linear for {sum(ok)} of {len(fits)} (model, H, B); not at {off}", rows,
                     number)
    return Claim(title, rule, Verdict.NOT_OBSERVED, "", rows, number)


def speed_claims(data: dict) -> list[Claim]:
    return [gru_faster_claim(data), linear_time_claim(data), log_depth_claim(data)]


def speed_claim_lines(data: dict) -> list[str]:
    return [line for c in speed_claims(data) for line in render_claim(c)]
