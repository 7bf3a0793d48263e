"""Figures for the report, drawn from the curve rows the training runs wrote."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def learning_curves(grouped: dict[str, dict[str, list[dict]]], folder: Path) -> dict[str, str]:
    """One PNG per task: validation metric vs optimiser step, a line per (model, seed)."""
    written = {}
    for task, runs_by_model in grouped.items():
        first = next(iter(runs_by_model.values()))[0]
        metric = first["metric"]
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for i, (model, runs) in enumerate(runs_by_model.items()):
            for j, r in enumerate(runs):
                rows = [row for row in r["curves"] if row.get(f"val_{metric}") not in (None, "")]
                if not rows:
                    continue
                ax.plot([int(row["step"]) for row in rows],
                        [float(row[f"val_{metric}"]) for row in rows],
                        color=f"C{i % 10}", alpha=0.9 if j == 0 else 0.5,
                        label=model if j == 0 else None)
        base = first["baseline"].get(metric)
        if base is not None:
            ax.axhline(base, color="gray", ls="--", lw=1, label=f"baseline ({base:.3g})")
        ax.axhline(first["solved_threshold"], color="green", ls=":", lw=1, label="solved")
        if not first["higher_is_better"]:
            ax.set_yscale("log")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(f"validation {metric}")
        ax.set_title(f"{task}: learning curves")
        ax.legend(fontsize=8, ncol=2)
        fig.tight_layout()
        name = f"curves_{task}.png"
        fig.savefig(folder / name)
        plt.close(fig)
        written[task] = name
    return written
