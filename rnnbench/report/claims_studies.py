"""Lecture-note claims decided over studies (rnnbench/study): depth (kind 'depth'), LSTM
overfitting on small datasets (kind 'overfit'), tanh against relu (kind 'activation'). Each
rule takes the summaries of every study of its kind, so evidence from several tasks adds up,
and returns a Claim (rnnbench.report.verdict). The tables each study shows are here too
(study_body). Models are told apart by their registry facts and configs, never their names.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from rnnbench.report.compare import RULE, compare, finite, mean_text
from rnnbench.report.verdict import Claim, Verdict, tally

SIZE_TOL = 0.10  # an "equal size" model may differ from the 1-layer model's count by this much
KINDS = ("depth", "overfit", "activation")


def _of_kind(summaries: list[dict], kind: str) -> list[dict]:
    return [s for s in summaries if s.get("kind") == kind and s.get("runs")]


def _by(runs: list[dict], key) -> dict:
    out: dict = defaultdict(list)
    for r in runs:
        out[key(r)].append(r)
    return dict(out)


def _tests(runs: list[dict]) -> list[float]:
    return finite(r["test_metric"] for r in runs if r["status"] == "ok")


def _series(r: dict) -> str:
    return "equal width" if r["model_config"].get("param_budget") is None else "equal size"


def _head(s: dict) -> tuple[str, bool, float | None]:
    r = s["runs"][0]
    return r["metric"], r["higher_is_better"], r["baseline"]


# ---------------------------------------------------------------- depth
def _depth_cases(s: dict) -> list[dict]:
    """Per model and series (equal width, equal size): {layers: runs}, the 1-layer width model as
    every series' reference, and each deeper point's outcome against it."""
    metric, higher, base = _head(s)
    cases = []
    for model, runs in _by(s["runs"], lambda r: r["model"]).items():
        width = _by([r for r in runs if _series(r) == "equal width"],
                    lambda r: r["model_config"]["num_layers"])
        ref = width.get(1)
        for series in ("equal width", "equal size"):
            pts = width if series == "equal width" else {
                **({1: ref} if ref else {}),
                **_by([r for r in runs if _series(r) == series],
                      lambda r: r["model_config"]["num_layers"])}
            deeper = sorted(L for L in pts if L > 1)
            if ref is None or not deeper:
                continue
            outcomes, notes = {}, []
            for L in deeper:
                ratio = pts[L][0]["n_params"] / ref[0]["n_params"]
                if series == "equal size" and abs(ratio - 1) > SIZE_TOL:
                    notes.append(f"{L} layers: {pts[L][0]['n_params']:,} parameters, not within "
                                 f"{SIZE_TOL:.0%} of {ref[0]['n_params']:,}: left out")
                    continue
                d = compare(_tests(pts[L]), _tests(ref), higher, base)
                outcomes[L] = d.outcome if d else "unknown"
            cases.append({"task": s["task"], "study": s["study"], "model": model,
                          "cell": runs[0]["facts"]["cell"], "series": series, "points": pts,
                          "outcomes": outcomes, "notes": notes, "metric": metric})
    return cases


def _depth_case_outcome(c: dict) -> bool | None:
    """True: every deeper model beats the 1-layer one; False: some does not; None: unknown."""
    outs = list(c["outcomes"].values())
    if not outs or "unknown" in outs:
        return None
    return all(o == "better" for o in outs)


def depth_claim(summaries: list[dict]) -> Claim:
    """Rule: deeper is better in a case (a model, a task, equal width or equal size) when every
    deeper model's test metric beats the 1-layer model's by compare.RULE; 'holds' if in every
    case, 'holds only under a condition' (the cases named) if in some."""
    lines, outcomes, held = [], [], []
    for s in _of_kind(summaries, "depth"):
        for c in _depth_cases(s):
            parts = [f"{L} layer{'s' if L > 1 else ''} {mean_text(_tests(rs))} "
                     f"({rs[0]['n_params']:,} parameters)" for L, rs in sorted(c["points"].items())]
            words = {"better": "deeper better", "worse": "deeper worse",
                     "same": "about the same", "unknown": "unknown"}
            verdicts = ", ".join(f"{L} vs 1 layer: {words[o]}" for L, o in c["outcomes"].items())
            lines.append(f"- {c['task']} ({c['study']}), {c['model']} ({c['cell']}), "
                         f"{c['series']}: test {c['metric']} " + "; ".join(parts)
                         + f" → {verdicts or 'nothing comparable'}"
                         + "".join(f"; {n}" for n in c["notes"]))
            o = _depth_case_outcome(c)
            if o is not None:
                outcomes.append(o)
                if o:
                    held.append(f"{c['model']} at {c['series']} on {c['task']}")
    if not outcomes:
        verdict, detail = Verdict.NOT_MEASURED, "no depth study with two seeds or more" \
            + (" (see above)" if lines else "")
    else:
        verdict, detail = tally(outcomes, "", "only for " + "; ".join(held))
    return Claim("Deeper (stacked) RNNs perform better (깊을수록 성능이 더 좋음)",
                 "1, 2 and 3 stacked layers of each model trained on the same budget, at equal "
                 "width and at equal parameter count (each deeper model narrowed to within "
                 f"{SIZE_TOL:.0%} of the 1-layer model's count). Rule: deeper is better in a case "
                 f"when every deeper model beats the 1-layer one; {RULE}.", verdict, detail,
                 lines, f"deeper better in {sum(outcomes)} of {len(outcomes)} cases"
                 if outcomes else "")


# ---------------------------------------------------------------- overfitting
def _gap(r: dict) -> float | None:
    """How much better the final model scores on training than on validation data."""
    t, v = r.get("train_metric"), r.get("val_metric")
    if r["status"] != "ok" or t is None or v is None:
        return None
    return t - v if r["higher_is_better"] else v - t


def _pair_key(r: dict) -> tuple:
    c = r["model_config"]
    size = c["hidden_size"] if c.get("param_budget") is None else c["param_budget"]
    return r["variant"], _series(r), size, c["num_layers"], c["bidirectional"]


def overfit_claim(summaries: list[dict]) -> Claim:
    """Rule, per small dataset and size condition (an LSTM and a GRU at equal width, or at equal
    parameter count): the LSTM overfits more when its train/validation gap exceeds the GRU's by
    compare.RULE, and the GRU is a good choice when its best validation metric is better than
    or about the same as the LSTM's. 'holds' if both in every pair, 'holds only under a
    condition' (the pairs named) if in some."""
    lines, outcomes, held = [], [], []
    for s in _of_kind(summaries, "overfit"):
        metric, higher, base = _head(s)
        for key, runs in _by(s["runs"], _pair_key).items():
            cells = _by(runs, lambda r: r["facts"]["cell"])
            if "lstm" not in cells or "gru" not in cells:
                continue
            lstm, gru = cells["lstm"], cells["gru"]
            gaps = compare([_gap(r) for r in lstm], [_gap(r) for r in gru], True, None)
            best = compare([r["best_val_metric"] for r in gru if r["status"] == "ok"],
                           [r["best_val_metric"] for r in lstm if r["status"] == "ok"],
                           higher, base)
            if gaps is None or best is None:
                continue
            more, good = gaps.outcome, best.outcome
            overfits = {"better": "more", "worse": "less", "same": "about as much"}.get(
                more, "(unknown)")
            ratio = lstm[0]["n_params"] / gru[0]["n_params"]
            lines.append(
                f"- {s['task']}, {key[1]} ({lstm[0]['n_params']:,} vs {gru[0]['n_params']:,} "
                f"parameters, {ratio:.2f}×): train − validation gap in {metric}, LSTM vs GRU "
                f"{gaps.text(3)}: LSTM overfits {overfits}; "
                f"best validation {metric}, GRU vs LSTM {best.text(4)}: "
                + {"better": "GRU better", "worse": "GRU worse", "same": "about the same"}.get(
                    good, "unknown"))
            if "unknown" not in (more, good):
                ok = more == "better" and good in ("better", "same")
                outcomes.append(ok)
                if ok:
                    held.append(f"{s['task']} at {key[1]}")
    if not outcomes:
        verdict, detail = Verdict.NOT_MEASURED, "no LSTM/GRU pair with two seeds or more on a " \
                                                "small dataset"
    else:
        verdict, detail = tally(outcomes, "", "only on " + "; ".join(held))
    return Claim("LSTM, having more parameters, overfits small datasets more easily; GRU is a "
                 "good choice there",
                 "LSTM and GRU trained on the same fixed budget (no early stop) on small real "
                 "datasets, at equal width (LSTM has 4/3 the parameters) and at equal parameter "
                 "count; the gap is the final model's metric on the training split (its first "
                 "rows, as many as validation has) against validation. Rule: the LSTM's gap "
                 "exceeds the GRU's and the GRU's best validation metric is better or about the "
                 f"same; {RULE}.", verdict, detail, lines,
                 f"LSTM overfits more and GRU does as well in {sum(outcomes)} of "
                 f"{len(outcomes)} pairs" if outcomes else "")


