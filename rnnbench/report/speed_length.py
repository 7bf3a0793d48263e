"""Time against sequence length (speed.json's "length" records, rnnbench.speed.length): the
table, the crossover lengths, and the claim that state-free gates make the depth grow as log T.
Also the small helpers the speed section shares (markdown tables, the affine fit)."""

from __future__ import annotations

import math

from rnnbench.report.verdict import Claim, Verdict

SUBLINEAR = 0.5  # growth exponent p (time ~ T^p over the longer half of T) counted sublinear
IMPL_WORDS = {"default": "as shipped", "sequential": "plain loop", "numba_scan": "Numba loop"}
SIZE_WORDS = {"width": "equal width", "params": "equal parameter count"}


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def affine_fit(t: list[float], y: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b t: (a, b, R^2)."""
    tm, ym = sum(t) / len(t), sum(y) / len(y)
    b = sum((ti - tm) * (yi - ym) for ti, yi in zip(t, y, strict=True)) \
        / sum((ti - tm) ** 2 for ti in t)
    a = ym - b * tm
    ss_res = sum((yi - (a + b * ti)) ** 2 for ti, yi in zip(t, y, strict=True))
    ss_tot = sum((yi - ym) ** 2 for yi in y)
    return a, b, 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0


def growth_exponent(t: list[float], y: list[float]) -> float:
    """p of y ~ T^p: the least-squares slope of log y on log T over the longer half of the
    lengths (T at or above the median T; at least the two longest), where a fixed cost per call
    no longer hides how the time grows."""
    mid = sorted(t)[(len(t) - 1) // 2]
    pts = [(math.log(ti), math.log(yi)) for ti, yi in zip(t, y, strict=True) if ti >= mid]
    if len(pts) < 2:
        pts = [(math.log(ti), math.log(yi)) for ti, yi in sorted(zip(t, y, strict=True))[-2:]]
    return affine_fit([p[0] for p in pts], [p[1] for p in pts])[1]


def _variant(r: dict) -> str:
    return r["family"] if r["impl"] == "default" else f"{r['family']} ({IMPL_WORDS[r['impl']]})"


def curves(records: list[dict]) -> dict[tuple, dict]:
    """(device, size, family, impl) -> {"records": by T, "a", "b" (ms, ms per step), "r2", "p"}."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["device"], r["size"], r["family"], r["impl"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seq_len"])
        if len(rs) < 3:
            continue
        t = [float(r["seq_len"]) for r in rs]
        y = [r["train_step_ms"]["median"] for r in rs]
        a, b, r2 = affine_fit(t, y)
        out[key] = {"records": rs, "a": a, "b": b, "r2": r2, "p": growth_exponent(t, y)}
    return out


def crossover(fast: list[dict], slow: list[dict]) -> str:
    """From which T of the grid on `fast` (records by T) beats `slow` at every longer T too:
    'every T', 'T ≥ n', or 'never'."""
    ms = {r["seq_len"]: r["train_step_ms"]["median"] for r in slow}
    ts = [r["seq_len"] for r in fast if r["seq_len"] in ms]
    wins = {r["seq_len"]: r["train_step_ms"]["median"] < ms[r["seq_len"]] for r in fast
            if r["seq_len"] in ms}
    start = None
    for t in reversed(ts):
        if not wins[t]:
            break
        start = t
    if start is None:
        return "never"
    return "every T" if start == ts[0] else f"T ≥ {start}"


