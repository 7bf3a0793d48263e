"""Report sections for the studies (rnnbench/study.py): markdown and figures from a study's
summary.json, by kind (sigma, forget_bias, clip_mode, memory). Nothing here recomputes a run.

Verdicts follow the report's rules: 'holds', 'holds only under a condition' or 'not observed',
each decided by the rule printed next to the claim.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rnnbench.report.figures import model_color, save_figure  # noqa: E402
from rnnbench.report.probes import decay_figure  # noqa: E402
from rnnbench.report.study_more import KINDS as MORE_KINDS  # noqa: E402
from rnnbench.report.study_more import TITLES as MORE_TITLES  # noqa: E402
from rnnbench.report.study_more import study_body_more  # noqa: E402
from rnnbench.report.study_rules import (  # noqa: E402
    SOLVED_RULE,
    _clip_name,
    _fmt,
    _groups,
    _horizon,
    _init,
    _mean_std,
    _median,
    _values,
    clip_mode_verdict,
    clipping_verdict,
    forget_bias_verdict,
    memory_table,
    memory_verdict,
    sigma_verdict,
)
from rnnbench.report.summary import run_ids  # noqa: E402
from rnnbench.report.verdict import Claim, render_claim  # noqa: E402

TITLES = {"sigma": "recurrent weight scale σ_max(W_hh), with and without clipping",
          "forget_bias": "LSTM forget-gate bias", "clip_mode": "clipping by norm vs by value",
          "memory": "memory length: the metric against T", **MORE_TITLES}


PUBLISHED = [
    "Published results to compare with: Arjovsky, Shah & Bengio (2016), *Unitary Evolution "
    "Recurrent Neural Networks* (ICML), found that a tanh RNN never beat the adding-problem "
    "baseline (MSE 1/6) at T ≥ 100 while an LSTM did up to T = 400; Bai, Kolter & Koltun "
    "(2018), *An Empirical Evaluation of Generic Convolutional and Recurrent Networks for "
    "Sequence Modeling* (arXiv:1803.01271), found every recurrent baseline (LSTM, GRU, vanilla "
    "RNN) at the copy-memory baseline loss 10 ln 8 / (T + 20) for T = 1000. Training budgets "
    "and sizes differ from theirs: compare the shape of the results, not exact lengths."]


# ---------------------------------------------------------------- helpers






def _status(runs: list[dict]) -> str:
    div = [r for r in runs if r["status"] != "ok"]
    return f"ok {len(runs) - len(div)}/{len(runs)}" + (f", diverged {len(div)}" if div else "")


def _diverged_at(runs: list[dict]) -> str:
    steps = [str(r["diverged_at_step"]) for r in runs if r["status"] != "ok"]
    return ", ".join(steps) or "—"


def _log_x(ax, xs) -> None:
    """A log x-axis ticked at the studied values, written plainly."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.set_xticks(sorted(set(xs)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())




def _metric_head(s: dict) -> str:
    r = s["runs"][0]
    return (f"test {r['metric']} ({'higher' if r['higher_is_better'] else 'lower'} is better; "
            f"trivial baseline {_fmt(r['baseline'], 4)}, solved at "
            f"{'≥' if r['higher_is_better'] else '≤'} {r['solved_threshold']:g})")


# ---------------------------------------------------------------- sigma


