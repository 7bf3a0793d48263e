"""More of the lecture notes' claims, decided on the training runs (and, for LSTM vs GRU, on
every study run too): model size and input length, length generalisation, the one-to-many
shape, an LSTM cell that keeps its content, and "LSTM and GRU perform about the same". Evidence
is picked by the claims tasks declare (TaskSpec.claims, in every result.json) and by the
registry facts of each run's model, never by a task's or a family's name.
"""

from __future__ import annotations

import statistics

from rnnbench.models.families import FAMILIES
from rnnbench.report.claims import (
    AT_BASELINE,
    Grouped,
    against_baseline,
    evidence_tasks,
    mean_metric,
    mean_std,
)
from rnnbench.report.compare import RULE, compare, finite
from rnnbench.report.verdict import Claim, Verdict, tally

USUALLY = 0.75  # "usually about the same": on at least this fraction of the tasks compared
RETAINS = 0.5  # at k x T a model keeps at least this fraction of its gain over the baseline
WRITE_MAX = 0.1  # a keeping cell's mean write gate over the span counts as "i = 0" below this
# Config fields that differ between cells of one shape and so do not tell shapes apart.
CELL_FIELDS = {"family", "cell", "forget_bias", "nonlinearity", "w_hh_scale"}


def _facts(runs: list[dict]) -> dict:
    return runs[0]["facts"]


def _gain(value: float, baseline: float, higher: bool) -> float:
    return value - baseline if higher else baseline - value


def _learnt(value: float | None, baseline: float, higher: bool) -> bool:
    return value is not None and _gain(value, baseline, higher) > AT_BASELINE * abs(baseline)


# ---------------------------------------------------------------- LSTM and GRU about the same
def shape_key(config: dict) -> tuple:
    """A model config without what only one cell has; the width only where no budget sets it."""
    c = {k: v for k, v in config.items() if k not in CELL_FIELDS}
    if c.get("param_budget") is not None:
        c.pop("hidden_size", None)
    return tuple(sorted(c.items()))


def _grid_sides(grouped: Grouped):
    """(task, where, cell -> [test values], metric, higher, baseline) from the training grid."""
    for task, by_model in grouped.items():
        shapes: dict[tuple, dict] = {}
        for model, runs in by_model.items():
            shapes.setdefault(shape_key(runs[0]["model_config"]), {}).setdefault(
                _facts(runs)["cell"], (model, runs))
        for sides in shapes.values():
            first = next(iter(sides.values()))[1][0]
            yield (task, "grid", {c: [r["test"][r["metric"]] for r in rs if r["status"] == "ok"]
                                  for c, (_, rs) in sides.items()},
                   first["metric"], first["higher_is_better"], first["baseline"][first["metric"]])


def _study_sides(summaries: list[dict]):
    for s in summaries:
        groups: dict[tuple, dict] = {}
        for r in s.get("runs", []):
            if "facts" not in r:  # a summary written before run records carried facts
                continue
            key = (r["variant"], shape_key(r["model_config"]))
            groups.setdefault(key, {}).setdefault(r["facts"]["cell"], []).append(r)
        for (variant, _), sides in groups.items():
            first = next(iter(sides.values()))[0]
            yield (s["task"], f"study {s['study']}, {variant}",
                   {c: [r["test_metric"] for r in rs if r["status"] == "ok"]
                    for c, rs in sides.items()},
                   first["metric"], first["higher_is_better"], first["baseline"])


