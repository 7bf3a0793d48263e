"""`rnnbench data` (the DVC data stage): generate one task's splits into a folder."""

from __future__ import annotations

from pathlib import Path

from rnnbench.commands import add_out, add_params, check_out

NAME, HELP = "data", "generate one task's splits"


def arguments(p) -> None:
    add_params(p)
    p.add_argument("--task", required=True)
    add_out(p, None, "output folder (data/TASK in the pipeline)")


def run(args) -> int:
    from rnnbench.io import check_output_dir
    from rnnbench.params import load_params
    from rnnbench.tasks.data import write_data

    if not args.out:
        args.out = f"data/{args.task}"
    params = load_params(args.params, args.set)
    params.task(args.task)
    out = Path(args.out)
    check_out(args, out)
    check_output_dir(out, "data")
    meta = write_data(params, args.task, out)
    print(f"{args.task}: {meta['sizes']} sha256={meta['sha256'][:12]} -> {out}")
    return 0
