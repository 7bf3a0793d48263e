"""Per-task views beyond the headline metric: breakdowns of the test predictions (accuracy by
input length, with and without negation, ...) and each trained model's showcase (sampled text,
attention maps). Both are read from the training runs' result files; nothing is recomputed."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rnnbench.report.figures import model_color, save_figure  # noqa: E402

MAX_ATTENTION_EXAMPLES = 2  # heat maps per model in the report


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def breakdown_tables(task: str, runs_by_model: dict[str, list[dict]], folder: Path) -> list[str]:
    """A table per breakdown (rows: models, columns: groups; mean over the runs that have it),
    and a figure where the groups form a series of three or more (e.g. input lengths)."""
    titles = list(dict.fromkeys(t for runs in runs_by_model.values() for r in runs
                                for t in r.get("breakdowns") or {}))
    lines: list[str] = []
    for title in titles:
        table: dict[str, dict[str, float]] = {}
        for model, runs in runs_by_model.items():
            per_group: dict[str, list[float]] = {}
            for r in runs:
                for group, value in (r.get("breakdowns") or {}).get(title, {}).items():
                    per_group.setdefault(group, []).append(value)
            if per_group:
                table[model] = {g: statistics.mean(v) for g, v in per_group.items()}
        groups = list(dict.fromkeys(g for row in table.values() for g in row))
        lines += ["", f"**{title}** (test split, mean over seeds):", "",
                  "| model | " + " | ".join(groups) + " |", "|---" * (len(groups) + 1) + "|"]
        lines += [f"| {m} | " + " | ".join(f"{row[g]:.3g}" if g in row else "—" for g in groups)
                  + " |" for m, row in table.items()]
        if len(groups) >= 3:
            name = f"breakdown_{task}_{_slug(title)}.png"
            fig, ax = plt.subplots(figsize=(7, 3.8), dpi=110)
            for m, row in table.items():
                ax.plot([g for g in groups if g in row], [row[g] for g in groups if g in row],
                        marker="o", color=model_color(m), label=m)
            ax.set_title(f"{task}: {title}")
            ax.set_xlabel(title.split(" by ")[-1] if " by " in title else "group")
            ax.tick_params(axis="x", labelrotation=45)
            ax.legend(fontsize=8)
            save_figure(fig, folder / name)
            lines += ["", f"![{task}: {title}]({folder.name}/{name})"]
    return lines


def _attention_figure(model: str, task: str, show: dict, folder: Path) -> str:
    examples = show["examples"][:MAX_ATTENTION_EXAMPLES]
    fig, axes = plt.subplots(1, len(examples), figsize=(5.5 * len(examples), 4.2), dpi=110,
                             squeeze=False)
    for ax, ex in zip(axes[0], examples, strict=True):
        ax.imshow(ex["weights"], aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(ex["input"])), ex["input"], fontsize=7)
        ax.set_yticks(range(len(ex["output"])), ex["output"], fontsize=7)
        ax.set_xlabel("input")
        ax.set_ylabel("output")
    fig.suptitle(f"{task}, {model}: {show['title']}")
    name = f"attention_{task}_{_slug(model)}.png"
    save_figure(fig, folder / name)
    return name


def showcase_lines(task: str, runs_by_model: dict[str, list[dict]], folder: Path) -> list[str]:
    """Each model's showcase from its lowest seed: text in a block, attention as heat maps."""
    lines: list[str] = []
    for model, runs in runs_by_model.items():
        show = runs[0].get("showcase")
        if not show:
            continue
        lines += ["", f"**{model}** — {show['title']} (seed {runs[0]['seed']}):", ""]
        if show["kind"] == "text":
            lines += ["```text", show["text"].replace("```", "`\u200b``"), "```"]
        elif show["kind"] == "attention" and show.get("examples"):
            name = _attention_figure(model, task, show, folder)
            lines += [f"![{task}: attention of {model}]({folder.name}/{name})"]
            lines += [f"- `{''.join(ex['input'])}` → `{''.join(ex['output'])}`"
                      for ex in show["examples"]]
    return lines
