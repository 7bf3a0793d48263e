"""reports/benchmark.md: per task a table of models and a learning-curve figure, then the
lecture notes' claims with the measurements that test them."""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from rnnbench.io import (
    FILE_MARKER,
    atomic_dir,
    check_output_dir,
    check_output_file,
    git_state,
    project_root,
    read_result,
    result_files,
    write_text_atomic,
)
from rnnbench.report.checks import checks_line, method_checks
from rnnbench.report.claims import training_claims
from rnnbench.report.figures import assign_colors, learning_curves, use_fonts
from rnnbench.report.html import to_html
from rnnbench.report.plots import write_plot_data
from rnnbench.report.probes import decay_figure, probes_section, vanishing_claim
from rnnbench.report.reliability import reliability_lines
from rnnbench.report.showcase import breakdown_tables, showcase_lines
from rnnbench.report.speed import speed_claims, speed_section
from rnnbench.report.study import study_claims, study_section
from rnnbench.report.study_more import all_more_claims, more_claims_section
from rnnbench.report.summary import (
    SUMMARY_HEADINGS,
    Entry,
    environment_section,
    headings,
    run_ids,
    summary_section,
)
from rnnbench.report.verdict import Claim, render_claim
from rnnbench.speed.schema import SpeedResult
from rnnbench.study.schema import StudySummary
from rnnbench.training.schema import RunResult


def load_results(results_dir: Path) -> list[dict]:
    """Every result.json under results_dir (a grid block's <block>/<model>/<task>/seedN/, a
    sweep's <model>/<task>/seedN/), each with its curve rows."""
    results = []
    for path in result_files(results_dir, "**/seed*/result.json"):
        m = read_result(path, RunResult)
        curves = path.with_name("curves.csv")
        m["curves"] = list(csv.DictReader(curves.open(encoding="utf-8"))) if curves.exists() \
            else []
        probes = path.with_name("probes.json")
        m["probes"] = json.loads(probes.read_text(encoding="utf-8")) if probes.exists() else []
        show = path.with_name("showcase.json")
        m["showcase"] = json.loads(show.read_text(encoding="utf-8")) if show.exists() else None
        results.append(m)
    return results


