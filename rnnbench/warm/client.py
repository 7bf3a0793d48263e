"""The client side of the warm start (rnnbench.warm.server): a stage script hands its command
to the server when RNNBENCH_WARM names one, and runs it itself otherwise. Imports nothing
heavy, so a stage's own import closure stays its command's."""

from __future__ import annotations

import json
import os
import socket
import struct
import sys

ENV = "RNNBENCH_WARM"
MAX_MESSAGE = 1 << 20


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
        job = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(conn, [struct.pack("!I", len(job)) + job], [1, 2])
        status = struct.unpack("!i", recv_exact(conn, 4))[0]
        return status if status >= 0 else 128 - status  # killed by signal N: 128 + N