def lstm_gru_claim(grouped: Grouped, summaries: list[dict]) -> Claim:
    """Rule: every LSTM and GRU of one shape trained alike on one task (grid or study) is a
    comparison; their test metrics are about the same by compare.RULE. A task is about the
    same when all of its comparisons are; 'holds' when at least USUALLY of the tasks are."""
    lines, per_task, skipped = [], {}, 0
    for task, where, sides, metric, higher, base in [*_grid_sides(grouped),
                                                      *_study_sides(summaries)]:
        if "lstm" not in sides or "gru" not in sides:
            continue
        d = compare(sides["lstm"], sides["gru"], higher, base)
        if d is None or d.outcome == "unknown":
            skipped += 1
            continue
        if not (_learnt(d.a, base, higher) or _learnt(d.b, base, higher)):
            lines.append(f"- {task} ({where}): neither learnt the task (test {metric} "
                         f"{d.a:.4g} and {d.b:.4g}, baseline {base:.4g}): left out")
            continue
        words = {"same": "about the same", "better": "LSTM better", "worse": "GRU better"}
        lines.append(f"- {task} ({where}): test {metric}, LSTM vs GRU {d.text()}: "
                     f"**{words[d.outcome]}**")
        per_task.setdefault(task, []).append(d.outcome == "same")
    if skipped:
        lines.append(f"- {skipped} LSTM/GRU comparison(s) with a single seed on a side left out "
                     "(the spread over seeds is unknown)")
    same = {t: all(v) for t, v in per_task.items()}
    if not same:
        verdict, detail = Verdict.NOT_MEASURED, "no LSTM/GRU pair with two seeds or more"
    elif sum(same.values()) >= USUALLY * len(same):
        verdict, detail = Verdict.HOLDS, ""
    elif any(same.values()):
        verdict, detail = Verdict.CONDITION, ("about the same only on "
                                              + ", ".join(t for t, v in same.items() if v))
    else:
        verdict, detail = Verdict.NOT_OBSERVED, ""
    return Claim("LSTM and GRU usually perform about the same (성능 차이는 크지 않음)",
                 "every LSTM and GRU of one shape (equal width, or equal parameter budget) "
                 "trained alike on one task, in the grid or in a study, with two seeds or more "
                 f"each. Rule: {RULE}; a task counts as about the same when every comparison on "
                 f"it is; 'usually' means on at least {USUALLY:.0%} of the tasks compared.",
                 verdict, detail, lines,
                 f"about the same on {sum(same.values())} of {len(same)} tasks" if same else "")


# ---------------------------------------------------------------- length
def _length_runs(grouped: Grouped):
    """(task, model, runs with a 'lengths' record) for the tasks declaring 'any_length'."""
    for task, by_model in evidence_tasks(grouped, "any_length").items():
        for model, runs in by_model.items():
            rs = [r for r in runs if r.get("lengths")]
            if rs:
                yield task, model, rs


def size_claim(grouped: Grouped) -> Claim:
    """Rule: for every model run on a task with a length T, the trained weights load unchanged
    into the network built for each k x T and the parameter counts are equal."""
    lines, same = [], []
    for task, model, runs in _length_runs(grouped):
        ln = runs[0]["lengths"]
        counts = [ln["n_params"], *(p["n_params"] for p in ln["points"])]
        lengths = [ln["trained"], *(p["length"] for p in ln["points"])]
        ok = all(r["lengths"]["same_parameters"] for r in runs) and len(set(counts)) == 1 \
            and len(counts) > 1
        same.append(ok)
        lines.append(f"- {task}, {model}: parameters at {ln['key']} = "
                     + ", ".join(f"{t}: {c:,}" for t, c in zip(lengths, counts, strict=True))
                     + ("" if ok else f" — {ln['reason'] or 'counts differ'}"))
    verdict, detail = tally(same, "no task with a length T in this profile",
                            "not for every model (see above)")
    return Claim("Model size does not grow with input length (길이와 상관없이 일정한 크기)",
                 "by construction, shown: the same W_ih, W_hh and b act at every step, so the "
                 "weights trained at length T are loaded, unchanged and exactly, into the "
                 "network built for 2T and 4T. Rule: every load succeeds and every count is "
                 "equal.", verdict, detail, lines,
                 f"{sum(same)} of {len(same)} models the same size at every length" if same
                 else "")


def length_table(runs: list[dict]) -> list[tuple[int, int, float | None, float]]:
    """(factor, length, mean metric over seeds, baseline) at T and each k x T."""
    r0 = runs[0]
    metric, ln = r0["metric"], r0["lengths"]
    rows = [(1, ln["trained"], mean_metric(runs), r0["baseline"][metric])]
    for i, p in enumerate(ln["points"]):
        vals = finite(r["lengths"]["points"][i]["metrics"].get(metric) for r in runs
                      if len(r["lengths"]["points"]) > i)
        rows.append((p["factor"], p["length"], statistics.mean(vals) if vals else None,
                     p["baseline"][metric]))
    return rows


def _kept(share: float | None, value: float | None, baseline: float, higher: bool) -> str:
    """A share of the gain kept, in words that match the numbers."""
    if share is None or value is None:
        return "n/a"
    where = against_baseline(value, baseline, higher)
    if where != "better than the trivial baseline" or abs(share) < 0.005:
        return f"nothing ({where})"
    return f"{share:.0%}"


