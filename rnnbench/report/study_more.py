"""Report sections for the claims of claims_more.py and claims_studies.py: the claims section's
second part (with the length-generalisation figure) and the tables of the depth, overfit and
activation studies (their verdicts, over every study of the kind, are in the claims section)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rnnbench.report.claims import Grouped  # noqa: E402
from rnnbench.report.claims_more import _length_runs, length_table, more_claims  # noqa: E402
from rnnbench.report.claims_state_free import state_free_claim  # noqa: E402
from rnnbench.report.claims_studies import KINDS, _gap, _series, study_claims_more  # noqa: E402
from rnnbench.report.compare import mean_text  # noqa: E402
from rnnbench.report.figures import model_color, save_figure  # noqa: E402
from rnnbench.report.summary import run_ids  # noqa: E402
from rnnbench.report.verdict import Claim, render_claim  # noqa: E402

TITLES = {"depth": "stacked layers at equal width and at equal parameter count",
          "overfit": "LSTM vs GRU on a small dataset: train/validation gap",
          "activation": "tanh vs relu at the same σ_max(W_hh)"}


def all_more_claims(grouped: Grouped, summaries: list[dict]) -> list[Claim]:
    return [*more_claims(grouped, summaries), state_free_claim(grouped),
            *study_claims_more(summaries)]


def length_figure(grouped: Grouped, fig_dir: Path) -> list[str]:
    """One PNG per task with a length: the test metric against the evaluation length, a line
    per model (mean over seeds), the trivial baseline dashed."""
    lines = []
    by_task: dict[str, list] = {}
    for task, model, runs in _length_runs(grouped):
        by_task.setdefault(task, []).append((model, runs))
    for task, models in by_task.items():
        fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
        for model, runs in models:
            rows = [(n, m) for _, n, m, _ in length_table(runs) if m is not None]
            if rows:
                ax.plot(*zip(*rows, strict=True), "o-", color=model_color(model), label=model)
        base = [(n, b) for _, n, _, b in length_table(models[0][1])]
        ax.plot(*zip(*base, strict=True), "--", color="gray", lw=1, label="trivial baseline")
        r0 = models[0][1][0]
        ax.axvline(r0["lengths"]["trained"], color="green", ls=":", lw=1, label="trained at T")
        ticks = [n for _, n, _, _ in length_table(models[0][1])]
        ax.set_xscale("log")
        ax.set_xticks(ticks, labels=[str(n) for n in ticks])
        ax.minorticks_off()
        if not r0["higher_is_better"]:
            ax.set_yscale("log")  # errors span decades from solved to far past the baseline
        ax.set(xlabel=f"evaluation length ({r0['lengths']['key']})", ylabel=f"test {r0['metric']}",
               title=f"{task}: trained at T, tested at 2T and 4T")
        ax.legend(fontsize=8)
        save_figure(fig, fig_dir / f"lengths_{task}.png")
        lines += [f"![{task}: metric against evaluation length](figures/lengths_{task}.png)", ""]
    return lines


def more_claims_section(grouped: Grouped, summaries: list[dict], fig_dir: Path,
                        claims: list[Claim] | None = None) -> list[str]:
    """Every claim of claims_more and claims_studies (`claims`, decided here when None),
    rendered; the length figures after the claim they illustrate (the third)."""
    claims = all_more_claims(grouped, summaries) if claims is None else claims
    lines = [line for c in claims[:3] for line in render_claim(c)]
    lines += length_figure(grouped, Path(fig_dir))
    return lines + [line for c in claims[3:] for line in render_claim(c)]


# ---------------------------------------------------------------- study tables
def _fmt(v, digits: int = 4) -> str:
    return "—" if v is None else f"{v:.{digits}g}"


def _groups(runs: list[dict], *keys) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in runs:
        out.setdefault(tuple(k(r) for k in keys), []).append(r)
    return out


def _status(runs: list[dict]) -> str:
    bad = sum(r["status"] != "ok" for r in runs)
    return f"ok {len(runs) - bad}/{len(runs)}" + (f", diverged {bad}" if bad else "")


def _tests(runs: list[dict]) -> str:
    return mean_text(r["test_metric"] for r in runs if r["status"] == "ok")


def depth_body(s: dict) -> list[str]:
    lines = ["| model | series | layers | width | parameters | test metric | solved | status "
             "| runs |", "|---|---|---|---|---|---|---|---|---|"]
    for (model, _, series, layers), rs in sorted(_groups(
            s["runs"], lambda r: r["model"], lambda r: _series(r) != "equal width", _series,
            lambda r: r["model_config"]["num_layers"]).items()):
        c = rs[0]["model_config"]
        lines.append(f"| {model} | {series} | {layers} | {c['hidden_size']} "
                     f"| {rs[0]['n_params']:,} | {_tests(rs)} "
                     f"| {sum(r['solved'] for r in rs)}/{len(rs)} | {_status(rs)} "
                     f"| {run_ids(rs)} |")
    return lines


def overfit_body(s: dict) -> list[str]:
    lines = ["| model | cell | series | parameters | train metric | final validation | best "
             "validation | test | gap (train − validation) | runs |", "|" + "---|" * 10]
    for (model,), rs in _groups(s["runs"], lambda r: r["model"]).items():
        ok = [r for r in rs if r["status"] == "ok"]
        lines.append(f"| {model} | {rs[0]['facts']['cell']} | {_series(rs[0])} "
                     f"| {rs[0]['n_params']:,} | {mean_text(r['train_metric'] for r in ok)} "
                     f"| {mean_text(r['val_metric'] for r in ok)} "
                     f"| {mean_text(r['best_val_metric'] for r in ok)} | {_tests(rs)} "
                     f"| {mean_text(_gap(r) for r in ok)} | {run_ids(rs)} |")
    return lines


def activation_body(s: dict) -> list[str]:
    lines = ["| σ | nonlinearity | status | diverged at step | decay/step (init) | test metric "
             "| runs |", "|---|---|---|---|---|---|---|"]
    for (sigma, act), rs in sorted(_groups(
            s["runs"], lambda r: r["x_value"],
            lambda r: r["model_config"].get("nonlinearity")).items()):
        steps = ", ".join(str(r["diverged_at_step"]) for r in rs if r["status"] != "ok") or "—"
        growth = [(r["grad"]["init"] or {}).get("decay_factor") for r in rs if r.get("grad")]
        lines.append(f"| {sigma:g} | {act} | {_status(rs)} | {steps} "
                     f"| {mean_text(growth)} | {_tests(rs)} | {run_ids(rs)} |")
    return lines


BODIES = {"depth": depth_body, "overfit": overfit_body, "activation": activation_body}


def study_body_more(s: dict) -> list[str]:
    """A depth, overfit or activation study's table and where its verdict is."""
    r0 = s["runs"][0]
    return [f"Metric: test {r0['metric']} ({'higher' if r0['higher_is_better'] else 'lower'} "
            f"is better; trivial baseline {_fmt(r0['baseline'])}).", "",
            *BODIES[s["kind"]](s), "",
            "The verdict, over every study of this kind, is in the claims section.", ""]


__all__ = ["KINDS", "TITLES", "all_more_claims", "more_claims_section", "study_body_more"]
