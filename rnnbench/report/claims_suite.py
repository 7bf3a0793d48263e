"""Claims tested on the wider task suite: bidirectional models use the future, and attention
rescues an encoder-decoder on long inputs. Both read only the runs' result files."""

from __future__ import annotations

from rnnbench.report.claims import _claim, _mean_metric

MARGIN = 0.05  # metric points a model must win by to count as better


def _fmt(v: float | None) -> str:
    return "diverged" if v is None else f"{v:.3f}"


def bidirectional_claim(grouped: dict[str, dict[str, list[dict]]]) -> list[str]:
    """Rule: on every task that has a unidirectional and a bidirectional model of one family,
    the bidirectional one beats it by at least MARGIN and beats the best any causal
    (unidirectional) predictor can do, where the task states that bound ('holds'); some of
    those pairs ('holds only under a condition'); none ('not observed')."""
    lines, wins = [], []
    for task, by_model in grouped.items():
        first = next(iter(by_model.values()))[0]
        if not first["higher_is_better"]:  # accuracy-like metrics only
            continue
        causal = {k: v for k, v in first["baseline"].items()
                  if "causal" in k and isinstance(v, float)}
        bound = next(iter(causal.values()), None)
        pairs: dict[str, dict[bool, tuple[str, float | None]]] = {}
        for model, runs in by_model.items():
            c = runs[0]["model_config"]
            if c["family"] == "seq2seq":
                continue
            pairs.setdefault(f"{c['family']}-{c['num_layers']}", {})[c["bidirectional"]] = \
                (model, _mean_metric(runs))
        for fams in pairs.values():
            if len(fams) < 2:
                continue
            (uni, u), (bi, b) = fams[False], fams[True]
            won = b is not None and (u is None or b >= u + MARGIN) and \
                (bound is None or b > bound)
            wins.append(won)
            lines.append(f"- {task}: {bi} {_fmt(b)} vs {uni} {_fmt(u)} test {first['metric']}"
                         + (f"; best causal predictor {bound:.3f}" if bound is not None else ""))
    if not wins:
        verdict = "not observed (no task with a unidirectional and a bidirectional model)"
    elif all(wins):
        verdict = "holds"
    else:
        verdict = ("holds only under a condition: not on every task (see above)" if any(wins)
                   else "not observed")
    return _claim("Bidirectional RNNs use the future of the sequence",
                  "per-step test accuracy of a model and its bidirectional twin on tasks whose "
                  "labels depend on later inputs. Rule: the bidirectional model wins by at "
                  f"least {MARGIN:g} and beats the best possible causal predictor.",
                  verdict, lines)


def _length_curve(runs: list[dict]) -> dict[str, float] | None:
    """Mean over seeds of the first breakdown by input length, {length group: metric}."""
    curves = [next((v for k, v in (r.get("breakdowns") or {}).items() if "length" in k), None)
              for r in runs]
    curves = [c for c in curves if c]
    if not curves:
        return None
    return {g: sum(c[g] for c in curves if g in c) / sum(g in c for c in curves)
            for g in curves[0]}


def attention_claim(grouped: dict[str, dict[str, list[dict]]]) -> list[str]:
    """Rule: for each seq2seq task with an encoder-decoder of one cell with and without
    attention, the one without degrades from the shortest to the longest inputs and the one
    with attention scores at least MARGIN higher on the longest ('holds' if on every such
    pair, 'only under a condition' if on some)."""
    lines, wins = [], []
    for task, by_model in grouped.items():
        cells: dict[str, dict[bool, tuple[str, dict]]] = {}
        for model, runs in by_model.items():
            c = runs[0]["model_config"]
            curve = _length_curve(runs)
            if c["family"] == "seq2seq" and curve:
                cells.setdefault(c["cell"], {})[c["attention"]] = (model, curve)
        for pair in cells.values():
            if len(pair) < 2:
                continue
            (plain, pc), (attn, ac) = pair[False], pair[True]
            short, long = next(iter(pc)), list(pc)[-1]
            degrades = pc[long] <= pc[short] - MARGIN
            won = degrades and ac.get(long, 0.0) >= pc[long] + MARGIN
            wins.append(won)
            lines.append(f"- {task}: without attention ({plain}) {pc[short]:.3f} on inputs of "
                         f"length {short} → {pc[long]:.3f} at {long}; with attention ({attn}) "
                         f"{ac.get(short, float('nan')):.3f} → {ac.get(long, float('nan')):.3f}")
    if not wins:
        verdict = "not observed (no encoder-decoder pair with and without attention)"
    elif all(wins):
        verdict = "holds"
    else:
        verdict = ("holds only under a condition: not on every task (see above)" if any(wins)
                   else "not observed")
    return _claim("A fixed-size encoding loses long inputs; attention fixes that",
                  "test accuracy by input length of an encoder-decoder with and without "
                  "attention (same cell and sizes). Rule: without attention accuracy falls by at "
                  f"least {MARGIN:g} from the shortest to the longest inputs, and attention "
                  f"is at least {MARGIN:g} better on the longest.", verdict, lines)
