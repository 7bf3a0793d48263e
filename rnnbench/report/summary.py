"""The report's head: the Summary (headline findings, a line each with its number, and the claims
table: claim, verdict, the number behind it, a link to its section) and the Environment the
results were produced in. Headings carry GitHub-style anchors (`slug`); the HTML page
(rnnbench/report/html.py) gives them the same ids, so one link works in both."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from importlib import metadata

from rnnbench.report.verdict import Claim, Verdict

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6}) +(.+?) *#* *$")


def slug(text: str) -> str:
    """GitHub's anchor for a heading: its text without markup, lower case, punctuation dropped,
    spaces as hyphens."""
    text = text.replace("`", "").replace("*", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def headings(text: str) -> list[tuple[str, str]]:
    """(heading text, unique anchor) of every heading outside code blocks, in document order;
    a repeated anchor gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.append((m.group(2), base if n == 0 else f"{base}-{n}"))
    return out


@dataclass
class Entry:
    """A claim for the summary table: the heading it is rendered under, and the section that
    heading is inside (a heading starting with `within`; None: anywhere)."""
    claim: Claim
    heading: str
    within: str | None = None


def resolve(entry: Entry, found: list[tuple[str, str]]) -> str | None:
    """The anchor of the entry's heading: the first after its section's heading."""
    inside = entry.within is None
    for text, anchor in found:
        if not inside and text.startswith(entry.within):
            inside = True
        elif inside and text == entry.heading:
            return anchor
    return None


def run_ids(runs: list[dict]) -> str:
    """The MLflow run ids of `runs` (their first 8 characters: `rnnbench compare --run ID`
    takes them), as a table cell."""
    return " ".join(f"`{r['mlflow_run_id'][:8]}`" if r.get("mlflow_run_id") else "—"
                    for r in runs)


def runs_text(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "—"


def claims_table(entries: list[Entry], found: list[tuple[str, str]]) -> list[str]:
    lines = ["| claim (link: its section) | verdict | number | section |", "|---|---|---|---|"]
    for e in entries:
        anchor = resolve(e, found)
        title = _cell(e.claim.title)
        lines.append(f"| {f'[{title}](#{anchor})' if anchor else title} | {e.claim.verdict} "
                     f"| {_cell(e.claim.number)} | {_cell(e.within or '')} |")
    return lines


def tally_line(claims: list[Claim]) -> str:
    counts = {v: sum(c.verdict == v for c in claims) for v in Verdict}
    return (f"Claims tested: **{len(claims)}**; " + ", ".join(
        f"{v}: {n}" for v, n in counts.items() if n) + " (table below).")


def task_headlines(grouped: dict[str, dict[str, list[dict]]]) -> list[str]:
    """Per task: the best model's mean test metric against the trivial baseline, and how many
    runs solved it."""
    lines = []
    for task, by_model in grouped.items():
        first = next(iter(by_model.values()))[0]
        metric, higher = first["metric"], first["higher_is_better"]
        means = {m: statistics.mean(v) for m, rs in by_model.items()
                 if (v := [r["test"][metric] for r in rs if r["status"] == "ok"])}
        runs = [r for rs in by_model.values() for r in rs]
        solved = sum(bool(r["solved"]) for r in runs)
        base = first["baseline"].get(metric)
        base_text = f"trivial baseline {base:.4g}" if base is not None else "no baseline"
        if not means:
            lines.append(f"`{task}`: every run diverged ({runs_text(len(runs))})")
            continue
        best = (max if higher else min)(means, key=means.get)
        lines.append(f"`{task}`: best test {metric} **{means[best]:.4g}** ({best}; "
                     f"{base_text}, {'higher' if higher else 'lower'} is better); solved "
                     f"{solved}/{len(runs)} runs")
    return lines


def summary_section(grouped: dict, entries: list[Entry], found: list[tuple[str, str]],
                    missing: int = 0, checks: str | None = None) -> list[str]:
    """checks: the method checks' line (rnnbench/report/checks.py), first when one failed."""
    lines = ["## Summary", "", f"- {tally_line([e.claim for e in entries])}",
             *(f"- {h}" for h in task_headlines(grouped))]
    if checks:
        lines.insert(2 if checks.startswith("**") else len(lines), f"- {checks}")
    if missing:
        lines.append(f"- **{runs_text(missing)} of the grid without a result file** (listed "
                     "above)")
    return [*lines, "", *claims_table(entries, found), ""]


SUMMARY_HEADINGS = ("Summary", "Environment")  # the head's own headings, before the body's


def _versions(speed_env: dict | None) -> str:
    """The libraries the runs used: the speed run's record where there is one, else what is
    installed now; MLflow and DVC as installed now."""
    have = {k: speed_env[k] for k in ("python", "torch", "numba", "numpy")
            if speed_env and speed_env.get(k)}
    for name in ("torch", "numba", "numpy", "mlflow", "dvc", "matplotlib"):
        if name not in have:
            try:
                have[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
    return ", ".join(f"{k} {v}" for k, v in have.items())


def _block_seeds(seeds: dict[str, list[int]]) -> str:
    """'0 (main, suite); 0, 1, 2 (headline)': each set of seeds with the blocks that train it."""
    blocks: dict[tuple[int, ...], list[str]] = {}
    for name, s in seeds.items():
        blocks.setdefault(tuple(s), []).append(name)
    return "; ".join(f"{', '.join(map(str, s))} ({', '.join(names)})"
                     for s, names in blocks.items()) or "?"


def environment_section(results: list[dict], speed: dict | None, context: dict) -> list[str]:
    """context: profile, seeds ({block: its training seeds}), data_seed, date (ISO, UTC),
    git {"commit", "clean"}."""
    env = (speed or {}).get("environment") or {}
    git = context.get("git") or {}
    clean = {True: "clean (the pipeline's own outputs aside)",
             False: "**modified** (uncommitted changes beyond the pipeline's outputs)",
             None: "unknown"}[git.get("clean")]
    devices = sorted({str(r.get("device", "?")) for r in results})
    dtypes = sorted({str(r.get("dtype", "?")) for r in results})
    threads = sorted({str((r.get("threads") or {}).get("torch_threads", "?")) for r in results})
    hardware = ", ".join(str(x) for x in (
        env.get("cpu_model"), env.get("cpu_count") and f"{env['cpu_count']} CPUs",
        env.get("cpu_affinity") and f"{env['cpu_affinity']} usable",
        env.get("gpu_name"), env.get("platform")) if x) or "not recorded (no speed run)"
    made = {}
    for r in results:
        made[r.get("git_commit", "unknown")] = made.get(r.get("git_commit", "unknown"), 0) + 1
    rows = [("date (UTC)", context.get("date", "?")),
            ("git commit", f"`{git.get('commit', 'unknown')}`, working tree {clean}"),
            ("commits the runs were trained at", ", ".join(
                f"`{c[:12]}` ({runs_text(n)})" for c, n in sorted(made.items())) or "—"),
            ("profile (MLflow experiment)", f"`{context.get('profile', '?')}`"),
            ("seeds", f"training {_block_seeds(context.get('seeds') or {})}; "
                      f"data {context.get('data_seed', '?')}"),
            ("hardware", hardware),
            ("devices of the runs", f"{', '.join(devices) or '?'}; dtype {', '.join(dtypes)}; "
                                    f"torch threads {', '.join(threads)}"),
            ("libraries", _versions(env))]
    return ["## Environment", "", "| what | value |", "|---|---|",
            *(f"| {k} | {_cell(v)} |" for k, v in rows), ""]
