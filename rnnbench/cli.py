"""The `rnnbench` command: the stages' commands (data, train, grid, speed, study, report) and list,
compile, ui, compare, sweep, server, warm."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rnnbench import compare_runs as compare_cmd
from rnnbench.commands import Parser, add_params, guarded
from rnnbench.report import command as report_cmd
from rnnbench.speed import command as speed_cmd
from rnnbench.study import command as study_cmd
from rnnbench.sweep import command as sweep_cmd
from rnnbench.tasks import command as data_cmd
from rnnbench.training import command as train_cmd
from rnnbench.training import grid_command as grid_cmd

STAGE_COMMANDS = {m.NAME: m for m in (data_cmd, train_cmd, grid_cmd, speed_cmd, study_cmd,
                                      report_cmd)}


def cmd_list(args) -> int:
    from rnnbench.models.families import param_count, serves
    from rnnbench.params import load_params
    from rnnbench.tasks.registry import TASKS

    params = load_params(args.params, args.set)
    configured = params.configured_tasks()
    print("tasks:")
    for name in configured:
        s = TASKS[name].spec(params.task(name))
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


def cmd_compile(args) -> int:
    from rnnbench.models.numba_rnn import compile_kernels

    for dtype in args.dtype or ["float32"]:
        print(f"numba kernels ({dtype}): ready in {compile_kernels(dtype):.1f} s "
              f"(cache: {os.environ.get('NUMBA_CACHE_DIR', 'next to the sources')})")
    return 0


def cmd_ui(args) -> int:
    from rnnbench.tracking import run_ui

    return run_ui(args.port)


def cmd_server(args) -> int:
    from rnnbench.io import project_root
    from rnnbench.tracking import server_command

    root = project_root()
    backend = args.backend or f"sqlite:///{root / 'mlflow-server.db'}"
    cmd = server_command(backend, Path(args.artifacts or root / "mlartifacts"), args.host,
                         args.port, args.workers)
    print(f"rnnbench server: MLflow on http://{args.host}:{args.port} (store {backend}); "
          f"workers set MLFLOW_TRACKING_URI=http://{args.host}:{args.port}", file=sys.stderr,
          flush=True)
    # MLflow's job runners serve its GenAI features, which no run here uses: ten processes
    # of ~250 MB each that would otherwise start beside every server.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    os.execvpe(cmd[0], cmd, env)  # the server is this process: signals reach it directly


def cmd_warm(args) -> int:
    from rnnbench.warm.server import serve

    serve(args.socket, args.compile, run=main, commands=frozenset(STAGE_COMMANDS))
    return 0


def parser() -> Parser:
    p = Parser(prog="rnnbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for m in STAGE_COMMANDS.values():
        sp = sub.add_parser(m.NAME, help=m.HELP, description=m.HELP)
        m.arguments(sp)
        sp.set_defaults(fn=m.run)
    sp = sub.add_parser("list", help="print every task and model with its parameter count")
    add_params(sp)
    sp.set_defaults(fn=cmd_list)
    sp = sub.add_parser("compile", help="compile the Numba kernels into NUMBA_CACHE_DIR, so "
                                        "that later processes load them (make run does this "
                                        "in the background while the first stages run)")
    sp.add_argument("--dtype", action="append", choices=["float32", "float64"],
                    help="kernel dtype (repeatable; default float32)")
    sp.set_defaults(fn=cmd_compile)
    sp = sub.add_parser("ui", help="serve the MLflow UI for this project on 127.0.0.1")
    sp.add_argument("--port", type=int, default=5000)
    sp.set_defaults(fn=cmd_ui)
    sp = sub.add_parser(compare_cmd.NAME, help=compare_cmd.HELP, description=compare_cmd.__doc__)
    compare_cmd.arguments(sp)
    sp.set_defaults(fn=compare_cmd.run)
    sp = sub.add_parser(sweep_cmd.NAME, help=sweep_cmd.HELP, description=sweep_cmd.HELP)
    sweep_cmd.arguments(sp)
    sp.set_defaults(fn=sweep_cmd.run)
    sp = sub.add_parser("server", help="serve one MLflow tracking server (SQLite or PostgreSQL "
                                       "store, artifacts over HTTP) for sweeps and teams")
    sp.add_argument("--backend", help="store URI: sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
                                      "(default: sqlite at the project root, mlflow-server.db)")
    sp.add_argument("--artifacts", help="artifact folder (default: mlartifacts/ at the root)")
    sp.add_argument("--host", default="127.0.0.1", help="bind address (default loopback; "
                                                        "0.0.0.0 to serve other machines)")
    sp.add_argument("--port", type=int, default=5001)
    sp.add_argument("--workers", type=int, default=1)
    sp.set_defaults(fn=cmd_server)
    sp = sub.add_parser("warm", help="serve stage commands from one process that has imported "
                                     "torch and MLflow (make run starts it; see "
                                     "rnnbench/warm/server.py)")
    sp.add_argument("--socket", required=True, help="Unix socket path to listen on")
    sp.add_argument("--compile", action="store_true",
                    help="compile the Numba kernels meanwhile, in a child process")
    sp.set_defaults(fn=cmd_warm)
    return p


def main(argv: list[str] | None = None) -> int:
    from rnnbench.warm.client import ENV, delegate

    argv = sys.argv[1:] if argv is None else list(argv)
    if os.environ.get(ENV) and argv and argv[0] in STAGE_COMMANDS:
        status = delegate(os.environ[ENV], argv)
        if status is not None:
            return status
    args = parser().parse_args(argv)
    return guarded(args.fn, args)


STOPPED = (130, 143)  # guarded's status after SIGINT, SIGTERM


def exit_as_a_script(status: int) -> None:
    """Exit with `status` under `python -m rnnbench.cli` too. There, CPython 3.11 ends the
    process by SIGINT after this module returns whenever a KeyboardInterrupt has passed
    through a library's exec() of source text, even one that guarded caught (Modules/main.c
    checks _Py_UnhandledKeyboardInterrupt, which that exec sets and nothing clears), so a
    stopped run would exit -2 instead of 130 or 143. A stopped run's tracking is closed by
    then: flush, and exit at once."""
    if status in STOPPED:
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    exit_as_a_script(main())
