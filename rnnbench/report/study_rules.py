"""The rules behind the studies' verdicts (rnnbench/report/study.py renders them): each takes
the runs of a study's summary.json and returns a Claim (rnnbench/report/verdict.py: the claim,
its measurement and rule, the verdict, the evidence lines and the number behind it).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from rnnbench.report.probes import fmt_cell as _fmt
from rnnbench.report.verdict import Claim, Verdict


def _mean_std(vals: list[float]) -> str:
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return _fmt(vals[0], 4)
    return f"{statistics.mean(vals):.4g} ± {statistics.stdev(vals):.2g}"


def _clip_name(r: dict) -> str:
    t = r["train"]
    return "none" if t["clip"] == "none" else f"{t['clip']} ≤ {t['clip_value']:g}"


SOLVED_RULE = ("a length T counts as solved by a model when at least half of its seeds solved "
               "it (test metric past the task's threshold, run not diverged); the longest T "
               "solved is the largest such T")


def _groups(runs: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        out[tuple(r[k] for k in keys)].append(r)
    return dict(out)


def _values(runs: list[dict]) -> list[float]:
    return [r["test_metric"] for r in runs if r["status"] == "ok" and r["test_metric"] is not None]


def _median(vals: list) -> float | None:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def _init(r: dict, key: str):
    init = r["grad"]["init"]
    return None if init is None else init.get(key)


def _horizon(r: dict, thr: str = "0.001"):
    init = r["grad"]["init"]
    return None if init is None else init["horizon"].get(thr)


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def _closeness(f: float | None) -> float:
    return abs(math.log10(f)) if f and f > 0 else math.inf


SIGMA_TITLE = "Gradients vanish when σ_max(W_hh) < 1 and explode when it is > 1"
SIGMA_RULE = ("the gradient probe of each untrained model; rule: the decay factor per step of "
              "||dL/dh_t|| is < 1 for every σ < 1 and > 1 for every σ > 1 (σ = 1 is shown, "
              "not judged). For tanh, σ > 1 is necessary, not sufficient, for explosion "
              "(Pascanu, Mikolov & Bengio 2013): saturated units shrink the gradient.")


def sigma_verdict(points: list[tuple[float, float | None]]) -> Claim:
    """points: (sigma, decay factor per step of ||dL/dh_t|| at initialisation). Rule: every
    sigma < 1 decays (factor < 1) and every sigma > 1 grows (factor > 1); sigma = 1 is shown,
    not judged; a point without a factor is left out."""
    pts = [(s, f) for s, f in points if f is not None]
    below = [(s, f) for s, f in pts if s < 1]
    above = [(s, f) for s, f in pts if s > 1]
    seen: dict[float, list[str]] = {}
    for sg, f in sorted(pts):  # runs differing only in clipping share the initial weights
        if f"{f:.3g}" not in seen.setdefault(sg, []):
            seen[sg].append(f"{f:.3g}")
    lines = ["- decay factor per step at initialisation: "
             + ", ".join(f"σ={sg:g}: {' / '.join(fs)}" for sg, fs in seen.items()) if pts else
             "- no probe at initialisation"]
    def part(group: list, ok) -> str:
        good = [sg for sg, f in group if ok(f)]
        if not group:
            return "not probed"
        return "yes" if len(good) == len(group) else \
            f"only for σ ∈ {{{', '.join(f'{sg:g}' for sg in good)}}}" if good else "no"

    vanish, explode = part(below, lambda f: f < 1), part(above, lambda f: f > 1)
    number = "decay/step at init: " + ", ".join(
        f"σ={sg:g} {'/'.join(fs)}" for sg, fs in seen.items()) if pts else ""
    if vanish == explode == "yes":
        verdict, detail = Verdict.HOLDS, ""
    elif vanish.startswith(("yes", "only")) or explode.startswith(("yes", "only")):
        verdict, detail = (Verdict.CONDITION, f"decay below σ = 1: {vanish}; growth above "
                           f"σ = 1: {explode}")
    else:
        verdict, detail = Verdict.NOT_OBSERVED, ""
    return Claim(SIGMA_TITLE, SIGMA_RULE, verdict, detail, lines, number)


TAMED_RULE = ("a clipped run tames an explosion when the same run without clipping diverged "
              "and the clipped one trained to the end with a test metric no worse than the "
              "trivial baseline by more than half the baseline (a run kept finite far past "
              "the baseline has not been tamed: its weights were blown away all the same)")


def _near_baseline(r: dict) -> bool:
    m, b = r["test_metric"], r["baseline"]
    if m is None or b is None:
        return False
    return m >= 0.5 * b if r["higher_is_better"] else m <= 1.5 * b


def _clipped_outcome(r: dict) -> tuple[bool, str]:
    """(tamed, its description) for a clipped run whose unclipped twin diverged."""
    if r["status"] != "ok":
        return False, f"{_clip_name(r)}: diverged at step {r['diverged_at_step']}"
    tamed = _near_baseline(r)
    return tamed, (f"{_clip_name(r)}: trained to the end, test {_fmt(r['test_metric'], 4)} "
                   f"(baseline {_fmt(r['baseline'], 4)})"
                   + ("" if tamed else ", kept finite but far past the baseline"))


def _key_label(key: str, value) -> str:
    return {"x_value": f"σ={_fmt(value)}", "model": str(value)}.get(key, f"{key} {value}")


CLIP_TITLE = "Clipping the gradient tames explosion"
CLIP_RULE = ("runs identical but for clipping (same σ, model, seed); rule: "
             f"{TAMED_RULE}; every run that diverges without clipping must be tamed.")
CLIP_MODE_TITLE = "Clipping by value tames explosion as clipping by global norm does"
CLIP_MODE_RULE = ("the same runs without clipping and under each clipping mode (same model and "
                  "seed); clipping by norm rescales the whole gradient and keeps its direction, "
                  "clipping by value clips each element and does not (Pascanu, Mikolov & "
                  f"Bengio 2013). Rule: {TAMED_RULE}; every mode must tame every run that "
                  "diverges without clipping.")


def clipping_verdict(runs: list[dict], keys: tuple[str, ...] = ("x_value", "model", "seed"),
                     title: str = CLIP_TITLE, rule: str = CLIP_RULE) -> Claim:
    """Rule (TAMED_RULE): group runs that differ only in clipping (by `keys`); every clipped
    run of a group whose unclipped run diverged must tame it. 'holds' if all do; 'holds only
    under a condition' if some clipping mode tames all of its cases, or some cases are tamed;
    'not observed' if none is, or no run diverged without clipping."""
    cases, lines = [], []
    for key, rs in sorted(_groups(runs, *keys).items(), key=lambda kv: str(kv[0])):
        none = [r for r in rs if r["train"]["clip"] == "none"]
        clipped = [r for r in rs if r["train"]["clip"] != "none"]
        if not none or none[0]["status"] == "ok" or not clipped:
            continue
        outcomes = [_clipped_outcome(r) for r in clipped]
        cases += [(r["train"]["clip"], tamed) for r, (tamed, _) in zip(clipped, outcomes,
                                                                       strict=True)]
        where = ", ".join(_key_label(k, v) for k, v in zip(keys, key, strict=True))
        lines.append(f"- {where}: diverged without clipping at step "
                     f"{none[0]['diverged_at_step']}; " + "; ".join(d for _, d in outcomes))
    number = f"{sum(t for _, t in cases)} of {len(cases)} diverging runs tamed" if cases else ""

    def claim(verdict: Verdict, detail: str = "") -> Claim:
        return Claim(title, rule, verdict, detail, lines, number)

    if not cases:
        if not any(r["train"]["clip"] == "none" for r in runs):
            return claim(Verdict.NOT_OBSERVED, "no run without clipping to compare with")
        return claim(Verdict.NOT_OBSERVED, "no run diverged without clipping: nothing to tame")
    if all(t for _, t in cases):
        return claim(Verdict.HOLDS)
    if not any(t for _, t in cases):
        return claim(Verdict.NOT_OBSERVED)
    modes = sorted({m for m, _ in cases})
    good = [m for m in modes if all(t for mm, t in cases if mm == m)]
    if good and len(modes) > 1:
        return claim(Verdict.CONDITION, f"only when clipping by {' and '.join(good)}")
    return claim(Verdict.CONDITION, f"{sum(t for _, t in cases)} of {len(cases)} diverging "
                 "runs tamed")


FORGET_RULE = ("per model, the largest forget bias studied against the smallest: (a) its decay "
               "factor per step at initialisation is closer to 1; (b) it solves more seeds, or "
               "as many with a better mean test metric. 'holds' if both for every model; 'holds "
               "only under a condition' if one of them, or for some models; 'not observed' "
               "otherwise.")


FORGET_TITLE = "A forget-gate bias of 1 keeps gradients alive and helps the LSTM learn"


def forget_bias_verdict(runs: list[dict]) -> Claim:
    """The claim decided by FORGET_RULE."""
    lines, results, numbers = [], [], []
    for (model,), rs in _groups(runs, "model").items():
        by_bias = {v: g for (v,), g in _groups(rs, "variant").items()}
        bias = {v: g[0]["model_config"].get("forget_bias") for v, g in by_bias.items()}
        known = [v for v in by_bias if bias[v] is not None]
        if len(known) < 2:
            continue
        lo, hi = min(known, key=bias.get), max(known, key=bias.get)
        fl, fh = _init(by_bias[lo][0], "decay_factor"), _init(by_bias[hi][0], "decay_factor")
        a = _closeness(fh) < _closeness(fl)
        sl, sh = (sum(r["solved"] for r in by_bias[v]) for v in (lo, hi))
        ml, mh = (_values(by_bias[v]) for v in (lo, hi))
        higher = rs[0]["higher_is_better"]
        b = sh > sl or (sh == sl and bool(mh) and (not ml or _better(
            statistics.mean(mh), statistics.mean(ml), higher)))
        results.append((a, b))
        lines.append(f"- {model}: bias {bias[lo]:g} vs {bias[hi]:g}: decay/step at init "
                     f"{_fmt(fl)} vs {_fmt(fh)}; solved {sl} vs {sh} of {len(by_bias[lo])}; "
                     f"test {_mean_std(ml)} vs {_mean_std(mh)}")
        numbers.append(f"{model} bias {bias[lo]:g} vs {bias[hi]:g}: solved {sl} vs {sh} of "
                       f"{len(by_bias[lo])}")
    rule = ("Gers, Schmidhuber & Cummins (2000); Jozefowicz, Zaremba & Sutskever (2015). "
            f"Rule: {FORGET_RULE}")
    number = "; ".join(numbers)
    if not results:
        return Claim(FORGET_TITLE, rule, Verdict.NOT_OBSERVED,
                     "needs two forget biases for one model", lines)
    if all(a and b for a, b in results):
        return Claim(FORGET_TITLE, rule, Verdict.HOLDS, "", lines, number)
    if any(a or b for a, b in results):
        what = [w for w, ok in (("gradient decay at init", any(a for a, _ in results)),
                                ("outcome", any(b for _, b in results))) if ok]
        return Claim(FORGET_TITLE, rule, Verdict.CONDITION, f"shown by {' and '.join(what)} "
                     "only (or for some models only)", lines, number)
    return Claim(FORGET_TITLE, rule, Verdict.NOT_OBSERVED, "", lines, number)


def clip_mode_verdict(runs: list[dict]) -> Claim:
    """TAMED_RULE per clipping mode: for each (model, seed), its run without clipping must
    diverge and each mode's run tame it."""
    return clipping_verdict(runs, ("model", "seed"), CLIP_MODE_TITLE, CLIP_MODE_RULE)


