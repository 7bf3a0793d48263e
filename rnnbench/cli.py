"""The `rnnbench` command: list, data, train, speed, study, report, ui, warm, compile."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path


def guarded(fn: Callable[[], int | None]) -> int:
    """Run a command; a user error becomes one line on stderr and exit status 2."""
    from rnnbench.config import ConfigError  # imported late: pydantic costs a stage 0.4 s,
    from rnnbench.experiment import DataMismatch  # and a delegated stage needs neither

    try:
        return fn() or 0
    except (ConfigError, DataMismatch, FileNotFoundError) as exc:
        print(f"rnnbench: error: {exc}", file=sys.stderr)
        return 2


def cmd_list(args) -> int:
    from rnnbench.config import load_params
    from rnnbench.models import param_count, serves
    from rnnbench.tasks import TASKS

    params = load_params(args.params, args.set)
    configured = params.configured_tasks()
    print("tasks:")
    for name in configured:
        task, cfg = TASKS[name], params.task(name)
        s = task.spec(cfg)
        print(f"  {name:<10} {s.shape:<13} in={s.input_size:<3} out={s.output_size:<3} "
              f"loss={s.loss:<4} metric={s.metric} solved {'>=' if s.higher_is_better else '<='} "
              f"{s.solved_threshold:g}  [{s.definition}]")
    print("\nmodels (trainable parameters per task; - where the model cannot serve the task;"
          " H = budget: the width is chosen per task to come closest to the parameter budget):")
    width = max(len(n) for n in params.models) + 1
    print(f"  {'model':<{width}} {'family':<10} {'H':>8} {'L':>2} {'bi':>3} "
          + " ".join(f"{n:>9}" for n in configured))
    for name, m in params.models.items():
        counts = []
        for t in configured:
            spec = TASKS[t].spec(params.task(t))
            counts.append(f"{param_count(m, spec):>9}" if serves(m, spec) else f"{'-':>9}")
        h = f"~{m.param_budget}" if m.param_budget else str(m.hidden_size)
        print(f"  {name:<{width}} {m.family:<10} {h:>8} {m.num_layers:>2} "
              f"{'yes' if m.bidirectional else 'no':>3} " + " ".join(counts))
    return 0


def cmd_data(args) -> int:
    from rnnbench.config import load_params
    from rnnbench.experiment import write_data

    params = load_params(args.params, args.set)
    params.task(args.task)
    meta = write_data(params, args.task, Path(args.out))
    print(f"{args.task}: {meta['sizes']} sha256={meta['sha256'][:12]} -> {args.out}")
    return 0


def cmd_train(args) -> int:
    from rnnbench.config import load_params

    params = load_params(args.params, args.set)
    params.task(args.task), params.model(args.model)  # fail before any work
    # OpenMP and OpenBLAS pools read their size once, when first loaded (fit caps them again).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(params.train.threads))
    from rnnbench.experiment import run_training

    out = Path(args.out or f"results/adhoc/{args.model}/{args.task}/seed{args.seed}")
    m = run_training(params, args.task, args.model, args.seed, out,
                     data_dir=Path(args.data) if args.data else None, stage=args.stage)
    test = m["test"].get(m["metric"], float("nan"))
    base = m["baseline"].get(m["metric"], float("nan"))
    print(f"{args.model} on {args.task} (seed {args.seed}): status={m['status']} "
          f"test {m['metric']}={test:.4g} baseline={base:.4g} solved={m['solved']} "
          f"steps={m['steps']} time={m['train_time_s']:.1f}s -> {out}")
    return 0


def cmd_speed(args) -> int:
    from rnnbench.config import ConfigError, load_params

    params = load_params(args.params, args.set)
    if params.speed is None:
        raise ConfigError(f"{args.params}: speed: section is null; nothing to measure")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(params.speed.threads))
    from rnnbench.speed import run_speed

    data = run_speed(params.speed, Path(args.out), params.experiment, stage=args.stage)
    print(f"speed: {len(data['configs'])} configurations, {len(data['numba_vs_torch'])} Numba "
          f"grid points in {data['wall_s']:.0f} s -> {Path(args.out) / 'speed.json'}")
    return 0


def cmd_study(args) -> int:
    from rnnbench.config import ConfigError, load_params

    if args.set:
        raise ConfigError("study: --set is not taken: a study's variants are overrides "
                          "themselves; edit the studies section of params.yaml")
    params = load_params(args.params)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(params.train.threads))
    from rnnbench.study import run_study, validate_study

    validate_study(args.params, args.name)  # every variant, before the first run
    out = Path(args.out or f"results/study/{args.name}")
    summary = run_study(args.params, args.name, out, stage=args.stage)
    print(f"study {args.name}: {len(summary['runs'])} runs -> {out / 'summary.json'}")
    return 0


def cmd_report(args) -> int:
    from rnnbench.config import load_params
    from rnnbench.report import build_report

    params = load_params(args.params, args.set)
    path = build_report(Path(args.results), Path(args.out), title=params.report.title,
                        expected=params.grid.runs(),
                        speed_json=Path(args.speed) if args.speed else None,
                        studies_dir=Path(args.studies) if args.studies else None)
    print(f"report: {path}")
    return 0


def cmd_compile(args) -> int:
    from rnnbench.models.numba_rnn import compile_kernels

    for dtype in args.dtype or ["float32"]:
        print(f"numba kernels ({dtype}): ready in {compile_kernels(dtype):.1f} s "
              f"(cache: {os.environ.get('NUMBA_CACHE_DIR', 'next to the sources')})")
    return 0


def cmd_ui(args) -> int:
    from rnnbench.tracking import run_ui

    return run_ui(args.port)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(fn=fn)
        if name != "ui":
            sp.add_argument("--params", default="params.yaml", help="params file")
            sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override a param, e.g. train.lr=0.01 (repeatable)")
        return sp

    add("list", cmd_list, "print every task and model with its parameter count")
    sp = add("data", cmd_data, "generate one task's splits")
    sp.add_argument("--task", required=True)
    sp.add_argument("--out", required=True)
    sp = add("train", cmd_train, "train one model on one task, tracked in MLflow")
    sp.add_argument("--task", required=True)
    sp.add_argument("--model", required=True)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--data", help="data folder from the data stage (default: generate)")
    sp.add_argument("--out", help="output folder (default results/adhoc/MODEL/TASK/seedN)")
    sp.add_argument("--stage", default=os.environ.get("DVC_STAGE", "cli"),
                    help="stage name recorded with the run (default: $DVC_STAGE, set by DVC)")
    sp = add("speed", cmd_speed, "time every model side by side (params' speed section)")
    sp.add_argument("--out", default="results/speed")
    sp.add_argument("--stage", default=os.environ.get("DVC_STAGE", "cli"))
    sp = add("study", cmd_study, "run one study of params' studies section")
    sp.add_argument("--name", required=True)
    sp.add_argument("--out", help="output folder (default results/study/NAME)")
    sp.add_argument("--stage", default=os.environ.get("DVC_STAGE", "cli"))
    sp = add("report", cmd_report, "render the report from result files")
    sp.add_argument("--results", default="results/train")
    sp.add_argument("--speed", help="speed.json to include (default: none)")
    sp.add_argument("--studies", help="folder of study outputs (NAME/summary.json)")
    sp.add_argument("--out", default="reports")
    sp = sub.add_parser("compile", help="compile the Numba kernels into NUMBA_CACHE_DIR, so "
                                        "that later processes load them (make run does this "
                                        "in the background while the first stages run)")
    sp.add_argument("--dtype", action="append", choices=["float32", "float64"],
                    help="kernel dtype (repeatable; default float32)")
    sp.set_defaults(fn=cmd_compile)
    sp = add("ui", cmd_ui, "serve the MLflow UI for this project on 127.0.0.1")
    sp.add_argument("--port", type=int, default=5000)
    sp = sub.add_parser("warm", help="serve stage commands from one process that has imported "
                                     "torch and MLflow (make run starts it; see rnnbench/warm.py)")
    sp.add_argument("--socket", required=True, help="Unix socket path to listen on")
    sp.add_argument("--compile", action="store_true",
                    help="compile the Numba kernels meanwhile, in a child process")
    sp.set_defaults(fn=lambda args: serve_warm(args.socket, args.compile))
    return p


def serve_warm(path: str, compile_first: bool) -> int:
    from rnnbench.warm import serve

    serve(path, compile_first)
    return 0


def main(argv: list[str] | None = None) -> int:
    from rnnbench.warm import COMMANDS, ENV, delegate

    argv = sys.argv[1:] if argv is None else list(argv)
    if os.environ.get(ENV) and argv and argv[0] in COMMANDS:
        status = delegate(os.environ[ENV], argv)
        if status is not None:
            return status
    args = parser().parse_args(argv)
    return guarded(lambda: args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
