"""The lecture notes' claims tested on the training runs: each a rule from result files to a
Claim (rnnbench.report.verdict). Which tasks are evidence for a claim is declared by the tasks
(TaskSpec.claims, recorded in every result.json); which kind of model a run is comes from its
registry facts (result.json "facts"): nothing here knows a task's or a family's name.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from rnnbench.report.verdict import Claim, Verdict, render_claim, tally

Grouped = dict[str, dict[str, list[dict]]]  # task -> model -> runs (one per seed)
INIT_CURVE_RTOL = 1e-4  # float32 agreement of the initial dL/dh_t curves, torch vs Numba
MARGIN = 0.05  # metric points a model must win by to count as better
AT_BASELINE = 0.05  # better by at most 5% of the trivial baseline counts as "at" it
SEED_RATE = 0.5  # a comparison wins on a task when it wins on at least this share of the seeds


def ok_values(runs: list[dict]) -> list[float]:
    return [r["test"][r["metric"]] for r in runs if r["status"] == "ok"]


def mean_metric(runs: list[dict]) -> float | None:
    vals = ok_values(runs)
    return statistics.mean(vals) if vals else None


def mean_std(runs: list[dict], digits: int = 4) -> str:
    vals = ok_values(runs)
    if not vals:
        return "diverged"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}g}"
    return f"{statistics.mean(vals):.{digits}g} ± {statistics.stdev(vals):.2g}"


def success(runs: list[dict]) -> str:
    return f"solved {sum(bool(r['solved']) for r in runs)}/{len(runs)} seeds"


def success_rate(runs: list[dict]) -> float:
    return sum(bool(r["solved"]) for r in runs) / len(runs)


def against_baseline(value: float, baseline: float, higher_is_better: bool) -> str:
    """'worse than' / 'at' / 'better than' the trivial baseline, as the numbers say: any value on
    the wrong side of the baseline is worse than it; 'at' is a value better by at most
    AT_BASELINE of the baseline (nothing learnt), or equal to it."""
    gain = (value - baseline) if higher_is_better else (baseline - value)
    if gain < 0:
        return "worse than the trivial baseline"
    if gain <= AT_BASELINE * abs(baseline):
        return "at the trivial baseline"
    return "better than the trivial baseline"


def paired(a: list[dict], b: list[dict]) -> list[tuple[dict, dict]]:
    """The runs of two models that share a seed, side by side (seed order of `a`)."""
    by_seed = {r["seed"]: r for r in b}
    return [(r, by_seed[r["seed"]]) for r in a if r["seed"] in by_seed]


def seed_wins(outcomes: list[bool]) -> tuple[bool, str]:
    """(won on at least SEED_RATE of the seeds, 'won on k/n seeds')."""
    k, n = sum(outcomes), len(outcomes)
    return bool(n) and k >= SEED_RATE * n, f"won on {k}/{n} seeds"


def evidence_tasks(grouped: Grouped, claim: str) -> Grouped:
    """The tasks whose runs declare themselves evidence for `claim`."""
    return {t: by for t, by in grouped.items()
            if claim in next(iter(by.values()))[0].get("claims", [])}


def _facts(runs: list[dict]) -> dict:
    return runs[0]["facts"]


def _pairs(by_model: dict[str, list[dict]], key: Callable[[dict], object],
           side: Callable[[dict], object]) -> list[dict]:
    """Models grouped by `key` of their config (same shape), then by `side` of their facts."""
    out: dict[object, dict] = {}
    for model, runs in by_model.items():
        k = key(runs[0]["model_config"])
        out.setdefault(k, {}).setdefault(side(_facts(runs)), (model, runs))
    return list(out.values())


def _shape(c: dict) -> tuple:
    return c["hidden_size"], c["num_layers"], c["bidirectional"]


# ---------------------------------------------------------------- the rules
def gates_claim(grouped: Grouped) -> Claim:
    """Rule: on every task declaring it, every gated model solves the task on at least half of
    its seeds while every vanilla model solves it on none and stays at or above half the
    baseline; 'holds only under a condition' if some models behave as claimed."""
    tasks = evidence_tasks(grouped, "gates_long_range")
    gated_ok, vanilla_stuck, lines, numbers = [], [], [], []
    for task, by_model in tasks.items():
        first = next(iter(by_model.values()))[0]
        metric, higher = first["metric"], first["higher_is_better"]
        base = first["baseline"][metric]
        seq_len = first.get("task_config", {}).get("seq_len", "?")
        for model, runs in by_model.items():
            f = _facts(runs)
            if f["encoder_decoder"]:
                continue
            m = mean_metric(runs)
            where = "" if m is None else f", {against_baseline(m, base, higher)} ({base:.4g})"
            kind = "gated" if f["gated"] else "vanilla"
            lines.append(f"- {task} (T = {seq_len}), {model} ({kind}): test {metric} "
                         f"{mean_std(runs)}, {success(runs)}{where}")
            if f["gated"]:
                gated_ok.append(success_rate(runs) >= 0.5)
            else:
                far = m is None or (m <= 0.5 * base if higher else m >= 0.5 * base)
                vanilla_stuck.append(success_rate(runs) == 0 and far)
            numbers.append(f"{model} {sum(bool(r['solved']) for r in runs)}/{len(runs)}")
    if not gated_ok or not vanilla_stuck:
        verdict, detail = Verdict.NOT_OBSERVED, "the grid needs both a gated and a vanilla model"
    elif all(gated_ok) and all(vanilla_stuck):
        verdict, detail = Verdict.HOLDS, ""
    elif any(gated_ok) and any(vanilla_stuck):
        verdict, detail = Verdict.CONDITION, "not every model behaved as claimed (see above)"
    else:
        verdict, detail = Verdict.NOT_OBSERVED, ""
    return Claim("Gated cells learn long-range dependencies that a vanilla RNN cannot",
                 "the long-range tasks (adding problem: trivial baseline MSE 1/6); a model solves "
                 "a seed when its test metric passes the task's threshold. Rule: every gated "
                 "model solves at least half its seeds; every vanilla model solves none and "
                 "stays at or beyond half the baseline.", verdict, detail, lines,
                 "seeds solved: " + ", ".join(numbers))


def gru_lstm_claim(grouped: Grouped) -> Claim:
    """GRU and LSTM runs of the same shape on each task: parameters by construction; accuracy
    and time per step shown (the speed claim judges the time)."""
    lines, pairs = [], 0
    for task, by_model in grouped.items():
        for fams in _pairs(by_model, _shape, lambda f: f["cell"]):
            if "gru" not in fams or "lstm" not in fams:
                continue
            pairs += 1
            (g, gr), (lm, lr) = fams["gru"], fams["lstm"]
            per_step = [statistics.median(r["train_time_s"] / max(r["steps"], 1) for r in runs)
                        for runs in (gr, lr)]
            h, layers, bi = _shape(gr[0]["model_config"])
            lines.append(
                f"- {task}, H={h}, {layers} layer(s){', bidirectional' if bi else ''}: "
                f"parameters {g} {gr[0]['n_params']:,} vs {lm} {lr[0]['n_params']:,} "
                f"({gr[0]['n_params'] / lr[0]['n_params']:.2f}×); time per training step in "
                f"training {per_step[0] * 1e3:.2f} vs {per_step[1] * 1e3:.2f} ms; test "
                f"{gr[0]['metric']} {mean_std(gr)} vs {mean_std(lr)}")
    verdict, detail = (Verdict.HOLDS, "by construction: 3 gate blocks against 4") if pairs else \
        (Verdict.NOT_OBSERVED, "no GRU/LSTM pair of the same shape")
    return Claim("GRU has fewer parameters than LSTM", "GRU and LSTM presets of the same hidden "
                 "size, depth and direction, trained on the same data; the parameter counts "
                 "are the built networks'. Whether GRU also trains faster is judged by the "
                 "speed benchmark.", verdict, detail, lines,
                 f"{pairs} pair(s)" if pairs else "")


def _init_curve(runs: list[dict]) -> list | None:
    """The first run's dL/dh_t ratio curve (layer 1, forward) from its probe at step 0."""
    for p in runs[0].get("probes", []):
        if p["step"] == 0:
            grads = next(iter(p["gradients"].values()))
            return grads["curves"]["l0_fwd"]["ratio"]
    return None