def _sigma_section(s: dict, fig_dir: Path) -> list[str]:
    name, runs = s["study"], s["runs"]
    lines = [f"Metric: {_metric_head(s)}. Decay/step, horizon and growth come from the gradient "
             "probe of the untrained model (||dL/dh_t|| relative to lag 0, layer 1): growth is "
             "the ratio at the longest lag (> 1: the gradient grows going back in time). "
             "Max ‖g‖: the largest pre-clipping global gradient norm in the last probed "
             "validation round.", "",
             "| σ | clipping | model | status | diverged at step | test metric | clipped "
             "fraction | decay/step (init) | horizon@1e-3 (init) | growth over T (init) "
             "| max ‖g‖ | runs |", "|" + "---|" * 12]
    for (_variant, model), rs in _groups(runs, "variant", "model").items():
        r0 = rs[0]
        gmax = [(r["grad"]["trained"] or {}).get("train_grad_norm") for r in rs]
        gmax = max((g["max"] for g in gmax if g), default=None)
        lines.append(f"| {_fmt(r0['x_value'])} | {_clip_name(r0)} | {model} | {_status(rs)} "
                     f"| {_diverged_at(rs)} | {_mean_std(_values(rs))} "
                     f"| {_fmt(_median([r['clipped_fraction'] for r in rs]), 2)} "
                     f"| {_fmt(_init(r0, 'decay_factor'))} | {_fmt(_horizon(r0))} "
                     f"| {_fmt(_init(r0, 'end_ratio'))} | {_fmt(gmax)} | {run_ids(rs)} |")
    lines.append("")
    # figure 1: the initial gradient curve per sigma (clipping does not change the init)
    curves = {}
    for r in runs:
        init = next((p for p in r["probes"] if p["step"] == 0), None)
        if init is not None and r["x_value"] not in curves:
            curves[r["x_value"]] = (init, r["grad"]["loss"])
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for i, (x, (p, loss)) in enumerate(sorted(curves.items())):
            ratio = p["gradients"][loss]["curves"]["l0_fwd"]["ratio"]
            pts = [(lag, v) for lag, v in enumerate(ratio) if v is not None and v > 0]
            if pts:
                ax.plot(*zip(*pts, strict=True), color=f"C{i % 10}", label=f"σ = {x:g}")
        ax.set_yscale("log")
        ax.set_xlabel("lag (steps before the last step)")
        ax.set_ylabel("||dL/dh_t|| relative to lag 0")
        ax.set_title(f"{name}: gradient through time at initialisation")
        ax.legend(fontsize=8)
        save_figure(fig, fig_dir / f"{name}_init_gradients.png")
        lines += [f"![initial gradients per σ](figures/{name}_init_gradients.png)", ""]
    # figure 2: the test metric against sigma, a line per clipping setting
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    by_clip: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        by_clip[_clip_name(r)].append(r)
    for i, (label, rs) in enumerate(by_clip.items()):
        by_x = {x: g for (x,), g in _groups(rs, "x_value").items()}
        xs = sorted(x for x in by_x if _values(by_x[x]))
        ax.plot(xs, [statistics.mean(_values(by_x[x])) for x in xs], "o-", color=f"C{i}",
                label=f"clipping {label}")
        bad = sorted(x for x, g in by_x.items() if any(r["status"] != "ok" for r in g))
        if bad:
            ax.plot(bad, [0.97] * len(bad), "x", color=f"C{i}", ms=10,
                    transform=ax.get_xaxis_transform(), label=f"diverged ({label})")
    ax.axhline(runs[0]["baseline"], color="gray", ls="--", lw=1, label="baseline")
    _log_x(ax, [r["x_value"] for r in runs])
    ax.set_xlabel("σ_max(W_hh) at initialisation")
    ax.set_ylabel(f"test {runs[0]['metric']}")
    ax.set_title(f"{name}: outcome against σ")
    ax.legend(fontsize=8)
    save_figure(fig, fig_dir / f"{name}_metric.png")
    return lines + [f"![test metric against σ](figures/{name}_metric.png)", ""]


# ---------------------------------------------------------------- forget bias, clip mode


def _outcome_table(s: dict, extra: tuple[str, Callable[[dict], str]]) -> list[str]:
    head, cell = extra
    lines = [f"Metric: {_metric_head(s)}.", "",
             f"| variant | {head} | model | status | test metric | solved | steps to solve "
             "(median) | clipped fraction | decay/step (init) | horizon@1e-3 (init) "
             "| decay/step (trained) | runs |", "|" + "---|" * 12]
    for (variant, model), rs in _groups(s["runs"], "variant", "model").items():
        r0 = rs[0]
        trained = (r0["grad"]["trained"] or {}).get("decay_factor")
        lines.append(f"| {variant} | {cell(r0)} | {model} | {_status(rs)} "
                     f"| {_mean_std(_values(rs))} | {sum(r['solved'] for r in rs)}/{len(rs)} "
                     f"| {_fmt(_median([r['steps_to_solve'] for r in rs]))} "
                     f"| {_fmt(_median([r['clipped_fraction'] for r in rs]), 2)} "
                     f"| {_fmt(_init(r0, 'decay_factor'))} | {_fmt(_horizon(r0))} "
                     f"| {_fmt(trained)} | {run_ids(rs)} |")
    return [*lines, ""]


def _forget_section(s: dict, fig_dir: Path) -> list[str]:
    lines = _outcome_table(s, ("forget bias",
                               lambda r: _fmt(r["model_config"].get("forget_bias"))))
    by = {f"{v} ({m})": rs[0]["probes"] for (v, m), rs in
          _groups(s["runs"], "variant", "model").items() if rs[0]["probes"]}
    if by:
        decay_figure(by, fig_dir / f"{s['study']}_decay.png",
                     f"{s['study']}: gradient through time (h_t, layer 1)")
        lines += [f"![gradient decay per forget bias](figures/{s['study']}_decay.png)", ""]
    return lines


