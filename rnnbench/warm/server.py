"""The warm server: a warm start for pipeline stages. One server process imports torch and
MLflow once, and forks a fresh child per stage command, so a stage starts in milliseconds
instead of seconds.

A quick-profile run has some fifty stages, and each new Python process spends about 7 s
importing torch (and the torch._dynamo import its first optimiser triggers) and MLflow's SQL
store before doing a second of work. `make run` starts `rnnbench warm --socket PATH` and sets
RNNBENCH_WARM=PATH for `dvc repro`; a stage script (rnnbench.commands.stage_main) then hands
its command to the server (protocol: rnnbench.warm.client), which forks a child that runs
exactly what the stage would have run (rnnbench.cli.main), in the stage's working directory,
writing to the stage's own stdout and stderr (passed over the socket), and reports its exit
status back. Each command still runs in its own process, started from the same imported state,
so runs are as independent and as reproducible as before. Without the variable, or when the
server cannot be reached, commands run in their own process as usual.

What a client can make it do is bounded (see serve): stage commands only, of its own user,
with the client's environment filtered by an allow-list.

The server imports nothing that starts threads (no Numba, no SciPy): forking a process with
live thread pools is unsafe, and the children load those libraries themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from rnnbench.warm.client import ENV, MAX_MESSAGE, allowed_env


def _preload() -> None:
    """Import what every stage imports, without starting any thread pool."""
    import torch
    from mlflow.store.tracking import sqlalchemy_store  # noqa: F401  (MLflow's SQL store)
    from mlflow.tracking import MlflowClient  # noqa: F401

    import rnnbench.tracking  # noqa: F401
    import rnnbench.training.run  # noqa: F401  (torch, numpy, the registries)

    # The first optimiser imports torch._dynamo (over a second): pay for it here.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _run_child(job: dict, fds: list[int], run, inherited: list) -> None:
    """In the forked child: become the stage's process, run its command, exit with its status."""
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        for s in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(s, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for obj in inherited:  # the server's sockets and pipes are not the stage's
            os.close(obj) if isinstance(obj, int) else obj.close()
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in fds:
            os.close(fd)
        os.chdir(job["cwd"])
        for k in allowed_env(dict(os.environ)):  # the client says which of these it has
            del os.environ[k]
        os.environ.update(allowed_env(job["env"]))
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


REQUEST_TIMEOUT_S = 10.0  # a client that connects and says nothing is dropped after this


class _Conn:
    """One client: its request as it arrives, then the child running it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf, self.fds = sock, b"", []
        self.deadline = time.monotonic() + REQUEST_TIMEOUT_S
        self.pid: int | None = None

    def read(self) -> dict | None:
        """Take what has arrived; the job once complete. Raises ValueError on a bad request."""
        msg, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 2)
        self.fds += fds
        if not msg:
            raise ValueError("client left before sending its command")
        self.buf += msg
        if len(self.buf) < 4:
            return None
        (size,) = struct.unpack("!I", self.buf[:4])
        if size > MAX_MESSAGE:
            raise ValueError(f"request of {size} bytes")
        if len(self.buf) - 4 < size:
            return None
        job = json.loads(self.buf[4:4 + size])
        if not (isinstance(job, dict) and isinstance(job.get("argv"), list)
                and all(isinstance(a, str) for a in job["argv"])
                and isinstance(job.get("cwd"), str) and isinstance(job.get("env"), dict)
                and len(self.fds) == 2):
            raise ValueError("malformed request")
        return job

    def send(self, value: int) -> None:
        try:
            self.sock.sendall(struct.pack("!i", value))
        except OSError:  # the client has gone; the server carries on
            pass

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.sock.close()


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def serve(path: str, compile_first: bool, run, commands: frozenset[str]) -> None:
    """Serve until stopped: each request of this user naming one of `commands` runs
    `run(argv)` in a forked child, several at once if clients come together. Only this user
    can open the socket (mode 0600) and only this user's processes are served (SO_PEERCRED);
    a client's environment reaches the child through allowed_env only; a client that leaves
    takes its child with it (SIGTERM); no client, idle or gone, stops the server or blocks
    another. With `compile_first`, the Numba kernels compile meanwhile (see _Compiler)."""
    os.environ.pop(ENV, None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # clean up the socket when stopped
    compiler = _Compiler() if compile_first else None
    _preload()
    sock_path = Path(path)
    sock_path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        server.bind(str(sock_path))
    finally:
        os.umask(old_umask)
    os.chmod(sock_path, 0o600)
    server.listen(16)
    server.setblocking(False)
    wake_r, wake_w = os.pipe()  # SIGCHLD wakes the loop: a finished stage is answered at once
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    sel = selectors.DefaultSelector()
    sel.register(server, selectors.EVENT_READ, "accept")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    conns: dict[socket.socket, _Conn] = {}
    children: dict[int, _Conn] = {}
    me = os.getuid()
    print(f"rnnbench warm: ready on {sock_path}", file=sys.stderr, flush=True)

    def drop(c: _Conn) -> None:
        sel.unregister(c.sock)
        conns.pop(c.sock, None)
        c.close()

    def refuse(c: _Conn, why: str) -> None:
        if len(c.fds) == 2:
            os.write(c.fds[1], f"rnnbench warm: refused: {why}\n".encode())
        c.send(0)
        c.send(2)
        drop(c)

    try:
        while True:
            now = time.monotonic()
            for c in [c for c in conns.values() if c.pid is None and c.deadline < now]:
                drop(c)  # connected and never sent a whole command
            for key, _ in sel.select(timeout=1.0):
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 4096)
                elif key.data == "accept":
                    with contextlib.suppress(BlockingIOError):
                        sock, _ = server.accept()
                        sock.setblocking(False)
                        conns[sock] = _Conn(sock)
                        sel.register(sock, selectors.EVENT_READ, "conn")
                else:
                    c = conns[key.fileobj]
                    if c.pid is not None:
                        try:
                            gone = c.sock.recv(64) == b""
                        except OSError:
                            gone = True
                        if gone:  # the client hung up while its stage runs: stop the stage
                            with contextlib.suppress(ProcessLookupError):
                                os.kill(c.pid, signal.SIGTERM)
                            sel.unregister(c.sock)
                        continue
                    try:
                        job = c.read()
                    except (OSError, ValueError, struct.error) as exc:
                        print(f"rnnbench warm: bad request ({exc})", file=sys.stderr, flush=True)
                        drop(c)
                        continue
                    if job is None:
                        continue
                    if peer_uid(c.sock) != me:
                        refuse(c, "the socket serves its owner only")
                    elif not job["argv"] or job["argv"][0] not in commands:
                        refuse(c, f"not a stage command: {job['argv'][:1]} (serves "
                                  f"{', '.join(sorted(commands))})")
                    else:
                        if compiler is not None:
                            compiler.check()
                        pid = os.fork()
                        if pid == 0:
                            _run_child(job, c.fds, run,
                                       [server, *conns, sel, wake_r, wake_w])
                        for fd in c.fds:
                            os.close(fd)
                        c.fds, c.pid = [], pid
                        children[pid] = c
                        c.send(pid)
            while children:  # reap every child that has ended, answer its client
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                c = children.pop(pid, None)
                if c is not None:
                    c.send(os.waitstatus_to_exitcode(wait_status))
                    if c.sock in conns:
                        with contextlib.suppress(KeyError, ValueError):
                            sel.unregister(c.sock)
                        conns.pop(c.sock, None)
                    c.close()
    finally:
        signal.set_wakeup_fd(-1)
        server.close()
        sock_path.unlink(missing_ok=True)
        if compiler is not None:
            compiler.stop()


__all__ = ["serve"]