def group(results: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """task -> model -> runs (one per seed), in a stable order."""
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(results, key=lambda r: (r["task"], r["model"], r["seed"])):
        out[r["task"]][r["model"]].append(r)
    return out


def test_values(runs: list[dict]) -> list[float]:
    return [r["test"][r["metric"]] for r in runs if r["status"] == "ok"]


def mean_std(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"


def _median_or_dash(values: list, fmt: str) -> str:
    values = [v for v in values if v is not None]
    return format(statistics.median(values), fmt) if values else "—"


STOPPED = {"budget": "trained the whole budget", "solved": "stopped at the threshold",
           "patience": "stopped by patience", "diverged": "diverged"}


def stopping_line(runs: list[dict]) -> str:
    """How the runs of a task were trained and which model was tested, from their records."""
    rules = sorted({(bool(r.get("early_stop")), bool(r.get("keep_best"))) for r in runs
                    if "stopped" in r})
    if not rules:
        return ""
    said = "; ".join(("stopping early once the validation metric reached the threshold"
                      if early else "a fixed budget (no stop at the threshold)")
                     + (", the checkpoint with the best validation metric tested" if best
                        else ", the last model tested") for early, best in rules)
    counts: dict[str, int] = {}
    for r in runs:
        if "stopped" in r:
            counts[r["stopped"]] = counts.get(r["stopped"], 0) + 1
    how = ", ".join(f"{n} {STOPPED.get(k, k)}" for k, n in sorted(counts.items()))
    return f"Training: {said} ({how})."
TASKS_INTRO = [
    "## Results per task", "",
    "Each number is the tested model's score on the held-out test split (the best-validation "
    "checkpoint on a fixed dataset, the final model on a generated task), mean ± std over the "
    "seeds. Steps and time to solve: the first validation at which the metric reached the "
    "task's threshold (median over the runs that did; training time only, compilation and "
    "evaluation excluded; a grid block trains `grid.processes` runs at a time, so its times "
    "share the machine: the speed section times each model alone). Runs: the MLflow run id "
    "of each seed, in seed order (`rnnbench ui`, "
    "or `rnnbench compare --run ID`); the result files are "
    "`results/train/<block>/<model>/<task>/seed<N>/result.json`.",
    ""]


def task_table(runs_by_model: dict[str, list[dict]]) -> list[str]:
    first = next(iter(runs_by_model.values()))[0]
    metric, base = first["metric"], first["baseline"]
    better = "higher" if first["higher_is_better"] else "lower"
    lines = [
        f"Metric: test **{metric}** ({better} is better); trivial baseline "
        f"({base['name']}): **{base.get(metric, float('nan')):.4g}**; solved at "
        f"{'≥' if first['higher_is_better'] else '≤'} {first['solved_threshold']:g}.",
        "",
        *([line, ""] if (line := stopping_line([r for rs in runs_by_model.values()
                                                 for r in rs])) else []),
        f"| model | {metric} (mean ± std) | solved | parameters | train time (s) "
        "| steps | steps to solve | time to solve (s) | status | runs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, runs in runs_by_model.items():
        statuses = sorted({r["status"] for r in runs})
        lines.append(
            f"| {model} | {mean_std(test_values(runs))} "
            f"| {sum(r['solved'] for r in runs)}/{len(runs)} | {runs[0]['n_params']:,} "
            f"| {_median_or_dash([r['train_time_s'] for r in runs], '.1f')} "
            f"| {_median_or_dash([r['steps'] for r in runs], '.0f')} "
            f"| {_median_or_dash([r['steps_to_solve'] for r in runs], '.0f')} "
            f"| {_median_or_dash([r['time_to_solve_s'] for r in runs], '.1f')} "
            f"| {', '.join(statuses)} | {run_ids(runs)} |")
    for r in (r for runs in runs_by_model.values() for r in runs if r["status"] != "ok"):
        lines.append(f"\n- {r['model']} seed {r['seed']}: **{r['status']}** — {r['reason']}")
    return lines


def probes_by_task(grouped: dict[str, dict[str, list[dict]]]) -> dict[str, dict[str, list]]:
    """task -> model -> the probe results of its lowest seed (probes of one network)."""
    out: dict[str, dict[str, list]] = {}
    for task, by_model in grouped.items():
        for model, runs in by_model.items():
            if runs[0]["probes"]:
                out.setdefault(task, {})[model] = runs[0]["probes"]
    return out


def probe_claims(probes: dict[str, dict[str, list]]) -> list[Entry]:
    """The gradient section's verdict on each task, as claims for the summary table."""
    claims = [vanishing_claim(by_model, task) for task, by_model in probes.items()]
    return [Entry(c, c.title, "Gradient flow through time") for c in claims]


def render(results: list[dict], title: str, missing: list[tuple], figures: dict[str, str],
           speed: dict | None = None, probe_figures: dict[str, str] | None = None,
           task_extras: dict[str, list[str]] | None = None,
           more: tuple[list[Claim], list[str]] | None = None,
           studies: list[tuple[dict, list[str]]] | None = None,
           context: dict | None = None, checks: str | None = None) -> str:
    """The report's markdown: Summary, Environment, the claims, the tasks, the gradients, speed
    and the studies. more: (the claims of study_more, their rendered lines); studies: (summary,
    rendered section) per study."""
    grouped = group(results)
    entries = [Entry(c, c.title, "Claims from the lecture notes")
               for c in [*training_claims(grouped), *(more[0] if more else []),
                         *(speed_claims(speed) if speed is not None else [])]]
    body = ["## Claims from the lecture notes, tested", "",
            *(line for c in training_claims(grouped) for line in render_claim(c)),
            *(more[1] if more else []),
            *(line for c in (speed_claims(speed) if speed is not None else [])
              for line in render_claim(c))]
    body += TASKS_INTRO
    for task, runs_by_model in grouped.items():
        first = next(iter(runs_by_model.values()))[0]
        body += [f"### Task `{task}`", "", *task_table(runs_by_model), ""]
        if task in figures:
            body += [f"![learning curves on {task}]({figures[task]})", ""]
        body.append(f"Data sha256 `{first['data_sha256'][:16]}…`.")
        body += [*(task_extras or {}).get(task, []), ""]
    probes = probes_by_task(grouped)
    if probes:
        body += ["", *probes_section(probes, probe_figures),
                 "Probed runs (each model's lowest seed): " + "; ".join(
                     f"{task}: " + ", ".join(f"{m} {run_ids(by[m][:1])}" for m in probes[task])
                     for task, by in grouped.items() if task in probes) + ".", ""]
        entries += probe_claims(probes)
    if speed is not None:
        body += ["", *speed["_section"]]
        if speed.get("mlflow_runs"):
            body += ["MLflow runs of the speed benchmark: " + ", ".join(
                f"{k} `{v}`" for k, v in speed["mlflow_runs"].items()) + ".", ""]
    if studies:
        body += ["", "## Controlled experiments", ""]
        for summary, lines in studies:
            body += lines
            entries += [Entry(c, c.title, f"Study `{summary['study']}`")
                        for c in study_claims(summary)]
    head_md = "\n".join([f"# {title}", *(f"## {h}" for h in SUMMARY_HEADINGS)])
    found = headings(head_md + "\n" + "\n".join(body))[1 + len(SUMMARY_HEADINGS):]
    head = [f"# {title}", "", f"{len(results)} training runs read from the result files. "
            "Compare runs side by side with `rnnbench ui` or `rnnbench compare`.", ""]
    if missing:
        head += ["**Missing runs** (in the grid, no result file): "
                 + ", ".join(f"{m}/{t}/seed{s}" for m, t, s in missing), ""]
    head += summary_section(grouped, entries, found, len(missing), checks)
    head += environment_section(results, speed, context or {})
    return "\n".join(head + body) + "\n"


REPORT_FILES = ("benchmark.md", "benchmark.html")


def check_report_out(out_dir: Path) -> None:
    """Before any work: the report's own files in out_dir may only replace earlier reports."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        from rnnbench.io import OutputError

        raise OutputError(f"{out_dir}: exists and is not a folder; choose another output path")
    check_output_dir(out_dir / "figures", "report-figures")
    check_output_dir(out_dir / "plots", "report-plots")
    for name in REPORT_FILES:
        check_output_file(out_dir / name)


def build_report(results_dir: Path, out_dir: Path, title: str = "rnnbench report",
                 expected: list[tuple] | None = None, speed_json: Path | None = None,
                 studies_dir: Path | None = None, context: dict | None = None,
                 reliability_json: Path | None = None) -> Path:
    """Write out_dir/benchmark.md, benchmark.html, figures/ and plots/ (the figures' data for
    DVC); return the markdown's path. context:
    what the Environment section states beyond the result files (profile, seeds, data_seed);
    the date and the git state are read now. reliability_json: the reliability tests' figures,
    cited when present."""
    results = load_results(results_dir)
    have = {(r["model"], r["task"], r["seed"]) for r in results}
    missing = [e for e in (expected or []) if e not in have]
    speed = read_result(speed_json, SpeedResult) if speed_json else None
    grouped = group(results)
    summaries = [read_result(p, StudySummary)
                 for p in result_files(studies_dir, "*/summary.json")] if studies_dir else []
    context = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "git": git_state(project_root()), **(context or {})}
    check_report_out(out_dir)
    use_fonts()
    assign_colors([*(m for by in grouped.values() for m in by),
                   *(r["model"] for s in summaries for r in s["runs"])])
    with atomic_dir(out_dir / "figures", kind="report-figures") as tmp:
        figures = {task: f"figures/{name}" for task, name in
                   learning_curves(grouped, tmp).items()}
        probe_figures = {}
        for task, by_model in probes_by_task(grouped).items():
            decay_figure(by_model, tmp / f"decay_{task}.png", f"{task}: gradient through time")
            probe_figures[task] = f"figures/decay_{task}.png"

        def relative(lines: list[str]) -> list[str]:  # figure paths relative to the report
            return [line.replace(f"]({tmp.name}/", "](figures/") for line in lines]

        task_extras = {task: relative(breakdown_tables(task, by_model, tmp)
                                      + showcase_lines(task, by_model, tmp))
                       for task, by_model in grouped.items()}
        if speed is not None:
            speed["_section"] = relative(speed_section(speed, tmp))
        more_claims = all_more_claims(grouped, summaries)
        more = (more_claims, relative(more_claims_section(grouped, summaries, tmp, more_claims)))
        studies = [(s, relative(study_section(s, tmp))) for s in summaries]
        text = f"<!-- {FILE_MARKER} report: edits here are lost -->\n" + render(
            results, title, missing, figures, speed, probe_figures, task_extras, more, studies,
            context, checks_line(method_checks(probes_by_task(grouped), speed,
                                               reliability_json))) \
            + "\n".join(reliability_lines(reliability_json)) + "\n"
        # before the figures move into place: a page that cannot be written leaves no figures
        html = to_html(text, tmp, title)
        with atomic_dir(out_dir / "plots", kind="report-plots") as plots:
            write_plot_data(grouped, probes_by_task(grouped), speed, summaries, plots)
    path = out_dir / "benchmark.md"
    write_text_atomic(path, text)
    write_text_atomic(out_dir / "benchmark.html", html)
    return path
