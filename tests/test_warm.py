"""The warm server: a delegated command behaves like the command run on its own (same files,
same numbers, same output and exit status), and without a server commands run locally."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rnnbench.warm.client import ENV, delegate
from tests.conftest import ROOT, TINY, warm_server

TRAIN = ["train", "--task", "sine", "--model", "gru", "--seed", "3",
         *[a for s in TINY if s.startswith(("tasks.sine", "models.gru")) for a in ("--set", s)]]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    sock = tmp_path_factory.mktemp("warm") / "warm.sock"
    with warm_server(sock):
        yield sock
    assert not sock.exists()  # it cleans up after itself


def rnnbench(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnbench.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_delegated_run_matches_a_local_run(server, tmp_path, _private_mlflow):
    env = {k: v for k, v in os.environ.items() if k != ENV}
    warm = rnnbench([*TRAIN, "--out-outside", "--out", str(tmp_path / "warm")],
                    env | {ENV: str(server)})
    local = rnnbench([*TRAIN, "--out-outside", "--out", str(tmp_path / "local")], env)
    assert warm.returncode == local.returncode == 0, warm.stderr + local.stderr
    assert "gru on sine (seed 3): status=ok" in warm.stdout  # the child wrote to our stdout
    a, b = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("warm", "local"))
    assert a["test"] == b["test"] and a["steps"] == b["steps"]  # same seed, same numbers
    assert a["mlflow_run_id"] != b["mlflow_run_id"]  # two runs, both recorded


def test_delegated_errors_keep_their_message_and_status(server):
    env = {k: v for k, v in os.environ.items() if k != ENV} | {ENV: str(server)}
    bad = rnnbench([*TRAIN, "--out", "/nonexistent/x", "--set", "train.lr=-1"], env)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "rnnbench: error: params.yaml (with --set): train.lr = -1: Input should be greater "
        "than 0"]


def test_without_a_server_commands_run_locally(tmp_path):
    assert delegate(str(tmp_path / "nobody.sock"), ["train"]) is None


def test_a_failed_background_compile_is_said_once(monkeypatch, capsys):
    import rnnbench.warm.server as warm

    state = {"running": True}

    class FakeProc:
        returncode = 3

        def __init__(self, cmd):
            assert cmd[-1] == "compile"

        def poll(self):
            return None if state["running"] else self.returncode

    monkeypatch.setattr(warm.subprocess, "Popen", FakeProc)
    compiler = warm._Compiler()
    compiler.check()  # still compiling: nothing to say, nothing waited for
    assert capsys.readouterr().err == ""
    state["running"] = False
    compiler.check()
    compiler.check()
    assert capsys.readouterr().err.count("`rnnbench compile` failed (status 3)") == 1
    compiler.stop()


# ------------------------------------------------------------------ what a client can do
def fake_run(argv: list[str]) -> int:
    """The command a test server runs: `train env KEY` prints $KEY, `train sleep S` sleeps
    (SIGTERM/SIGINT end it with one line, as guarded does), `train exit N` exits N."""
    import time

    _, what, arg = argv
    if what == "env":
        print(os.environ.get(arg, "<unset>"), flush=True)
        return 0
    if what == "sleep":
        try:
            time.sleep(float(arg))
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr, flush=True)
            return 130
        return 0
    return int(arg)


def serve_fake(sock: str, uid: int | None = None) -> None:
    """A warm server running fake_run, without the imports (`uid`: pretend to be that user)."""
    import signal

    import rnnbench.warm.server as server

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    server._preload = lambda: None
    if uid is not None:
        server.os.getuid = lambda: uid
    server.serve(sock, False, run=fake_run, commands=frozenset({"train"}))


def wait_for(sock, proc) -> None:
    import time

    deadline = time.monotonic() + 120
    while not sock.exists():
        assert proc.poll() is None, "server died"
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    sock = tmp_path_factory.mktemp("fake") / "warm.sock"
    proc = subprocess.Popen([sys.executable, "-c", f"import tests.test_warm as t; "
                             f"t.serve_fake({str(sock)!r})"], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True)
    wait_for(sock, proc)
    yield sock, proc
    proc.terminate()
    proc.wait(timeout=30)


def client(sock, argv: list[str], env: dict | None = None) -> subprocess.Popen:
    code = ("import sys; from rnnbench.warm.client import delegate; "
            f"sys.exit(delegate({str(sock)!r}, {argv!r}))")
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True,
                            env=env or dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_only_stage_commands_are_served(fake):
    p = client(fake[0], ["server", "--host", "0.0.0.0"])
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and out == ""
    assert err.strip() == "rnnbench warm: refused: not a stage command: ['server'] (serves train)"
    assert fake[1].poll() is None


def test_the_environment_is_filtered(fake):
    env = {**os.environ, "PATH": "/tmp/evil:" + os.environ["PATH"], "MLFLOW_TRACKING_URI": "x:y"}
    for key, seen in (("PATH", os.environ["PATH"]), ("MLFLOW_TRACKING_URI", "x:y")):
        p = client(fake[0], ["train", "env", key], env)
        out, err = p.communicate(timeout=60)
        assert (p.returncode, out.strip()) == (0, seen), err
    bare = {k: v for k, v in env.items() if k != "MLFLOW_TRACKING_URI"}
    p = client(fake[0], ["train", "env", "MLFLOW_TRACKING_URI"], bare)
    assert p.communicate(timeout=60)[0].strip() == "<unset>"  # the client's, not the server's


def test_the_socket_is_its_owners_only(fake, tmp_path):
    import socket
    import stat

    from rnnbench.warm.server import peer_uid

    assert stat.S_IMODE(os.stat(fake[0]).st_mode) == 0o600
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert peer_uid(a) == os.getuid()
    other = tmp_path / "other.sock"  # a server run as another user, seen by this one
    proc = subprocess.Popen([sys.executable, "-c", f"import tests.test_warm as t; "
                             f"t.serve_fake({str(other)!r}, uid={os.getuid() + 1})"], cwd=ROOT)
    try:
        wait_for(other, proc)
        p = client(other, ["train", "exit", "0"])
        assert p.communicate(timeout=60)[1].strip() == \
            "rnnbench warm: refused: the socket serves its owner only"
        assert p.returncode == 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_idle_client_blocks_nobody_and_stages_run_side_by_side(fake):
    import socket
    import time

    idle = socket.socket(socket.AF_UNIX)
    idle.connect(str(fake[0]))  # connects, says nothing
    t0 = time.monotonic()
    ps = [client(fake[0], ["train", "sleep", "2"]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in ps] == [0, 0, 0]
    assert time.monotonic() - t0 < 5.5  # three 2 s stages at once, not 6 s one after another
    idle.close()
    assert fake[1].poll() is None


def test_signals_reach_the_child_and_a_vanished_client_takes_its_child_with_it(fake):
    import signal
    import time

    p = client(fake[0], ["train", "sleep", "60"])
    time.sleep(1.5)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130 and err.strip() == "stopped"
    assert time.monotonic() - t0 < 5
    p = client(fake[0], ["train", "sleep", "60"])
    time.sleep(1.5)
    p.kill()  # SIGKILL: nothing to pass on; the server sees the connection close
    p.wait()
    q = client(fake[0], ["train", "exit", "7"])
    assert q.wait(timeout=30) == 7  # the server lives on
    children = subprocess.run(["pgrep", "-P", str(fake[1].pid)], capture_output=True,
                              text=True).stdout.split()
    assert children == []  # the orphaned stage was stopped, and reaped
