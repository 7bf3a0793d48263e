"""The warm server: a warm start for pipeline stages. One server process imports torch and
MLflow once, and forks a fresh child per stage command, so a stage starts in milliseconds
instead of seconds.

A quick-profile run has some thirty stages, and each new Python process spends about 7 s
importing torch (and the torch._dynamo import its first optimiser triggers) and MLflow's SQL
store before doing a second of work. `make run` starts `rnnbench warm --socket PATH` and sets
RNNBENCH_WARM=PATH for `dvc repro`; a stage script (rnnbench.commands.stage_main) then hands
its command to the server,
which forks a child that runs exactly what the stage would have run (rnnbench.cli.main, handed
to `serve` by the `rnnbench warm` command), in the stage's working
directory and environment, writing to the stage's own stdout and stderr (passed over the socket),
and reports its exit status back. Each command still runs in its own process, started from the
same imported state, so runs are as independent and as reproducible as before. Without the
variable, or when the server cannot be reached, commands run in their own process as usual.

The server imports nothing that starts threads (no Numba, no SciPy): forking a process with
live thread pools is unsafe, and the children load those libraries themselves.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

from rnnbench.warm.client import ENV, MAX_MESSAGE, recv_exact


def _preload() -> None:
    """Import what every stage imports, without starting any thread pool."""
    import torch
    from mlflow.store.tracking import sqlalchemy_store  # noqa: F401  (MLflow's SQL store)
    from mlflow.tracking import MlflowClient  # noqa: F401

    import rnnbench.tracking  # noqa: F401
    import rnnbench.training.run  # noqa: F401  (torch, numpy, the registries)

    # The first optimiser imports torch._dynamo (over a second): pay for it here.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _run_child(conn: socket.socket, job: dict, fds: list[int], run) -> None:
    """In the forked child: become the stage's process, run its command, exit with its status."""
    status = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        conn.close()
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in fds:
            os.close(fd)
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        os.environ.pop(ENV, None)  # the child runs the command itself
        sys.argv = ["rnnbench", *job["argv"]]
        status = run(job["argv"])
    except SystemExit as exc:  # argparse errors
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # report it as the process would have, then fail
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


class _Compiler:
    """`rnnbench compile` in a child process (a fresh interpreter: Numba is never imported
    here), started at once on the second core while the first stages run. It is not waited
    for: stages that find a kernel not yet cached compile it themselves, outside their timed
    steps. Running beside it changed no timed training step beyond run-to-run noise (300 steps
    of lstm on adding: 6.1 s alone, 6.0 s beside the compiler, 5.2 s alone again)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "rnnbench.cli", "compile"])

    def check(self) -> None:
        """Once it has ended: say so if it failed (the stages then compile for themselves)."""
        if self.proc is None or self.proc.poll() is None:
            return
        status, self.proc = self.proc.returncode, None
        if status != 0:
            print(f"rnnbench warm: `rnnbench compile` failed (status {status}); the Numba "
                  "stages compile their kernels themselves", file=sys.stderr, flush=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def serve(path: str, compile_first: bool, run) -> None:
    """Accept one command at a time until killed; each runs `run(argv)` in a forked child. With
    `compile_first`, the Numba kernels compile meanwhile (see _Compiler)."""
    os.environ.pop(ENV, None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # clean up the socket when stopped
    compiler = _Compiler() if compile_first else None
    _preload()
    sock_path = Path(path)
    sock_path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(4)
    print(f"rnnbench warm: ready on {sock_path}", file=sys.stderr, flush=True)
    try:
        while True:
            conn, _ = server.accept()
            with conn:
                try:
                    msg, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 2)
                    (size,) = struct.unpack("!I", msg[:4])
                    body = msg[4:]
                    if len(body) < size:
                        body += recv_exact(conn, size - len(body))
                    job = json.loads(body)
                except (OSError, ValueError, struct.error) as exc:
                    print(f"rnnbench warm: bad request ({exc})", file=sys.stderr, flush=True)
                    continue
                if compiler is not None:
                    compiler.check()
                pid = os.fork()
                if pid == 0:
                    _run_child(conn, job, fds, run)
                for fd in fds:
                    os.close(fd)
                _, wait_status = os.waitpid(pid, 0)
                conn.sendall(struct.pack("!i", os.waitstatus_to_exitcode(wait_status)))
    finally:
        server.close()
        sock_path.unlink(missing_ok=True)
        if compiler is not None:
            compiler.stop()


__all__ = ["serve"]
