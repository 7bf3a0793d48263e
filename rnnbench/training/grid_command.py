"""`rnnbench grid` (the DVC train stages): train one block of params' grid, tracked in MLflow."""

from __future__ import annotations

from pathlib import Path

from rnnbench.commands import add_out, add_params, add_stage, check_out, pin_env_threads

NAME, HELP = "grid", "train every run of one block of params' grid, tracked in MLflow"


def arguments(p) -> None:
    add_params(p)
    p.add_argument("--block", required=True, help="a name in grid.blocks")
    p.add_argument("--data", help="the data stage's folder, holding a folder per task "
                                  "(default: generate each task's data)")
    add_out(p, None, "output folder of the runs (default results/train/BLOCK)")
    p.add_argument("--metrics", help="output folder of the runs' metrics files "
                                     "(default results/metrics/BLOCK)")
    add_stage(p)


def run(args) -> int:
    from rnnbench.io import check_output_dir
    from rnnbench.params import load_params
    from rnnbench.training.block import METRICS_KIND, RUNS_KIND, block_runs

    params = load_params(args.params, args.set)
    runs = block_runs(params, args.block)  # fail before any work
    out = Path(args.out or f"results/train/{args.block}")
    metrics = Path(args.metrics or f"results/metrics/{args.block}")
    for path, kind in ((out, RUNS_KIND), (metrics, METRICS_KIND)):
        check_out(args, path)
        check_output_dir(path, kind)
    from rnnbench.store import check_reachable

    check_reachable()
    pin_env_threads(params.train.threads)
    from rnnbench.training.block import run_block

    run_block(args.params, args.set, args.block, out, metrics,
              Path(args.data) if args.data else None, stage=args.stage)
    print(f"grid block {args.block}: {len(runs)} runs, {min(params.grid.processes, len(runs))} "
          f"at a time -> {out} (metrics: {metrics})")
    return 0