# ---------------------------------------------------------------- tanh vs relu
def _diverged(runs: list[dict]) -> int:
    return sum(r["status"] != "ok" for r in runs)


def _growth(runs: list[dict]) -> float | None:
    vals = finite((r["grad"]["init"] or {}).get("decay_factor") for r in runs
                  if r.get("grad") and r["grad"].get("init"))
    return statistics.mean(vals) if vals else None


def activation_claim(summaries: list[dict]) -> Claim:
    """Rule, at each σ_max(W_hh) studied with both activations (same learning rate, seeds and
    budget): (a) where relu's gradient grows through time at initialisation (growth per step
    > 1), tanh's grows less; (b) where some run diverged, fewer tanh seeds than relu seeds
    did. 'holds' if both at every such σ, 'holds only under a condition' if either somewhere
    (the σ named), 'not observed' otherwise."""
    lines, growth_ok, div_ok = [], {}, {}
    for s in _of_kind(summaries, "activation"):
        metric = s["runs"][0]["metric"]
        for sigma, runs in sorted(_by(s["runs"], lambda r: r["x_value"]).items()):
            acts = _by(runs, lambda r: r["model_config"].get("nonlinearity"))
            if "tanh" not in acts or "relu" not in acts:
                continue
            t, u = acts["tanh"], acts["relu"]
            g = {k: _growth(v) for k, v in (("tanh", t), ("relu", u))}
            shown = ", ".join(f"{k} {v:.3g}" if v is not None else f"{k} n/a"
                              for k, v in g.items())
            lines.append(f"- {s['task']}, σ = {sigma:g}: diverged tanh {_diverged(t)}/{len(t)}, "
                         f"relu {_diverged(u)}/{len(u)}; gradient growth per step at "
                         f"initialisation {shown}; test {metric} of the runs that finished "
                         f"tanh {mean_text(_tests(t))}, relu {mean_text(_tests(u))}")
            where = f"σ = {sigma:g}" + ("" if len(_of_kind(summaries, "activation")) == 1
                                        else f" ({s['task']})")
            if g["relu"] is not None and g["relu"] > 1 and g["tanh"] is not None:
                growth_ok[where] = g["tanh"] < g["relu"]
            if _diverged(t) or _diverged(u):
                div_ok[where] = _diverged(t) / len(t) < _diverged(u) / len(u)
    if not lines:
        verdict, detail = Verdict.NOT_MEASURED, "no activation study with tanh and relu"
    elif not growth_ok and not div_ok:
        verdict, detail = Verdict.NOT_OBSERVED, "neither the gradient nor the training " \
                                                "exploded at any σ studied"
    elif growth_ok and div_ok and all(growth_ok.values()) and all(div_ok.values()):
        verdict, detail = Verdict.HOLDS, ""
    elif any(growth_ok.values()) or any(div_ok.values()):
        def part(name: str, cases: dict) -> str:
            good = [w for w, ok in cases.items() if ok]
            return f"{name} {'at ' + ', '.join(good) if good else 'at no σ'} " \
                   f"(of {len(cases)} where it could)"
        verdict, detail = Verdict.CONDITION, "; ".join((
            part("tanh's gradient grew less than relu's", growth_ok),
            part("fewer tanh runs diverged", div_ok)))
    else:
        verdict, detail = Verdict.NOT_OBSERVED, ""
    return Claim("tanh is used to keep the gradient from exploding",
                 "a vanilla RNN with tanh and with relu at the same σ_max(W_hh) (W_hh = σ × an "
                 "orthogonal matrix), learning rate, seeds and budget, without clipping; growth "
                 "per step is the decay factor of ||dL/dh_t|| of the untrained model (> 1: the "
                 "gradient grows going back in time; mean over seeds); an explosion in "
                 "training is a run that diverged (non-finite loss or gradient). Rule: (a) at "
                 "each σ where relu's gradient grows, tanh's grows less; (b) at each σ where "
                 "some run diverged, fewer tanh seeds than relu seeds diverged.",
                 verdict, detail, lines,
                 f"tanh grew less at {sum(growth_ok.values())}/{len(growth_ok)} σ, diverged "
                 f"less at {sum(div_ok.values())}/{len(div_ok)}" if lines else "")


RULES = {"depth": depth_claim, "overfit": overfit_claim, "activation": activation_claim}


def study_claims_more(summaries: list[dict]) -> list[Claim]:
    return [rule(summaries) for rule in RULES.values()]
