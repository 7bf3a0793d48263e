"""`rnnbench speed` (the DVC speed stage): time every model side by side."""

from __future__ import annotations

from pathlib import Path

from rnnbench.commands import add_out, add_params, add_stage, check_out, pin_env_threads

NAME, HELP = "speed", "time every model's training step side by side (params' speed section)"


def arguments(p) -> None:
    add_params(p)
    add_out(p, "results/speed", "output folder")
    add_stage(p)


def run(args) -> int:
    from rnnbench.config import ConfigError
    from rnnbench.io import check_output_dir
    from rnnbench.params import load_params

    params = load_params(args.params, args.set)
    if params.speed is None:
        raise ConfigError(f"{args.params}: speed: section is null; nothing to measure")
    out = Path(args.out)
    check_out(args, out)
    check_output_dir(out, "speed")
    from rnnbench.store import check_reachable

    check_reachable()
    pin_env_threads(params.speed.threads)
    from rnnbench.speed.run import run_speed

    data = run_speed(params.speed, out, params.experiment, stage=args.stage)
    failed = [t for t in data["timer_check"] if not t["ok"]]
    print(f"speed: {len(data['configs'])} configurations, {len(data['numba_vs_torch'])} Numba "
          f"grid points in {data['wall_s']:.0f} s -> {out / 'speed.json'}"
          + (f"; timer method check FAILED for {len(failed)} case(s)" if failed else ""))
    return 0
