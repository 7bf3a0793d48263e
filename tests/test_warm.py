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