def _memory_section(s: dict, fig_dir: Path) -> list[str]:
    name, runs, key = s["study"], s["runs"], s["x"]
    lines = [f"Metric: {_metric_head(s)}; T is `{key}`. Rule: {SOLVED_RULE}.", "",
             *PUBLISHED, ""]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for (model,), rs in _groups(runs, "model").items():
        rows, longest = memory_table(rs)
        gaps = [r["x"] for r in rows if longest is not None and r["x"] < longest
                and 2 * r["solved"] < r["n"]]
        pts = [(row["x"], statistics.mean(row["values"]),
                statistics.stdev(row["values"]) if len(row["values"]) > 1 else 0.0)
               for row in rows if row["values"]]
        if pts:
            xs, ms, sd = zip(*pts, strict=True)
            ax.errorbar(xs, ms, yerr=sd, fmt="o-", color=model_color(model), capsize=3,
                        label=f"{model} (mean ± std over seeds)")
        gap = f" (yet not solved at T = {', '.join(map(_fmt, gaps))})" if gaps else ""
        lines += [f"**{model}**: longest T solved **{_fmt(longest)}**{gap}", "",
                  "| T | solved | success rate | test metric | baseline | diverged | runs |",
                  "|---|---|---|---|---|---|---|"]
        by_t = {x: g for (x,), g in _groups(rs, "x_value").items()}
        lines += [f"| {_fmt(r['x'])} | {r['solved']}/{r['n']} | {r['rate']:.0%} "
                  f"| {_mean_std(r['values'])} | {_fmt(r['baseline'], 4)} | {r['diverged']} "
                  f"| {run_ids(by_t[r['x']])} |" for r in rows]
        lines.append("")
    base = sorted({(r["x_value"], r["baseline"]) for r in runs if r["baseline"] is not None})
    if base:
        ax.plot(*zip(*base, strict=True), ls="--", color="gray", lw=1, label="trivial baseline")
    ax.axhline(runs[0]["solved_threshold"], color="green", ls=":", lw=1, label="solved")
    _log_x(ax, [r["x_value"] for r in runs])
    if not runs[0]["higher_is_better"]:
        ax.set_yscale("log")
    ax.set_xlabel(f"T ({key})")
    ax.set_ylabel(f"test {runs[0]['metric']}")
    ax.set_title(f"{name}: {s['task']}, metric against T")
    ax.legend(fontsize=8)
    save_figure(fig, fig_dir / f"{name}_memory.png")
    return [*lines, f"![metric against T](figures/{name}_memory.png)", ""]


def study_claims(summary: dict) -> list[Claim]:
    """The claims a study tests (rnnbench/report/study_rules.py decides them)."""
    kind, runs = summary["kind"], summary["runs"]
    if kind in MORE_KINDS or not runs:  # MORE_KINDS: decided over every study of the kind
        return []
    if kind == "sigma":
        return [sigma_verdict([(r["x_value"], _init(r, "decay_factor")) for r in runs]),
                clipping_verdict(runs)]
    rule = {"forget_bias": forget_bias_verdict, "clip_mode": clip_mode_verdict,
            "memory": memory_verdict}[kind]
    return [rule(runs)]


def study_section(summary: dict, figures_dir: Path) -> list[str]:
    """Markdown lines for one study (figures written into figures_dir, linked as
    figures/<file>), ending with its claims."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    s, runs = summary, summary["runs"]
    lines = [f"## Study `{s['study']}`: {TITLES[s['kind']]}", "",
             f"Task `{s['task']}`, models {', '.join(s['models'])}, seeds "
             f"{', '.join(map(str, s['seeds']))}: {len(runs)} runs, "
             f"{sum(r['status'] != 'ok' for r in runs)} diverged. Variants (overrides on top "
             "of params.yaml):", ""]
    lines += [f"- {v['label']}: `{' '.join(v['overrides'])}`" for v in s["variants"]] + [""]
    if not runs:
        return [*lines, "No runs.", ""]
    body = {"sigma": _sigma_section, "forget_bias": _forget_section, "memory": _memory_section,
            "clip_mode": lambda s, _d: _outcome_table(s, ("clipping", _clip_name)),
            **{k: lambda s, _d: study_body_more(s) for k in MORE_KINDS}}[s["kind"]]
    return [*lines, *body(s, figures_dir),
            *(line for c in study_claims(s) for line in render_claim(c))]
