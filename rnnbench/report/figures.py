"""Figures for the report, drawn from the curve rows the training runs wrote; the fonts every
figure uses (use_fonts: a CJK-capable fallback, so the dates task's Korean renders)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

# Fonts with Hangul (and the other CJK scripts), preferred in this order where installed;
# `make setup` installs Debian's fonts-noto-cjk when it can.
CJK_FAMILIES = ("Noto Sans CJK KR", "Noto Sans CJK JP", "Noto Sans CJK SC", "Source Han Sans KR",
                "NanumGothic", "UnDotum", "Baekmuk Gulim")


# One colour per model in every figure: tab10, then tab20's lighter tones.
PALETTE = [*plt.get_cmap("tab10").colors, *plt.get_cmap("tab20").colors[1::2]]
_COLORS: dict[str, tuple] = {}


def assign_colors(models) -> None:
    """Fix each model's colour for the figures of one report: in sorted name order, so two
    reports of the same models agree."""
    _COLORS.clear()
    for i, model in enumerate(sorted(set(models))):
        _COLORS[model] = PALETTE[i % len(PALETTE)]


def save_figure(fig, path: Path) -> None:
    """Lay the figure out, write it to `path` (its folder made if missing) and free it."""
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def model_color(model: str) -> tuple:
    """The model's colour (one not assigned yet gets the next free one)."""
    if model not in _COLORS:
        _COLORS[model] = PALETTE[len(_COLORS) % len(PALETTE)]
    return _COLORS[model]


@cache
def cjk_font() -> str | None:
    """The family name of a font with Korean glyphs, or None where none is installed: one that
    matplotlib knows, else the first that fontconfig lists for Korean (added to matplotlib's
    font list: its cache predates fonts installed since)."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FAMILIES:
        if name in known:
            return name
    try:
        listed = subprocess.run(["fc-list", ":lang=ko", "file"], capture_output=True, text=True,
                                timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for path in sorted(line.split(":")[0].strip() for line in listed.splitlines()):
        if path.lower().endswith((".ttf", ".otf", ".ttc")):
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
    return None


def use_fonts() -> str | None:
    """Every figure's text in DejaVu Sans, falling back glyph by glyph to a CJK font where
    one is installed; returns that font's name (None: CJK text will lack its glyphs)."""
    cjk = cjk_font()
    # the families by name: matplotlib falls back along font.family, not within "sans-serif"
    plt.rcParams["font.family"] = ["DejaVu Sans", *([cjk] if cjk else [])]
    return cjk


def learning_curves(grouped: dict[str, dict[str, list[dict]]], folder: Path) -> dict[str, str]:
    """One PNG per task: validation metric vs optimiser step, a line per (model, seed)."""
    written = {}
    for task, runs_by_model in grouped.items():
        first = next(iter(runs_by_model.values()))[0]
        metric = first["metric"]
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for model, runs in runs_by_model.items():
            for j, r in enumerate(runs):
                rows = [row for row in r["curves"] if row.get(f"val_{metric}") not in (None, "")]
                if not rows:
                    continue
                ax.plot([int(row["step"]) for row in rows],
                        [float(row[f"val_{metric}"]) for row in rows],
                        color=model_color(model), alpha=0.9 if j == 0 else 0.5,
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
        name = f"curves_{task}.png"
        save_figure(fig, folder / name)
        written[task] = name
    return written
