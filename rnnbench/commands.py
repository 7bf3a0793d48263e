"""What every command line shares: the common options, the one-line error, the output checks,
and how a DVC stage script runs its command (warm when `make run` serves it).

Each stage's command lives with its concern (tasks/command.py: data, training/command.py:
train, speed/command.py, study/command.py, report/command.py) as NAME, HELP, arguments(parser)
and run(args); heavy imports happen inside run(), so building the command line stays cheap and
a stage script's import closure is its own command's. rnnbench/cli.py gathers them all.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from rnnbench.config import UserError


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_params(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml", help="params file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param, e.g. train.lr=0.01 (repeatable)")


def add_out(p: argparse.ArgumentParser, default: str | None, what: str) -> None:
    p.add_argument("--out", default=default, help=f"{what} (default {default})" if default
                   else what)
    p.add_argument("--out-outside", action="store_true",
                   help="allow --out outside the project folder")


def add_stage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stage", default=os.environ.get("DVC_STAGE", "cli"),
                   help="stage name recorded with the runs (default: $DVC_STAGE, set by DVC)")


def check_out(args: argparse.Namespace, path: Path) -> None:
    """--out must lie inside the project unless --out-outside says otherwise."""
    if not args.out_outside:
        from rnnbench.io import check_inside, project_root

        check_inside(path, project_root())


def pin_env_threads(threads: int) -> None:
    """OpenMP and OpenBLAS pools read their size once, when first loaded: set it before."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


def guarded(fn, args: argparse.Namespace) -> int:
    """Run a command; a user error becomes one line on stderr and exit status 2, a system error
    (disk full, permission denied) one line and status 1; Ctrl-C or SIGTERM one line and status
    130 / 143."""
    import signal

    def terminate(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        return fn(args) or 0
    except (UserError, FileNotFoundError) as exc:
        print(f"rnnbench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only folder: what failed and where
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"rnnbench: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        name = str(exc) or "SIGINT"
        print(f"rnnbench: stopped by {name}; results of finished runs are kept", file=sys.stderr)
        return 143 if name == "SIGTERM" else 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def stage_main(command: ModuleType, argv: list[str]) -> int:
    """A DVC stage script's main: hand the command to the warm server when one serves
    (rnnbench.warm.client), else parse and run it here."""
    from rnnbench.warm.client import ENV, delegate

    if os.environ.get(ENV):
        status = delegate(os.environ[ENV], [command.NAME, *argv])
        if status is not None:
            return status
    p = Parser(prog=f"rnnbench {command.NAME}", description=command.HELP)
    command.arguments(p)
    return guarded(command.run, p.parse_args(argv))