# ---------------------------------------------------------------- memory


def memory_table(runs: list[dict]) -> tuple[list[dict], float | None]:
    """One model's runs -> (rows per T: {x, n, solved, rate, diverged, values, baseline},
    the longest T solved by SOLVED_RULE or None)."""
    rows = []
    for (x,), rs in sorted(_groups(runs, "x_value").items()):
        n, k = len(rs), sum(bool(r["solved"]) for r in rs)
        rows.append({"x": x, "n": n, "solved": k, "rate": k / n,
                     "diverged": sum(r["status"] != "ok" for r in rs), "values": _values(rs),
                     "baseline": rs[0]["baseline"]})
    solved = [row["x"] for row in rows if 2 * row["solved"] >= row["n"]]
    return rows, (max(solved) if solved else None)


def _gated(run: dict) -> bool:
    """The run's recorded registry fact (every study run records its family's facts)."""
    return run["facts"]["gated"]


MEMORY_TITLE = "Gated cells carry information over longer spans than a vanilla RNN"
MEMORY_RULE = (f"the longest T solved per model ({SOLVED_RULE}); rule: every gated model's "
               "exceeds every vanilla model's.")


def memory_verdict(runs: list[dict]) -> Claim:
    """Rule: every gated model's longest T solved exceeds every vanilla model's (none solved
    counts as 0): 'holds'; some gated models only: 'holds only under a condition'."""
    longest = {(m, _gated(rs[0])): memory_table(rs)[1] or 0
               for (m,), rs in _groups(runs, "model").items()}
    lines = [f"- {m}: longest T solved {v or 'none'}" for (m, _), v in longest.items()]
    number = "longest T solved: " + ", ".join(f"{m} {v or 'none'}" for (m, _), v in
                                              longest.items())
    gated = [v for (_, g), v in longest.items() if g is True]
    vanilla = [v for (_, g), v in longest.items() if g is False]

    def claim(verdict: Verdict, detail: str = "") -> Claim:
        return Claim(MEMORY_TITLE, MEMORY_RULE, verdict, detail, lines, number)

    if not gated or not vanilla:
        return claim(Verdict.NOT_OBSERVED, "needs both a gated and a vanilla model")
    beat = [g > max(vanilla) for g in gated]
    longest_t = max(r["x_value"] for r in runs)
    if all(beat):
        return claim(Verdict.HOLDS)
    if any(beat):
        return claim(Verdict.CONDITION, "not for every gated model")
    return claim(Verdict.NOT_OBSERVED, "every model solved every T studied: longer T needed "
                 "to separate them" if min(vanilla) >= longest_t else "")


# ---------------------------------------------------------------- entry points
