"""The client side of the warm start (rnnbench.warm.server): a stage script hands its command
to the server when RNNBENCH_WARM names one, and runs it itself otherwise. Imports nothing
heavy, so a stage's own import closure stays its command's.

Protocol, over a Unix socket: the client sends one message, a 4-byte length and a JSON body
{argv, cwd, env}, with its stdout and stderr attached as file descriptors; the server answers
with the child's pid (0 when it refused the command), then, when the child ends, its exit
status, each a 4-byte signed integer. SIGINT and SIGTERM the client receives meanwhile are
passed on to the child, so Ctrl-C stops a delegated stage as it would stop a local one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

ENV = "RNNBENCH_WARM"
MAX_MESSAGE = 1 << 20
# What a child takes from its client's environment; everything else (PATH, PYTHONPATH,
# LD_PRELOAD, ...) is the server's own, so a client cannot make the server run other programs.
ENV_PREFIXES = ("DVC_", "MLFLOW_", "RNNBENCH_", "NUMBA_")
ENV_NAMES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED",
             "CUDA_VISIBLE_DEVICES", "TZ", "LANG", "LC_ALL", "COLUMNS")


def allowed_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items()
            if (k.startswith(ENV_PREFIXES) or k in ENV_NAMES) and k != ENV}


def recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("warm server closed the connection")
        buf += chunk
    return buf


def delegate(path: str, argv: list[str]) -> int | None:
    """Run `rnnbench argv` in the warm server; its exit status, or None if no server answers
    (the caller then runs the command itself)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None
    with conn:
        sys.stdout.flush()
        sys.stderr.flush()
        job = json.dumps({"argv": argv, "cwd": os.getcwd(),
                          "env": allowed_env(dict(os.environ))}).encode()
        socket.send_fds(conn, [struct.pack("!I", len(job)) + job], [1, 2])
        (pid,) = struct.unpack("!i", recv_exact(conn, 4))
        forward = {}
        if pid > 0:
            def pass_on(signum, _frame):
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
            forward = {s: signal.signal(s, pass_on) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            status = struct.unpack("!i", recv_exact(conn, 4))[0]
        finally:
            for s, previous in forward.items():
                signal.signal(s, previous)
        return status if status >= 0 else 128 - status  # killed by signal N: 128 + N
