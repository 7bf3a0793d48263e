"""The gradient-through-time section of the report: figures and markdown from probe results.

Input: probe result dicts as written by rnnbench.probes.run_probe (one per checkpoint), grouped
{model name: [result, ...]} per task. Nothing here recomputes a probe.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rnnbench.report.figures import model_color, save_figure  # noqa: E402
from rnnbench.report.verdict import Claim, Verdict, render_claim  # noqa: E402

HEADLINE = "l0_fwd"  # the first layer's forward direction: every input passes through it
RULE = ("at each stage probed (initialisation, trained) the claim holds if every vanilla (Elman) "
        "model's gradient falls below 1e-3 of its lag-0 value within the sequence "
        "(horizon@1e-3 < T) and every gated (LSTM/GRU) model's decay factor per step is closer "
        "to 1 (smaller |log10 factor|) than every vanilla model's. 'holds' if so at every stage; "
        "'holds only under a condition' if at some stages only, or if only some gated models "
        "beat the vanilla ones; 'not observed' otherwise. A stage without both kinds of model "
        "is skipped.")


def _stages(results: list[dict]) -> dict[str, dict]:
    """{'init': the step-0 probe, 'trained': the latest probe after step 0}, where present."""
    out = {}
    init = [r for r in results if r["step"] == 0]
    trained = [r for r in results if r["step"] > 0]
    if init:
        out["init"] = init[0]
    if trained:
        out["trained"] = max(trained, key=lambda r: (r["step"], r["checkpoint"]))
    return out


def _loss(result: dict, loss: str | None) -> str:
    """The requested loss if probed, else 'final' if probed, else the first one."""
    probed = list(result["gradients"])
    if loss in probed:
        return loss
    return "final" if "final" in probed else probed[0]


def decay_figure(probe_results_by_model: dict[str, list[dict]], path: Path, title: str, *,
                 loss: str | None = "final", curve: str = HEADLINE) -> Path:
    """||dL/dh_t|| / ||dL/dh_{T-1}|| against lag on a log axis; a colour per model, solid at
    initialisation, dashed after training; dotted grey lines at the probe thresholds."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    thresholds: set[float] = set()
    for model, results in probe_results_by_model.items():
        for stage, r in _stages(results).items():
            ratio = r["gradients"][_loss(r, loss)]["curves"][curve]["ratio"]
            pts = [(lag, v) for lag, v in enumerate(ratio) if v is not None and v > 0]
            if not pts:
                continue
            lags, vals = zip(*pts, strict=True)
            ax.plot(lags, vals, color=model_color(model), ls="-" if stage == "init" else "--",
                    label=f"{model} ({'init' if stage == 'init' else 'step ' + str(r['step'])})")
            thresholds.update(r.get("thresholds", []))
    for thr in sorted(thresholds):
        ax.axhline(thr, color="gray", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("lag (steps before the direction's last step)")
    ax.set_ylabel("||dL/dh_t|| relative to lag 0")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    path = Path(path)
    save_figure(fig, path)
    return path


def fmt_cell(v, digits: int = 3) -> str:
    """A table cell: — for None or non-finite, yes/no for booleans, 3 significant digits."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if math.isfinite(v) else "—"
    return str(v)


def _spectral(fig: dict, curve: str) -> tuple[float | None, float | None]:
    """sigma_max of the whole W_hh; spectral radius of the whole (Elman) or, for gated cells
    whose stacked W_hh is not square, the largest over the gate blocks."""
    sigma = fig.get(f"{curve}.w_hh.sigma_max")
    rho = fig.get(f"{curve}.w_hh.spectral_radius")
    if rho is None:
        blocks = [v for k, v in fig.items()
                  if k.startswith(f"{curve}.w_hh_") and k.endswith(".spectral_radius")]
        rho = max(blocks) if blocks else None
    return sigma, rho


def bound_cell(f: dict) -> str:
    """The largest measured ratio over its Pascanu bound, and whether it stays within it."""
    if not f.get("bound.applicable"):
        return "n/a"
    return (f"{fmt_cell(f['bound.max_ratio'])} ("
            + ("ok" if f["bound.holds"] else "**FAILED**") + ")")


def _row(model: str, stage: str, r: dict, loss: str, curve: str) -> str:
    f = r["figures"]
    thr = r["thresholds"]
    sigma, rho = _spectral(f, curve)
    cells = [model, r["cell"], stage, str(r["step"]),
             fmt_cell(f.get(f"{loss}.{curve}.decay_factor")),
             *(fmt_cell(f.get(f"{loss}.{curve}.horizon@{t:g}")) for t in thr), fmt_cell(sigma),
             fmt_cell(rho), fmt_cell(f.get(f"{curve}.saturated_fraction")), bound_cell(f)]
    return "| " + " | ".join(cells) + " |"


def _closeness(factor: float | None) -> float:
    """Distance of a decay factor from 1 on a log scale (inf when unknown)."""
    return abs(math.log10(factor)) if factor and factor > 0 else math.inf


CLAIM = "Gradients vanish in a vanilla RNN over long spans, and gates fix it"


def vanishing_claim(by_model: dict[str, list[dict]], task: str, loss: str | None = "final",
                    curve: str = HEADLINE) -> Claim:
    """"Gradients vanish in a vanilla RNN and gates fix it" on one task, by RULE; models are told
    apart by their probed cell ('rnn_*' vanilla, 'lstm'/'gru' gated)."""
    per_stage: dict[str, list[tuple[str, dict]]] = {}
    for model, results in by_model.items():
        for stage, r in _stages(results).items():
            per_stage.setdefault(stage, []).append((model, r))
    lines, outcomes = [], {}
    for stage, rows in per_stage.items():
        vanilla = [(m, r) for m, r in rows if r["cell"].startswith("rnn_")]
        gated = [(m, r) for m, r in rows if r["cell"] in ("lstm", "gru")]
        if not vanilla or not gated:
            lines.append(f"- {stage}: skipped (needs both a vanilla and a gated model)")
            continue

        def fig(r, key):
            return r["figures"].get(f"{_loss(r, loss)}.{curve}.{key}")

        vanishes = all(fig(r, "horizon@0.001") is not None for _, r in vanilla)
        worst_vanilla = min(_closeness(fig(r, "decay_factor")) for _, r in vanilla)
        better = [_closeness(fig(r, "decay_factor")) < worst_vanilla for _, r in gated]
        outcomes[stage] = ("all" if vanishes and all(better) else
                           "some" if vanishes and any(better) else "none")
        lines.append(f"- {stage}: vanilla horizon@1e-3 "
                     + ", ".join(f"{m} {fmt_cell(fig(r, 'horizon@0.001'))}" for m, r in vanilla)
                     + " (T = " + str(rows[0][1]["seq_len"]) + "); decay per step "
                     + ", ".join(f"{m} {fmt_cell(fig(r, 'decay_factor'))}" for m, r in rows))
    vals = list(outcomes.values())
    if vals and all(v == "all" for v in vals):
        verdict, detail = Verdict.HOLDS, ""
    elif any(v in ("all", "some") for v in vals):
        verdict, detail = Verdict.CONDITION, ", ".join(
            f"{s}: {'holds' if v == 'all' else 'partly' if v == 'some' else 'not observed'}"
            for s, v in outcomes.items())
    elif not vals:
        verdict, detail = Verdict.NOT_OBSERVED, "no stage probed both a vanilla and a gated model"
    else:
        verdict, detail = Verdict.NOT_OBSERVED, ""
    return Claim(f"{CLAIM} ({task})", RULE, verdict, detail, lines,
                 "; ".join(f"{s}: {v}" for s, v in outcomes.items()))


def bound_checks(by_model: dict[str, list[dict]]) -> list[tuple[str, str, dict]]:
    """(model, stage, probe result) for every probed Elman model and stage the bound was
    tested on."""
    return [(model, stage, r) for model, results in by_model.items()
            for stage, r in _stages(results).items() if r.get("bound", {}).get("applicable")]


def bound_lines(by_model: dict[str, list[dict]]) -> list[str]:
    """The Pascanu bound per probed Elman model and stage: which steps were tested, how many
    ratios, the largest over its bound; every violation is called FAILED."""
    out = []
    for model, stage, r in bound_checks(by_model):
        b = r["bound"]
        verdict = "within the bound" if b["holds"] else "**FAILED: above the bound**"
        out.append(f"- {model}, {stage} (step {r['step']}): largest ratio / bound "
                   f"{fmt_cell(b['max_ratio'], 4)} over {b['tested']} ratios of loss "
                   f"'{b['loss']}', {b['steps']}: {verdict}")
    return out


def probes_section(probes_by_task: dict[str, dict[str, list[dict]]],
                   figures: dict[str, str] | None = None, *, loss: str | None = "final",
                   curve: str = HEADLINE) -> list[str]:
    """Markdown lines: per task the claim (render_claim), its evidence a decay figure link
    (figures: task -> relative path), a table of the probe figures at initialisation and after
    training, the bound check and the rule's numbers."""
    out = ["## Gradient flow through time", "",
           "Probe: ||dL/dh_t|| for a fixed batch, relative to its value at lag 0 (the step where "
           f"the direction ends), layer 1 forward direction, loss '{loss}' (the loss of the last "
           "step's prediction). Decay/step: 10^slope of a least-squares fit of log10 ratio vs "
           "lag (ratios > 1e-12). Horizon: first lag with ratio below the threshold (— : not "
           "within T). σmax, ρ: largest singular value and spectral radius of W_hh (gated: ρ is "
           "the largest over the gate blocks). Saturated: fraction of tanh-type units with "
           "|value| > 0.99. Bound (Elman cells): Pascanu et al. (2013), per example and step, "
           "the measured ||dL/dh_{t-1}|| / ||dL/dh_t|| ≤ σmax(W_hh) · max|f'| (max|f'| = 1 for "
           "tanh and relu) wherever the loss adds nothing to h_{t-1} directly: the lags ≥ 1 of "
           "the top layer's directions that the loss reads at their last step only "
           "(rnnbench/probes/bound.py); the cell shows the largest ratio over its bound, and "
           "FAILED when it exceeds 1 beyond rounding.", "",
           f"*Claim:* {CLAIM[0].lower() + CLAIM[1:]}. *Rule:* {RULE} Each task below shows its "
           "evidence and verdict.", ""]
    for task, by_model in probes_by_task.items():
        first = next((r for rs in by_model.values() for r in rs), None)
        if first is None:
            out += [f"### {CLAIM} ({task})", "", "No probe results.", ""]
            continue
        claim = vanishing_claim(by_model, task, loss, curve)
        thr = first["thresholds"]
        table = ["| model | cell | stage | step | decay/step | "
                 + " | ".join(f"horizon@{t:g}" for t in thr)
                 + " | σmax(W_hh) | ρ(W_hh) | saturated | max ratio / bound |",
                 "|" + "---|" * (9 + len(thr))]
        for model, results in by_model.items():
            for stage, r in _stages(results).items():
                table.append(_row(model, stage, r, _loss(r, loss), curve))
        fig = [f"![gradient decay on {task}]({figures[task]})", ""] if figures and \
            task in figures else []
        evidence = [*fig, *table, "", *bound_lines(by_model), *claim.evidence]
        out += render_claim(replace(claim, evidence=evidence), rule=False)
    return out
