"""`rnnbench train`: train one (model, task, seed), tracked in MLflow (the DVC train stages
run a grid block each: rnnbench/training/grid_command.py)."""

from __future__ import annotations

from pathlib import Path

from rnnbench.commands import add_out, add_params, add_stage, check_out, pin_env_threads

NAME, HELP = "train", "train one model on one task, tracked in MLflow"


def arguments(p) -> None:
    from rnnbench.config import Seed

    add_params(p)
    p.add_argument("--task", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--seed", type=int, default=0, help=f"run seed, 0 <= seed < 2**32 "
                                                       f"({Seed.__metadata__[0]})")
    p.add_argument("--data", help="data folder from the data stage (default: generate)")
    add_out(p, None, "output folder (default results/adhoc/MODEL/TASK/seedN)")
    add_stage(p)


def run(args) -> int:
    from rnnbench.config import ConfigError
    from rnnbench.io import check_output_dir
    from rnnbench.params import load_params, params_source

    params = load_params(args.params, args.set)
    params.task(args.task), params.model(args.model)  # fail before any work
    if not 0 <= args.seed < 2**32:
        raise ConfigError(f"--seed {args.seed}: out of range (0 <= seed < 2**32)")
    out = Path(args.out or f"results/adhoc/{args.model}/{args.task}/seed{args.seed}")
    check_out(args, out)
    check_output_dir(out, "train")
    from rnnbench.store import check_reachable

    check_reachable()
    pin_env_threads(params.train.threads)  # before torch loads: training.run imports it
    from rnnbench.training.run import check_run, run_training

    check_run(params, args.task, args.model, params_source(args.params, args.set))  # no work yet
    m = run_training(params, args.task, args.model, args.seed, out,
                     data_dir=Path(args.data) if args.data else None, stage=args.stage)
    test = m["test"].get(m["metric"], float("nan"))
    base = m["baseline"].get(m["metric"], float("nan"))
    print(f"{args.model} on {args.task} (seed {args.seed}): status={m['status']} "
          f"test {m['metric']}={test:.4g} baseline={base:.4g} solved={m['solved']} "
          f"steps={m['steps']} time={m['train_time_s']:.1f}s -> {out}")
    return 0
