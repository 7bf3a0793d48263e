"""`rnnbench study` (the DVC study stages): run one study of params' studies section."""

from __future__ import annotations

from pathlib import Path

from rnnbench.commands import add_out, add_params, add_stage, check_out, pin_env_threads

NAME, HELP = "study", "run one study of params' studies section"


def arguments(p) -> None:
    add_params(p)
    p.add_argument("--name", required=True)
    add_out(p, None, "output folder (default results/study/NAME)")
    add_stage(p)


def run(args) -> int:
    from rnnbench.config import ConfigError
    from rnnbench.io import check_output_dir
    from rnnbench.params import load_params

    if args.set:
        raise ConfigError("study: --set is not taken: a study's variants are overrides "
                          "themselves; edit the studies section of params.yaml")
    params = load_params(args.params)
    from rnnbench.study.run import run_study, validate_study

    validate_study(args.params, args.name)  # every variant, before the first run
    out = Path(args.out or f"results/study/{args.name}")
    check_out(args, out)
    check_output_dir(out, "study")
    from rnnbench.store import check_reachable

    check_reachable()
    pin_env_threads(params.train.threads)
    summary = run_study(args.params, args.name, out, stage=args.stage)
    print(f"study {args.name}: {len(summary['runs'])} runs -> {out / 'summary.json'}")
    return 0