def any_length_claim(grouped: Grouped) -> Claim:
    """Rule: a model that learnt the task at T (better than the baseline by more than
    AT_BASELINE) handles a longer length when it keeps at least RETAINS of its gain over that
    length's baseline there; 'holds' if every such model does at every k x T."""
    lines, cases, held = [], [], []
    for task, model, runs in _length_runs(grouped):
        rows = length_table(runs)
        higher = runs[0]["higher_is_better"]
        _, t0, m0, b0 = rows[0]
        shown = "; ".join(f"{'T' if k == 1 else f'{k}T'} = {n}: "
                          f"{'n/a' if m is None else f'{m:.4g}'} (baseline {b:.4g})"
                          for k, n, m, b in rows)
        if not _learnt(m0, b0, higher):
            lines.append(f"- {task}, {model}: test {runs[0]['metric']} {shown} — not learnt at "
                         "T: nothing to carry to longer inputs")
            continue
        kept = [None if m is None else _gain(m, b, higher) / _gain(m0, b0, higher)
                for _, _, m, b in rows[1:]]
        ok = all(k is not None and k >= RETAINS for k in kept)
        cases.append(ok)
        if ok:
            held.append(f"{model} on {task}")
        lines.append(f"- {task}, {model}: test {runs[0]['metric']} {shown}; of its gain over "
                     "the baseline at T it keeps "
                     + ", ".join(f"{_kept(k, m, b, higher)} at {f}T"
                                 for k, (f, _, m, b) in zip(kept, rows[1:], strict=True)))
    verdict, detail = tally(cases, "no model learnt a task with a length T in this profile",
                            "only for " + ", ".join(held))
    return Claim("An RNN processes inputs of any length (in theory; in practice only short ones)",
                 "models trained at one length T, tested on fresh data at 2T and 4T with the "
                 "same weights (adding: T steps; copy: the delay T; reverse: inputs of exactly "
                 "k times the longest training input). Rule: a model that learnt the task at T "
                 f"keeps at least {RETAINS:.0%} of its gain over each length's trivial baseline "
                 "at every longer length.", verdict, detail, lines,
                 f"{sum(cases)} of {len(cases)} models keep their gain at 4T" if cases else "")


# ---------------------------------------------------------------- one-to-many
def one_to_many_claim(grouped: Grouped) -> Claim:
    """Rule: on every task declaring it, every recurrent model beats the trivial baseline, and
    every registered family that serves the shape ran on it."""
    lines, beat, ran = [], [], set()
    serving = sorted(n for n, f in FAMILIES.items() if "one_to_many" in f.shapes)
    for task, by_model in evidence_tasks(grouped, "one_to_many").items():
        first = next(iter(by_model.values()))[0]
        metric, higher, base = first["metric"], first["higher_is_better"], first["baseline"]
        bounds = {k: v for k, v in base.items() if k.startswith(f"{metric}_")
                  and isinstance(v, float)}
        lines.append(f"- {task}: {first.get('definition', '')}; trivial baseline "
                     f"({base['name']}) {metric} {base[metric]:.4g}"
                     + "".join(f", {k} {v:.4g}" for k, v in bounds.items()))
        for model, runs in by_model.items():
            ran.add(runs[0]["family"])
            m = mean_metric(runs)
            beat.append(_learnt(m, base[metric], higher))
            lines.append(f"- {task}, {model} ({_facts(runs)['cell']}): test {metric} "
                         f"{mean_std(runs)}, {sum(r['solved'] for r in runs)}/{len(runs)} "
                         "seeds solved")
    missing = [f for f in serving if f not in ran]
    if missing and beat:
        lines.append(f"- families serving the shape that did not run: {', '.join(missing)}")
    if not beat:
        verdict, detail = Verdict.NOT_MEASURED, "no one-to-many task here"
    elif not any(beat):
        verdict, detail = Verdict.NOT_OBSERVED, ""
    elif all(beat) and not missing:
        verdict, detail = Verdict.HOLDS, ""
    else:
        verdict, detail = Verdict.CONDITION, "; ".join(
            ([] if all(beat) else ["not every model beat the trivial baseline"])
            + ([f"not run by {', '.join(missing)}"] if missing else []))
    return Claim("One input, a sequence out: the one-to-many shape (image captioning)",
                 "a task with one input vector and a sequence of outputs, served by every "
                 "recurrent family of the registry. Rule: every model beats the trivial "
                 "baseline by more than 5% and every family serving the shape ran.",
                 verdict, detail, lines,
                 f"{sum(beat)} of {len(beat)} models beat the baseline" if beat else "")