def _max_rel_diff(a: list, b: list) -> float | None:
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None and x]
    return max(abs(x - y) / abs(x) for x, y in pairs) if pairs else None


def numba_claim(grouped: Grouped) -> Claim:
    """A Numba and a torch implementation of the same cell and shape start from identical
    weights (same seed): on the same probe batch, the hand-written BPTT must give torch's
    dL/dh_t."""
    lines, agree = [], []
    for task, by_model in grouped.items():
        key = lambda c: (*_shape(c), c.get("nonlinearity"))  # noqa: E731
        for impls in _pairs(by_model, key, lambda f: (f["cell"], f["implementation"])):
            torch_side = [v for (cell, impl), v in impls.items() if impl == "torch"]
            numba_side = [v for (cell, impl), v in impls.items() if impl == "numba"]
            if not torch_side or not numba_side:
                continue
            (t_name, t_runs), (n_name, n_runs) = torch_side[0], numba_side[0]
            t_curve, n_curve = _init_curve(t_runs), _init_curve(n_runs)
            diff = _max_rel_diff(t_curve, n_curve) if t_curve and n_curve else None
            if diff is not None:
                agree.append(diff <= INIT_CURVE_RTOL)
            per_step = [statistics.median(r["train_time_s"] / max(r["steps"], 1) for r in runs)
                        for runs in (t_runs, n_runs)]
            compile_s = statistics.median(r.get("compile_s", 0.0) for r in n_runs)
            shown = "not probed" if diff is None else f"{diff:.1e}"
            lines.append(
                f"- {task}: dL/dh_t at initialisation, largest relative difference {shown}; "
                f"after training, test {t_runs[0]['metric']} {t_name} {mean_std(t_runs)} vs "
                f"{n_name} {mean_std(n_runs)}; time per training step {per_step[0] * 1e3:.2f} "
                f"vs {per_step[1] * 1e3:.2f} ms ({per_step[0] / per_step[1]:.2f}×); Numba "
                f"compile or cache load {compile_s:.2f} s, outside the step times")
    verdict, detail = tally(agree, "no probed torch/Numba pair of the same shape",
                            "not on every task")
    return Claim("The hand-written Numba RNN computes what torch's nn.RNN computes",
                 "rnn and numba_rnn presets of one shape start from identical weights (one "
                 "seed) and see the same batches. Rule: on the probe batch at initialisation, "
                 f"the per-step gradients dL/dh_t agree within {INIT_CURVE_RTOL:g} relative "
                 "(float32). Trained metrics are shown, not judged: training is chaotic, and "
                 "a last-bit difference in one weight grows step by step once the "
                 "trajectories part, for two torch runs as for torch and Numba (the parity "
                 "figure in the speed section).", verdict, detail, lines)


