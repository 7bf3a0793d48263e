"""The parity figure: how soon rnn and numba_rnn training losses part, beside torch against
itself with one weight moved by one ulp (speed.json "parity", from rnnbench.training.parity).

Rule (a check that can fail): the hand-written kernels differ from torch by rounding only if
rnn vs numba_rnn stays within LEVEL at least as long as the one-ulp pair does, less SLACK steps.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rnnbench.report.figures import save_figure  # noqa: E402

LEVEL = 1e-9  # a loss gap above this has left rounding behind
ROUNDING = 1e-14  # a loss gap at or below this is rounding (float64 losses of order 0.1-1)
SLACK = 5  # steps: the two pairs part at the same step give or take this many


def parting_step(gap: list[float], level: float = LEVEL) -> int | None:
    """The first step (1-based) whose gap exceeds `level`; None if none does."""
    return next((i + 1 for i, g in enumerate(gap) if g > level), None)


def climb(gap: list[float], level: float = LEVEL) -> tuple[int, int, float] | None:
    """How the gap left rounding behind: (a, b, factor per step) from the last step a at or
    below ROUNDING before b = parting_step, the geometric mean growth between them; None if
    the gap never passes `level` or never was at rounding level before it."""
    b = parting_step(gap, level)
    if b is None:
        return None
    a = next((s for s in range(b - 1, 0, -1) if 0 < gap[s - 1] <= ROUNDING), None)
    if a is None:
        return None
    return a, b, (gap[b - 1] / gap[a - 1]) ** (1 / (b - a))


def parts_like_rounding(parity: dict) -> tuple[bool, int | None, int | None]:
    """(rnn vs numba_rnn parts no sooner than the one-ulp pair less SLACK, both steps)."""
    n, u = parting_step(parity["gap"]["numba_vs_rnn"]), parting_step(parity["gap"]["ulp_vs_rnn"])
    steps = parity["steps"]
    ok = (n or steps + 1) >= min(u or steps + 1, steps + 1) - SLACK
    return ok, n, u


def parity_figure(parity: dict, folder: Path) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for key, label in (("numba_vs_rnn", "|numba_rnn − rnn|"),
                       ("ulp_vs_rnn", "|rnn with W_hh[0,0] + 1 ulp − rnn|")):
        pts = [(i + 1, g) for i, g in enumerate(parity["gap"][key]) if g > 0]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker=".", label=label)
    ax.axhline(LEVEL, color="gray", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("gap in training loss (float64)")
    ax.set_title(f"adding T={parity['seq_len']}, H={parity['hidden']}, lr {parity['lr']:g}: "
                 "how soon two runs part")
    ax.legend(fontsize=8)
    name = "parity.png"
    save_figure(fig, folder / name)
    return name


def parity_lines(parity: dict | None, folder: Path) -> list[str]:
    if not parity:
        return []
    ok, n, u = parts_like_rounding(parity)
    name = parity_figure(parity, folder)

    def at(step):
        return f"step {step}" if step else f"not within {parity['steps']} steps"

    def grows(key):
        c = climb(parity["gap"][key])
        return "—" if c is None else f"×{c[2]:.2g} a step from step {c[0]} to {c[1]}"

    verdict = ("like rounding" if ok else
               "**FAILED: sooner than a one-ulp change of torch's own weights**")
    return ["### NumbaRNN vs torch nn.RNN: training losses side by side", "",
            f"rnn, numba_rnn and rnn with one recurrent weight moved by one ulp, from one seed "
            f"and the same batches, float64, Adam (lr {parity['lr']:g}), on adding "
            f"(T = {parity['seq_len']}, H = {parity['hidden']}, batch {parity['batch']}). The "
            f"loss gap passes {LEVEL:g} at {at(n)} for rnn vs numba_rnn and at {at(u)} for the "
            f"one-ulp pair; from rounding level (≤ {ROUNDING:g}) it climbs "
            f"{grows('numba_vs_rnn')} and {grows('ulp_vs_rnn')}: the trajectory is chaotic, "
            f"and the Numba kernels part from torch {verdict} (rule: no sooner than "
            f"the one-ulp pair, less {SLACK} steps). Parity therefore rests on the per-step "
            "gradients at initialisation and on short-run losses, not on long runs.", "",
            f"![training-loss gaps]({folder.name}/{name})", ""]