# ---------------------------------------------------------------- the LSTM's keep gate
def _trained_horizon(run: dict) -> str:
    """The trained model's gradient horizon at 1e-3 (probes), in words."""
    later = [p for p in run.get("probes") or [] if p["step"] > 0]
    if not later:
        return "not probed"
    p = max(later, key=lambda p: p["step"])
    h = next((v for k, v in p["figures"].items() if k.endswith("l0_fwd.horizon@0.001")), None)
    return f"{h} steps" if h is not None else f"beyond the {p.get('seq_len', 'T')} steps probed"


def keep_gate_claim(grouped: Grouped) -> Claim:
    """Rule: in every LSTM that solved a memory task (at least half its seeds), on most of its
    solved seeds some cell keeps what it held across the memory span (retention >= KEEPS in
    most examples) while its input gate stays below WRITE_MAX on average there."""
    lines, cases = [], []
    for task, by_model in evidence_tasks(grouped, "gate_keeps_content").items():
        for model, runs in by_model.items():
            rs = [r for r in runs if r.get("gates")]
            if not rs:
                continue
            g0 = rs[0]["gates"]
            stats = [r["gates"]["layers"]["l0_fwd"] for r in rs]
            hor = [_trained_horizon(r) for r in rs]
            lines.append(
                f"- {task}, {model} ({g0['cell']}, keep gate {g0['gate']}): solved "
                f"{sum(r['solved'] for r in rs)}/{len(rs)}; mean span {g0['span_mean']:.1f} "
                f"steps; cells with {g0['gate']} ≥ {g0['near_one']:g} at every step "
                + ", ".join(f"{s['near_one_fraction']:.0%}" for s in stats)
                + f"; cells keeping ≥ {g0['keeps']:g} of their content over the span "
                + ", ".join(f"{s['keeping_cells']}" for s in stats)
                + "; their mean write gate "
                + ", ".join("n/a" if s["keeping_write"] is None else f"{s['keeping_write']:.3f}"
                            for s in stats)
                + "; gradient horizon (ratio below 1e-3) after training " + ", ".join(hor))
            solved = [r for r in rs if r["solved"]]
            if g0["cell"] != "lstm" or 2 * len(solved) < len(rs):
                continue
            keeps = [s["keeping_cells"] > 0 and s["keeping_write"] is not None
                     and s["keeping_write"] <= WRITE_MAX
                     for s in (r["gates"]["layers"]["l0_fwd"] for r in solved)]
            cases.append(2 * sum(keeps) > len(keeps))
    number = f"a keeping cell in {sum(cases)} of {len(cases)} LSTMs that solved a memory " \
             "task" if cases else ""
    if not cases:
        verdict, detail = Verdict.NOT_MEASURED, "no LSTM solved a memory task in this profile"
    else:
        verdict, detail = tally(cases, "", "not in every LSTM that solved a memory task")
    return Claim("LSTM: with f = 1 and i = 0 a cell keeps its content indefinitely",
                 "the trained model run cell by cell on 128 test examples; over each example's "
                 "memory span (adding: from the first marker to the answer; copy: from the last "
                 "symbol to the first recall) a cell's retention is the product of its forget "
                 "gates (GRU: update gates z, shown beside), the share of what it held that "
                 "survives. Rule: every LSTM that solved the task has, on most solved seeds, a "
                 "cell keeping at least half of its content in most examples with a mean input "
                 f"gate below {WRITE_MAX:g} over the span. The gradient horizon (probes) is shown "
                 "beside, not judged.", verdict, detail, lines, number)


def more_claims(grouped: Grouped, summaries: list[dict]) -> list[Claim]:
    """The claims above in the report's order (the length figure follows any_length_claim)."""
    return [lstm_gru_claim(grouped, summaries), size_claim(grouped), any_length_claim(grouped),
            one_to_many_claim(grouped), keep_gate_claim(grouped)]
