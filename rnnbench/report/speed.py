"""The speed section of the report: tables, a figure and two claims, all from speed.json alone."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LINEAR_R2 = 0.98  # R^2 of time = a + b T above which the growth counts as linear
CUDNN = {None: "–", True: "on", False: "off"}


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def _stat(s: dict) -> str:
    return f"{s['median']:.3g} ± {s['iqr'] / 2:.2g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def _base_configs(data: dict, device: str) -> list[dict]:
    """Configs at the base variant of the grid (fewest layers, unidirectional, cuDNN on)."""
    cfgs = [c for c in data["configs"] if c["device"] == device and c["cudnn"] in (None, True)]
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
    header = ["model", "H", "B", "T", "L", "bi", "cuDNN", "forward ms", "train step ms",
              "latency B=1 ms", "seq/s", "GFLOP/s", "of matmul", "peak MiB", "params"]
    rows = [[c["family"], str(c["hidden"]), str(c["batch"]), str(c["seq_len"]), str(c["layers"]),
             "yes" if c["bidirectional"] else "no", CUDNN[c["cudnn"]],
             _stat(c["forward_ms"]), _stat(c["train_step_ms"]), _stat(c["latency_b1_ms"]),
             f"{c['train_seq_per_s']:.0f}", f"{c['train_gflops']:.2f}",
             f"{c['matmul_fraction']:.1%}", f"{c['peak_mem_mib']:.2f}", str(c["params"])]
            for c in configs]
    return ["Times: median ± half the IQR of the samples.", "", *_table(header, rows)]


def ratio_table(ratios: list[dict]) -> list[str]:
    header = ["ratio", "family", "quantity", "H", "B", "T", "L", "bi", "median", "IQR"]
    rows = [[r["name"], r["family"] or "–", r["quantity"], str(r["hidden"]), str(r["batch"]),
             str(r["seq_len"]), str(r["layers"]), "yes" if r["bidirectional"] else "no",
             f"{r['median']:.3f}", f"{r['iqr']:.3f}"] for r in ratios]
    return ["Median of per-sample ratios, the two cases timed interleaved in one run "
            "(< 1: the numerator is faster).", "", *_table(header, rows)]


def numba_table(points: list[dict]) -> list[str]:
    header = ["H", "B", "T", "D", "torch ms", "numba ms", "speedup", "forward speedup",
              "numba GFLOP/s", "of matmul", "whole step: torch ms", "pure Numba ms",
              "speedup", "of matmul"]
    rows = [[str(p["hidden"]), str(p["batch"]), str(p["seq_len"]), str(p["input_size"]),
             _stat(p["torch_train_step_ms"]), _stat(p["numba_train_step_ms"]),
             f"{p['speedup']['median']:.2f}", f"{p['forward_speedup']['median']:.2f}",
             f"{p['numba_gflops']:.2f}", f"{p['matmul_fraction']:.1%}",
             _stat(p["torch_full_step_ms"]), _stat(p["pure_numba_step_ms"]),
             f"{p['pure_speedup']['median']:.2f}", f"{p['pure_matmul_fraction']:.1%}"]
            for p in points]
    return ["Speedup = torch time / Numba time (> 1: Numba is faster), median of interleaved "
            "per-sample ratios. Core step: the recurrent layer with a fixed loss and SGD, "
            "NumbaRNN running inside torch autograd as the training loop uses it. Whole step: "
            "RNN + linear head on the last step + MSE + clipping by norm + Adam, torch against "
            "the pure-Numba NumbaTrainer (rnnbench/kernels/step.py) from the same weights.",
            "", *_table(header, rows)]


def start_lines(data: dict) -> list[str]:
    lines = []
    comp = data.get("numba_compile")
    if comp:
        lines.append(f"- Numba JIT in this process: first step {comp['first_call_s']:.3f} s, "
                     f"warm {comp['warm_call_s'] * 1e3:.2f} ms, compile/load "
                     f"{comp['compile_s']:.3f} s")
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


def throughput_figure(data: dict, folder: Path) -> str | None:
    """Training throughput (sequences/s) vs H, one line per (model, device, B, T), log-log."""
    series: dict[tuple, list[tuple[int, float]]] = {}
    for dev in data["matmul"]:
        for c in _base_configs(data, dev):
            key = (c["family"], dev, c["batch"], c["seq_len"])
            series.setdefault(key, []).append((c["hidden"], c["train_seq_per_s"]))
    if not series:
        return None
    fams = list(dict.fromkeys(k[0] for k in series))
    styles = ["-", "--", ":", "-."]
    tshapes = sorted({k[2:] for k in series})
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for key, pts in series.items():
        pts.sort()
        ax.plot(*zip(*pts, strict=True), marker="o", color=f"C{fams.index(key[0]) % 10}",
                ls=styles[tshapes.index(key[2:]) % len(styles)],
                label=f"{key[0]} {key[1]} B={key[2]} T={key[3]}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hidden size H")
    ax.set_ylabel("training throughput (sequences/s)")
    ax.set_title("training step throughput vs hidden size")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    name = "speed_throughput.png"
    fig.savefig(folder / name)
    plt.close(fig)
    return name


def speed_section(data: dict, figures_dir: Path) -> list[str]:
    lines = ["## Speed", "", *environment_lines(data)]
    cpu = [c for c in data["configs"] if c["device"] == "cpu"]
    if cpu:
        lines += ["### CPU", "", *config_table(cpu)]
    fig = throughput_figure(data, Path(figures_dir))
    if fig:
        lines += [f"![training throughput vs hidden size]({Path(figures_dir).name}/{fig})", ""]
    if data["ratios"]:
        lines += ["### Ratios measured side by side", "", *ratio_table(data["ratios"])]
    if data["numba_vs_torch"]:
        lines += ["### NumbaRNN vs torch nn.RNN", "", *numba_table(data["numba_vs_torch"])]
    lines += start_lines(data)
    gpu = [c for c in data["configs"] if c["device"] == "cuda"]
    if gpu:
        lines += ["### GPU", "", *config_table(gpu)]
    if data["timer_check"]:
        rows = [[t["key"], f"{t['ours_ms']:.3f}", f"{t['timer_ms']:.3f}", f"{t['ratio']:.3f}"]
                for t in data["timer_check"]]
        lines += ["### Method check against torch.utils.benchmark.Timer", "",
                  *_table(["case", "ours ms", "Timer ms", "ratio"], rows)]
    if data["skipped"]:
        lines += [f"- skipped: {s.get('family') or ''} {s['device']}: {s['reason']}"
                  for s in data["skipped"]] + [""]
    return lines


# ---------------------------------------------------------------- claims
def _claim(title: str, rule: str, rows: list[str], verdict: str) -> list[str]:
    return [f"### {title}", "", f"*Measurement and rule:* {rule}", "", *rows, "",
            f"**Verdict: {verdict}**", ""]


def gru_faster_claim(data: dict) -> list[str]:
    """Holds if at every shape the 75th percentile of the per-sample GRU/LSTM training-step
    ratios is below 1; 'only under a condition' if at some shapes; else not observed."""
    rs = [r for r in data["ratios"] if r["name"] == "gru/lstm" and r["quantity"] == "train_step"]
    rule = ("interleaved GRU/LSTM training-step time ratio at each shape; GRU is faster at a "
            "shape when the 75th percentile of the per-sample ratios is < 1.")
    rows = [f"- {r['device']} H={r['hidden']} B={r['batch']} T={r['seq_len']}: median "
            f"{r['median']:.3f} (q25 {r['q25']:.3f}, q75 {r['q75']:.3f})" for r in rs]
    faster = [r for r in rs if r["q75"] < 1]
    if not rs:
        verdict = "not observed (the grid timed no GRU and LSTM side by side)"
    elif len(faster) == len(rs):
        verdict = "holds"
    elif faster:
        where = ", ".join(f"H={r['hidden']} B={r['batch']} T={r['seq_len']} {r['device']}"
                          for r in faster)
        verdict = f"holds only under a condition: GRU faster at {where} only"
    else:
        verdict = "not observed"
    return _claim("GRU trains faster than LSTM", rule, rows, verdict)


def _affine_fits(data: dict) -> list[tuple[list[dict], float, float, float]]:
    """Per (model, device, H, B) with >= 3 sequence lengths: least-squares train-step time =
    a + b T; returns (configs by T, a in ms, b in ms per step, R^2)."""
    groups: dict[tuple, list[dict]] = {}
    for dev in data["matmul"]:
        for c in _base_configs(data, dev):
            groups.setdefault((c["family"], dev, c["hidden"], c["batch"]), []).append(c)
    out = []
    for cs in groups.values():
        cs = sorted(cs, key=lambda c: c["seq_len"])
        if len({c["seq_len"] for c in cs}) < 3:
            continue
        t = [float(c["seq_len"]) for c in cs]
        y = [c["train_step_ms"]["median"] for c in cs]
        tm, ym = sum(t) / len(t), sum(y) / len(y)
        b = sum((ti - tm) * (yi - ym) for ti, yi in zip(t, y, strict=True)) \
            / sum((ti - tm) ** 2 for ti in t)
        a = ym - b * tm
        ss_res = sum((yi - (a + b * ti)) ** 2 for ti, yi in zip(t, y, strict=True))
        ss_tot = sum((yi - ym) ** 2 for yi in y)
        out.append((cs, a, b, 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0))
    return out


def linear_time_claim(data: dict) -> list[str]:
    """Holds if, for every (model, H, B), time = a + b T fits the measured training-step times
    with R^2 >= LINEAR_R2 and b > 0: a fixed cost plus the same cost for every time step."""
    rule = ("training-step time at three or more sequence lengths T for each model, H and B, "
            "fitted by least squares as a + b·T (a: fixed cost per call, b: cost per time "
            f"step); linear when b > 0 and R² ≥ {LINEAR_R2}.")
    fits = _affine_fits(data)
    rows = [f"- {cs[0]['family']} {cs[0]['device']} H={cs[0]['hidden']} B={cs[0]['batch']}: "
            + ", ".join(f"T={c['seq_len']} {c['train_step_ms']['median']:.3g} ms" for c in cs)
            + f"; a = {a:.3g} ms, b = {b * 1e3:.3g} µs per step, R² = {r2:.3f}"
            for cs, a, b, r2 in fits]
    ok = [f for f in fits if f[2] > 0 and f[3] >= LINEAR_R2]
    if not fits:
        verdict = "not observed (the grid needs three sequence lengths)"
    elif len(ok) == len(fits):
        verdict = "holds"
    elif ok:
        off = ", ".join(f"{cs[0]['family']} H={cs[0]['hidden']} B={cs[0]['batch']} "
                        f"(R² {r2:.3f})" for cs, _, b, r2 in fits if (cs, _, b, r2) not in ok)
        verdict = (f"holds only under a condition: linear for {len(ok)} of {len(fits)} "
                   f"(model, H, B); not at {off}")
    else:
        verdict = "not observed"
    return _claim("Recurrence is sequential: time grows linearly with sequence length", rule,
                  rows, verdict)


def speed_claims(data: dict) -> list[str]:
    return gru_faster_claim(data) + linear_time_claim(data)