def sine_claim(grouped: Grouped) -> Claim:
    """The worked example: does the lecture's model beat repeating the last value?"""
    lines, beat = [], []
    for task, by_model in evidence_tasks(grouped, "worked_example").items():
        b = next(iter(by_model.values()))[0]["baseline"]
        lines.append(f"- {task} baselines: training mean {b['mse']:.4g}, last value "
                     f"{b['mse_last_value']:.4g}, noise floor {b['mse_noise_floor']:.4g}")
        for model, runs in by_model.items():
            m = mean_metric(runs)
            lines.append(f"- {model}: test MSE {mean_std(runs)}")
            beat.append(m is not None and m < b["mse_last_value"])
    verdict, detail = tally(beat, "no task declares it", "not for every model")
    return Claim("An RNN predicts the next value of a noisy sine wave (the worked example)",
                 "test MSE on the last 15% of the series, against predicting the training "
                 "mean and repeating the last value. Rule: every model beats the last value.",
                 verdict, detail, lines)


def _sees_future(bi: dict, uni: dict, bound: float | None) -> bool:
    """One seed: the bidirectional run beats its twin by MARGIN and any causal predictor."""
    b, u = ok_values([bi]), ok_values([uni])
    return bool(b) and (not u or b[0] >= u[0] + MARGIN) and (bound is None or b[0] > bound)


def bidirectional_claim(grouped: Grouped) -> Claim:
    """Rule: on every task declaring it that has a unidirectional and a bidirectional model of
    one cell, the bidirectional one beats it by at least MARGIN and beats the best any causal
    predictor can do, where the task states that bound."""
    lines, wins = [], []
    for task, by_model in evidence_tasks(grouped, "bidirectional_future").items():
        first = next(iter(by_model.values()))[0]
        causal = {k: v for k, v in first["baseline"].items()
                  if "causal" in k and isinstance(v, float)}
        bound = next(iter(causal.values()), None)
        pairs: dict[tuple, dict[bool, tuple[str, list[dict]]]] = {}
        for model, runs in by_model.items():
            c = runs[0]["model_config"]
            pairs.setdefault((_facts(runs)["cell"], c["num_layers"]), {})[c["bidirectional"]] = \
                (model, runs)
        for sides in pairs.values():
            if len(sides) < 2:
                continue
            (uni, ur), (bi, br) = sides[False], sides[True]
            won, rate = seed_wins([_sees_future(b, u, bound) for b, u in paired(br, ur)])
            wins.append(won)
            lines.append(f"- {task}: {bi} {mean_std(br, 3)} vs {uni} {mean_std(ur, 3)} test "
                         f"{first['metric']} ({success(br)} vs {success(ur)}); {bi} {rate}"
                         + (f"; best causal predictor {bound:.3f}" if bound is not None else ""))
    verdict, detail = tally(wins, "no task with a unidirectional and a bidirectional model",
                            "not on every task (see above)")
    return Claim("Bidirectional RNNs use the future of the sequence",
                 "per-step test accuracy of a model and its bidirectional twin on tasks whose "
                 "labels depend on later inputs, seed by seed. Rule: on a seed the "
                 f"bidirectional model wins when it is at least {MARGIN:g} better and beats the "
                 "best possible causal predictor; it wins a task when it wins on at least "
                 f"{SEED_RATE:.0%} of the seeds both ran.",
                 verdict, detail, lines)