def length_lines(records: list[dict]) -> list[str]:
    """The time-vs-T table per device and size, its fits, and the crossover lengths."""
    cs = curves(records)
    lines = ["### Training-step time against sequence length", ""]
    for device, size in dict.fromkeys((k[0], k[1]) for k in cs):
        keys = [k for k in cs if k[:2] == (device, size)]
        ts = sorted({r["seq_len"] for k in keys for r in cs[k]["records"]})
        rows = []
        for k in keys:
            c, first = cs[k], cs[k]["records"][0]
            by_t = {r["seq_len"]: r["train_step_ms"]["median"] for r in c["records"]}
            rows.append([_variant(first), str(first["hidden"]), f"{first['params']:,}",
                         *(f"{by_t[t]:.3g}" if t in by_t else "–" for t in ts),
                         f"{c['b'] * 1e3:.3g}", f"{c['r2']:.3f}", f"{c['p']:.2f}"])
        lines += [f"{device}, {SIZE_WORDS[size]} (B={first['batch']}, D={first['input_size']}); "
                  "train-step ms (median); b: µs per time step of the fit a + b·T; p: growth "
                  "exponent, time ∝ T^p over the longer half of T", "",
                  *table(["model", "H", "params", *(f"T={t}" for t in ts), "b µs/step", "R²",
                          "p"], rows)]
        state_free = [k for k in keys if cs[k]["records"][0]["state_free"]]
        classic = [k for k in keys if not cs[k]["records"][0]["state_free"]]
        pairs = [(f, s) for f in state_free for s in classic]  # each mode against the cells
        pairs += [(f, s) for f in state_free if f[3] == "default"  # the scan against its loops
                  for s in state_free if s[2] == f[2] and s != f]
        cross = [[_variant(cs[f]["records"][0]), _variant(cs[s]["records"][0]),
                  crossover(cs[f]["records"], cs[s]["records"])] for f, s in pairs]
        if cross:
            lines += ["Crossovers: from which length on the first is faster at every longer "
                      "length timed", "", *table(["faster?", "than", "from"], cross)]
    return lines


def log_depth_claim(data: dict) -> Claim:
    """Holds if every log-space scan's time grows sublinearly in T (p <= SUBLINEAR) while every
    classic cell's does not; under a condition if on some (device, size) only; not observed if
    nowhere; not measured without a length grid."""
    title = ("Unless the gates do not depend on the state: then the depth grows as log T "
             "(minGRU, minLSTM by parallel scan)")
    rule = ("training-step time at every T of the length grid for the classic cells and for "
            "minGRU/minLSTM as the log-space scan (cumsum + logcumsumexp, O(log T) depth), at "
            "equal width and at equal parameter count; p is the growth exponent (time ∝ T^p) "
            "over the longer half of T. A depth of log T shows in the time only where the device "
            "runs a step's T·B·H elements at once; a device with fewer lanes does O(T) work "
            f"whatever the depth, and p ≈ 1. Rule: holds where every scan has p ≤ {SUBLINEAR} "
            f"while every classic cell has p > {SUBLINEAR}.")
    cs = curves(data.get("length", []))
    if not cs:
        return Claim(title, rule, Verdict.NOT_MEASURED,
                     "no time-vs-T grid in this profile (speed.length_grid)")
    outcomes, evidence = [], []
    for device, size in dict.fromkeys((k[0], k[1]) for k in cs):
        keys = [k for k in cs if k[:2] == (device, size)]
        scans = [k for k in keys if cs[k]["records"][0]["state_free"] and k[3] == "default"]
        classic = [k for k in keys if not cs[k]["records"][0]["state_free"]]
        if not scans or not classic:
            continue
        ok = all(cs[k]["p"] <= SUBLINEAR for k in scans) and \
            all(cs[k]["p"] > SUBLINEAR for k in classic)
        outcomes.append(((device, size), ok))
        parts = ", ".join(f"{_variant(cs[k]['records'][0])} p = {cs[k]['p']:.2f}"
                          for k in keys)
        evidence.append(f"- {device}, {SIZE_WORDS[size]}: {parts}")
    number = "scan p = " + ", ".join(f"{cs[k]['p']:.2f}" for k in cs
                                     if cs[k]["records"][0]["state_free"] and k[3] == "default")
    if not outcomes:
        return Claim(title, rule, Verdict.NOT_OBSERVED,
                     "the grid needs a scan and a classic cell at the same size", evidence)
    if all(ok for _, ok in outcomes):
        return Claim(title, rule, Verdict.HOLDS, "", evidence, number)
    if any(ok for _, ok in outcomes):
        where = ", ".join(f"{d} {SIZE_WORDS[s]}" for (d, s), ok in outcomes if ok)
        return Claim(title, rule, Verdict.CONDITION, f"on {where} only", evidence, number)
    return Claim(title, rule, Verdict.NOT_OBSERVED,
                 f"no scan's time grows sublinearly here (p ≤ {SUBLINEAR}): this device does "
                 "the scan's O(T) work whatever its depth", evidence, number)
