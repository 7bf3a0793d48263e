"""reports/plots/: the data behind the report's figures as CSV files that DVC plots (dvc.yaml's
top-level `plots`, templates in .dvc/plots/), so `dvc plots show` draws them and `dvc plots diff`
compares two experiments: learning curves and gradient decay per task, the metric against T per
memory study, the training step time against sequence length. One row per point, the line it
belongs to in the column `series`."""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path

from rnnbench.report.probes import HEADLINE, _loss, _stages

KINDS = ("curves", "decay", "memory", "speed")  # one folder each


def _write(path: Path, fields: list[str], rows: list[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def curve_rows(by_model: dict[str, list[dict]]) -> list[dict]:
    """Validation loss against step, a series per (model, seed)."""
    return [{"step": int(row["step"]), "series": f"{model} seed{r['seed']}",
             "val_loss": float(row["val_loss"])}
            for model, runs in by_model.items() for r in runs for row in r["curves"]
            if row.get("val_loss") not in (None, "")]


def decay_rows(by_model: dict[str, list[dict]]) -> list[dict]:
    """||dL/dh_t|| relative to lag 0 against the lag (layer 1, forward), a series per (model,
    stage: init or trained); ratios of 0 (below float range) left out, as on a log axis."""
    rows = []
    for model, results in by_model.items():
        for stage, r in _stages(results).items():
            curve = r["gradients"][_loss(r, "final")]["curves"].get(HEADLINE)
            ratio = curve["ratio"] if curve else []
            rows += [{"lag": lag, "series": f"{model} {stage}", "ratio": v}
                     for lag, v in enumerate(ratio) if v is not None and v > 0]
    return rows


def memory_rows(summary: dict) -> list[dict]:
    """Mean test metric over the seeds that trained against T, a series per model."""
    by: dict[tuple, list[float]] = {}
    for r in summary["runs"]:
        if r["status"] == "ok" and r["test_metric"] is not None:
            by.setdefault((r["model"], r["x_value"]), []).append(r["test_metric"])
    return [{"T": x, "series": model, "test_metric": statistics.mean(v)}
            for (model, x), v in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1]))]


def speed_rows(speed: dict) -> list[dict]:
    """Median training step time against sequence length, a series per (family, width, batch)
    of the single-layer unidirectional shapes as shipped."""
    return [{"seq_len": c["seq_len"], "series": f"{c['family']} H{c['hidden']} B{c['batch']}",
             "train_step_ms": c["train_step_ms"]["median"]}
            for c in speed["configs"] if c.get("impl", "default") == "default"
            and c["layers"] == 1 and not c["bidirectional"] and c["device"] == "cpu"]


def write_plot_data(grouped: dict, probes: dict, speed: dict | None, summaries: list[dict],
                    folder: Path) -> None:
    folder = Path(folder)
    for kind in KINDS:  # every folder dvc.yaml names exists, with data or without
        (folder / kind).mkdir(parents=True, exist_ok=True)
    for task, by_model in grouped.items():
        _write(folder / "curves" / f"{task}.csv", ["step", "series", "val_loss"],
               curve_rows(by_model))
    for task, by_model in probes.items():
        _write(folder / "decay" / f"{task}.csv", ["lag", "series", "ratio"], decay_rows(by_model))
    for s in summaries:
        if s["kind"] == "memory":
            _write(folder / "memory" / f"{s['study']}.csv", ["T", "series", "test_metric"],
                   memory_rows(s))
    if speed is not None:
        _write(folder / "speed" / "train_step.csv", ["seq_len", "series", "train_step_ms"],
               speed_rows(speed))