def _length_curve(runs: list[dict]) -> dict[str, float] | None:
    """Mean over seeds of the first breakdown by input length, {length group: metric}."""
    curves = [next((v for k, v in (r.get("breakdowns") or {}).items() if "length" in k), None)
              for r in runs]
    curves = [c for c in curves if c]
    if not curves:
        return None
    return {g: sum(c[g] for c in curves if g in c) / sum(g in c for c in curves)
            for g in curves[0]}


def _attention_fixes(attn: dict, plain: dict, short: str, long: str) -> bool:
    """One seed: without attention accuracy falls by MARGIN from the shortest to the longest
    inputs, and with attention it is MARGIN better on the longest."""
    p, a = _length_curve([plain]) or {}, _length_curve([attn]) or {}
    nan = float("nan")
    return p.get(long, nan) <= p.get(short, nan) - MARGIN and \
        a.get(long, nan) >= p.get(long, nan) + MARGIN


def attention_claim(grouped: Grouped) -> Claim:
    """Rule: for each task declaring it with an encoder-decoder of one cell with and without
    attention, the one without degrades from the shortest to the longest inputs and the one
    with attention scores at least MARGIN higher on the longest."""
    lines, wins = [], []
    for task, by_model in evidence_tasks(grouped, "attention_long_inputs").items():
        cells: dict[str, dict[bool, tuple[str, list[dict]]]] = {}
        for model, runs in by_model.items():
            if _facts(runs)["encoder_decoder"] and _length_curve(runs):
                cells.setdefault(_facts(runs)["cell"], {})[
                    runs[0]["model_config"]["attention"]] = (model, runs)
        for pair in cells.values():
            if len(pair) < 2:
                continue
            (plain, pr), (attn, ar) = pair[False], pair[True]
            pc, ac = _length_curve(pr), _length_curve(ar) or {}
            short, long = next(iter(pc)), list(pc)[-1]
            won, rate = seed_wins([_attention_fixes(a, p, short, long)
                                   for a, p in paired(ar, pr)])
            wins.append(won)
            lines.append(f"- {task}: without attention ({plain}) {pc[short]:.3f} on inputs of "
                         f"length {short} → {pc[long]:.3f} at {long}; with attention ({attn}) "
                         f"{ac.get(short, float('nan')):.3f} → {ac.get(long, float('nan')):.3f} "
                         f"(means over seeds); attention {rate}")
    verdict, detail = tally(wins, "no encoder-decoder pair with and without attention",
                            "not on every task (see above)")
    return Claim("A fixed-size encoding loses long inputs; attention fixes that",
                 "test accuracy by input length of an encoder-decoder with and without "
                 "attention (same cell and sizes), seed by seed. Rule: on a seed attention wins "
                 f"when without it accuracy falls by at least {MARGIN:g} from the shortest to "
                 f"the longest inputs and attention is at least {MARGIN:g} better on the "
                 f"longest; it wins a task when it wins on at least {SEED_RATE:.0%} of the "
                 "seeds both ran.", verdict, detail, lines)


RULES: tuple[Callable[[Grouped], Claim], ...] = (
    gates_claim, gru_lstm_claim, numba_claim, sine_claim, bidirectional_claim, attention_claim)


def training_claims(grouped: Grouped) -> list[Claim]:
    return [rule(grouped) for rule in RULES]


def claims_section(grouped: Grouped) -> list[str]:
    return ["## Claims from the lecture notes, tested", "",
            *(line for c in training_claims(grouped) for line in render_claim(c))]
