"""`rnnbench compare`: the tracked runs you select, side by side, as the report's tables show
them (run id, name, group, the test metrics, solved, parameters, training time), from
mlflow.search_runs. Select by task, model, study, sweep, DVC experiment, run group or run ids
(the 8-character ids of the report's tables will do), or any MLflow filter string."""

from __future__ import annotations

import math

from rnnbench.config import UserError

NAME, HELP = "compare", "print a table comparing tracked runs (mlflow.search_runs)"
FIXED = [("tags.mlflow.runName", "name"), ("tags.run_group", "group"), ("status", "status")]
TAIL = [("metrics.solved", "solved"), ("metrics.n_params", "params"),
        ("metrics.train_time_s", "train s")]


def arguments(p) -> None:
    p.add_argument("--params", default="params.yaml", help="params file (its experiment)")
    p.add_argument("--experiment", help="MLflow experiment (default: the params file's)")
    for flag, what in (("task", "task"), ("model", "model"), ("study", "study"),
                       ("sweep", "sweep")):
        p.add_argument(f"--{flag}", action="append", default=[], help=f"only this {what} "
                       "(repeatable)")
    p.add_argument("--exp", help="only the runs of this DVC experiment (`dvc exp show` names)")
    p.add_argument("--group", help="only this run group (the tag run_group)")
    p.add_argument("--run", action="append", default=[], help="a run id or its first "
                   "characters, as the report prints them (repeatable)")
    p.add_argument("--filter", default="", help="an MLflow filter string, ANDed with the rest")


def _quote(v: str) -> str:
    return "'" + v.replace("'", "\\'") + "'"


TAGS = ("task", "model", "study", "sweep")


def filter_string(args) -> str:
    """The MLflow filter of the selection; a tag given several values (MLflow's filters have
    no OR for tags) and the run ids (by prefix) are matched afterwards, by `select`."""
    parts = [args.filter] if args.filter else []
    for tag in TAGS:
        values = getattr(args, tag)
        if len(values) == 1:
            parts.append(f"tags.{tag} = {_quote(values[0])}")
    if args.group:
        parts.append(f"tags.run_group = {_quote(args.group)}")
    if args.exp:
        parts.append(f"tags.run_group LIKE {_quote('% exp ' + args.exp)}")
    return " AND ".join(parts)


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:,.0f}" if v.is_integer() and abs(v) >= 1000 else f"{v:.4g}"
    return str(v).replace("|", "\\|")


def table(df) -> list[str]:
    """A markdown table of the runs in `df` (mlflow.search_runs' frame), one row each."""
    tests = sorted(c for c in df.columns if c.startswith("metrics.test_")
                   and df[c].notna().any())
    cols = [("run_id", "run"), *FIXED, *((c, c.removeprefix("metrics.")) for c in tests),
            *TAIL]
    cols = [(c, h) for c, h in cols if c in df.columns]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [f"`{row['run_id'][:8]}`" if c == "run_id" else _cell(row[c]) for c, _ in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def select(df, args):
    """The rows of `df` with each multi-valued tag among its values and, with --run, whose id
    starts with one given; an id that matches no run is an error."""
    for tag in TAGS:
        values = getattr(args, tag)
        if len(values) > 1 and f"tags.{tag}" in df.columns:
            df = df[df[f"tags.{tag}"].isin(values)]
    if args.run:
        unknown = [r for r in args.run if not df["run_id"].str.startswith(r).any()]
        if unknown:
            raise UserError(f"compare: no run with id {unknown[0]!r} in {args.experiment!r} "
                            "matching the selection")
        df = df[df["run_id"].apply(lambda i: any(i.startswith(r) for r in args.run))]
    return df


def run(args) -> int:
    from rnnbench.tracking import search_runs

    if args.experiment is None:
        from rnnbench.params import load_params

        args.experiment = load_params(args.params).experiment
    experiment = args.experiment
    df = search_runs(experiment, filter_string(args))
    if df is None:
        raise UserError(f"compare: no MLflow experiment {experiment!r} in the store (run the "
                        "pipeline first, or pass --experiment)")
    df = select(df, args) if not df.empty else df
    if df.empty:
        raise UserError(f"compare: no run in {experiment!r} matches the selection")
    print("\n".join(table(df)))
    print(f"\n{len(df)} run(s) of experiment {experiment!r}")
    return 0
