"""Does dropping h_{t-1} from the gates cost accuracy? Each state-free model (minGRU, minLSTM,
Feng et al. 2024) against the classic cell it simplifies (GRU, LSTM), of the same shape and
trained alike, on every task that declares the claim (TaskSpec.claims "state_free_gates").
Sides are picked by the registry facts each run records (state_free, classic, cell), never by
a family's name."""

from __future__ import annotations

from rnnbench.report.claims import Grouped, evidence_tasks
from rnnbench.report.claims_more import CELL_FIELDS, _learnt
from rnnbench.report.compare import RULE, compare, mean_text
from rnnbench.report.verdict import Claim, Verdict

# Config fields that differ between a state-free cell and its classic one of the same shape.
SIDE_FIELDS = CELL_FIELDS | {"mode"}


def _shape(config: dict) -> tuple:
    c = {k: v for k, v in config.items() if k not in SIDE_FIELDS}
    if c.get("param_budget") is not None:
        c.pop("hidden_size", None)
    return tuple(sorted(c.items()))


def _values(runs: list[dict]) -> list[float]:
    return [r["test"][r["metric"]] for r in runs if r["status"] == "ok"]


def pairs(by_model: dict[str, list[dict]]):
    """(state-free model, its runs, classic model, its runs) of one shape on one task."""
    shapes: dict[tuple, dict[str, tuple[str, list[dict]]]] = {}
    for model, runs in by_model.items():
        f = runs[0]["facts"]
        side = f"free:{f['classic']}" if f.get("state_free") else f"classic:{f['cell']}"
        shapes.setdefault(_shape(runs[0]["model_config"]), {}).setdefault(side, (model, runs))
    for sides in shapes.values():
        for side, (model, runs) in sides.items():
            if side.startswith("free:") and f"classic:{side[5:]}" in sides:
                yield (model, runs, *sides[f"classic:{side[5:]}"])


def state_free_claim(grouped: Grouped) -> Claim:
    """Rule: a comparison costs accuracy when the state-free model is worse than its classic
    cell by compare.RULE (two seeds or more a side); a task costs when any comparison on it
    does. Holds when no task costs; under a condition when some do; not observed when all do.
    Pairs where neither learnt (claims_more.AT_BASELINE of the trivial baseline) are left out; pairs
    with one seed a side are shown, not judged."""
    lines, costs = [], {}
    for task, by_model in evidence_tasks(grouped, "state_free_gates").items():
        for free, free_runs, classic, classic_runs in pairs(by_model):
            first = free_runs[0]
            metric, higher = first["metric"], first["higher_is_better"]
            base = first["baseline"][metric]
            d = compare(_values(free_runs), _values(classic_runs), higher, base)
            if d is None:
                continue
            head = (f"- {task}: {free} vs {classic}, test {metric} "
                    f"{mean_text(_values(free_runs))} vs {mean_text(_values(classic_runs))} "
                    f"(baseline {base:.4g})")
            if not (_learnt(d.a, base, higher) or _learnt(d.b, base, higher)):
                lines.append(f"{head}: neither learnt the task, left out")
            elif d.outcome == "unknown":
                lines.append(f"{head}: one seed on a side, not judged")
            else:
                words = {"same": "about the same", "better": "the state-free model better",
                         "worse": "the state-free model worse"}
                lines.append(f"{head}; {d.text()}: **{words[d.outcome]}**")
                costs.setdefault(task, []).append(d.outcome == "worse")
    per_task = {t: any(v) for t, v in costs.items()}
    title = ("Gates need not read h_(t-1): minGRU and minLSTM learn what GRU and LSTM learn "
             "(Feng et al. 2024)")
    rule = ("each state-free model (minGRU, minLSTM: gates and candidate from x_t only) against "
            "the classic cell it simplifies, of the same shape (equal width, or equal parameter "
            "budget) and trained alike, on the memory tasks (adding, copy, selective copy). "
            f"Rule: {RULE}; a task costs accuracy when any comparison on it finds the "
            "state-free model worse; holds when no task does.")
    number = (f"costs accuracy on {sum(per_task.values())} of {len(per_task)} tasks"
              if per_task else "")
    if not per_task:
        return Claim(title, rule, Verdict.NOT_MEASURED,
                     "no state-free/classic pair with two seeds or more a side that learnt the "
                     "task", lines)
    if not any(per_task.values()):
        return Claim(title, rule, Verdict.HOLDS, "", lines, number)
    if all(per_task.values()):
        return Claim(title, rule, Verdict.NOT_OBSERVED,
                     "dropping h_(t-1) costs accuracy on every task compared", lines, number)
    return Claim(title, rule, Verdict.CONDITION,
                 "no cost on " + ", ".join(t for t, c in per_task.items() if not c)
                 + "; it costs accuracy on " + ", ".join(t for t, c in per_task.items() if c),
                 lines, number)
