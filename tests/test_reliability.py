"""Reliability under bad input and faults: every malformed configuration is one clear line
before any work (property-based: hypothesis generates them), and kills, a full disk, a store
race and an unreachable tracking server lose no run and leave earlier results intact.

The module tallies what it tried and how its tests ended, and prints one summary line; the
same figures go to results/reliability/summary.json, which the report cites. A fault counts
a run as lost when the result it should have kept changed, whatever else the test checks.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import OUTCOMES, ROOT, TINY

TALLY = {"faults_injected": 0, "runs_survived": 0, "runs_lost": 0, "bad_inputs_tried": 0,
         "bad_inputs_clear_error": 0}
SUMMARY = ROOT / "results" / "reliability" / "summary.json"


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    yield
    for proc in STARTED:  # a failed test must not leave training behind
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    from rnnbench.io import git_state, write_json_atomic

    tests = OUTCOMES.get("tests/test_reliability.py", {"passed": 0, "failed": 0, "skipped": 0})
    # every test's call has been reported by now; only this teardown's own is not
    line = ("reliability: {faults_injected} faults injected, {runs_survived} runs survived, "
            "{runs_lost} runs lost; {bad_inputs_tried} bad inputs tried, "
            "{bad_inputs_clear_error} with a clear one-line error; ").format(**TALLY) + \
        "tests {passed} passed, {failed} failed, {skipped} skipped".format(**tests)
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(SUMMARY, {**TALLY, "tests_passed": tests["passed"],
                                "tests_failed": tests["failed"],
                                "tests_skipped": tests["skipped"], "line": line,
                                "date": time.strftime("%Y-%m-%d"),
                                "commit": git_state(ROOT, status=False).get("commit"),
                                "command": "pytest tests/test_reliability.py"})
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


# ------------------------------------------------------------------ malformed configurations
NUMERIC = ["train.lr", "train.momentum", "train.batch_size", "train.max_epochs", "train.clip_value",
           "train.threads", "data.seed", "tasks.adding.seq_len", "tasks.adding.n_train",
           "tasks.copy.delay", "tasks.sine.noise", "models.rnn.hidden_size",
           "models.lstm.forget_bias", "probe.batch_size", "speed.repeats", "speed.warmup"]
ENUMS = ["train.optimizer", "train.clip", "train.device", "train.dtype", "models.rnn.family",
         "models.rnn.nonlinearity", "probe.split"]
SECTIONS = ["train", "data", "tasks.adding", "models.rnn", "probe", "speed", "grid", "report"]
NOT_A_NUMBER = [".inf", "-.inf", ".nan", "1e400", "-1e400", "true", "false", "abc", "''",
                "[1, 2]", "{a: 1}", "0x", "1_0_"]
word = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


def _sets(draw) -> list[str]:
    kind = draw(st.sampled_from(["number", "negative", "enum", "unknown", "syntax"]))
    if kind == "number":
        return [f"{draw(st.sampled_from(NUMERIC))}={draw(st.sampled_from(NOT_A_NUMBER))}"]
    if kind == "negative":
        key = draw(st.sampled_from([k for k in NUMERIC if k not in ("models.lstm.forget_bias",)]))
        return [f"{key}={draw(st.integers(-10**6, -1))}"]
    if kind == "enum":
        return [f"{draw(st.sampled_from(ENUMS))}={draw(word.map(lambda w: 'zz' + w))}"]
    if kind == "unknown":
        return [f"{draw(st.sampled_from(SECTIONS))}.zz{draw(word)}=1"]
    return [draw(st.sampled_from(["train.lr", "=1", "train..lr=1", "train.lr=[1,", ".=2",
                                  "train.lr={", "tasks=", "train.lr: 1"]))]


YAML_TEXT = (ROOT / "params.yaml").read_text(encoding="utf-8")


def _yaml(draw) -> bytes:
    kind = draw(st.sampled_from(["duplicate", "nested", "bytes", "scalar", "bomb", "tab"]))
    if kind == "duplicate":
        key = draw(st.sampled_from(["  lr: 0.01", "  batch_size: 64", "experiment: quick"]))
        return YAML_TEXT.replace(key, f"{key}\n{key}", 1).encode()
    if kind == "nested":
        depth = draw(st.integers(33, 400))
        return (YAML_TEXT + "\nextra: " + "[" * depth + "]" * depth + "\n").encode()
    if kind == "bytes":
        junk = draw(st.binary(min_size=1, max_size=8).filter(lambda b: _not_utf8(b)))
        return YAML_TEXT.encode() + b"\n# " + junk + b"\n"
    if kind == "scalar":
        return draw(st.sampled_from([b"", b"42\n", b"- a\n- b\n", b"null\n", b"'text'\n"]))
    if kind == "bomb":
        n = draw(st.integers(9, 14))
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, n)]
        return (YAML_TEXT + "\n" + "\n".join(lines) + "\n").encode()
    return YAML_TEXT.replace("  lr: 0.01", "\tlr: 0.01", 1).encode()


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@st.composite
def bad_command(draw) -> tuple[str, bytes | None, list[str]]:
    """(command, params file bytes or None for params.yaml, extra arguments), all invalid."""
    command = draw(st.sampled_from(["train", "train", "data"]))
    kind = draw(st.sampled_from(["set", "set", "yaml", "args"]))
    if kind == "set":
        return command, None, [a for s in _sets(draw) for a in ("--set", s)]
    if kind == "yaml":
        return command, _yaml(draw), []
    if command == "data":
        return command, None, ["--task", "zz" + draw(word)]
    arg = draw(st.sampled_from(["--seed", "--task", "--model"]))
    value = str(draw(st.one_of(st.integers(-2**40, -1), st.integers(2**32, 2**40)))) \
        if arg == "--seed" else "zz" + draw(word)
    return command, None, [arg, value]


def run_cli(argv: list[str]) -> tuple[int, str]:
    from rnnbench.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
    return status, err.getvalue()


@settings(max_examples=240, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=bad_command())
def test_malformed_configurations_fail_in_one_line_before_any_work(case, tmp_path, monkeypatch,
                                                                    _private_mlflow):
    import rnnbench.tasks.data as data
    import rnnbench.training.run as run

    def reached(*_a, **_k):
        raise AssertionError(f"a malformed configuration reached the work: {case}")

    monkeypatch.setattr(run, "run_training", reached)
    monkeypatch.setattr(data, "make_data", reached)
    command, text, extra = case
    params = ROOT / "params.yaml"
    if text is not None:
        params = tmp_path / f"p{time.monotonic_ns()}.yaml"
        params.write_bytes(text)
    out = tmp_path / f"out{time.monotonic_ns()}"
    argv = [command, "--params", str(params), "--out", str(out), "--out-outside", *extra]
    argv += ["--task", "adding"] if "--task" not in extra else []
    argv += ["--model", "rnn"] if command == "train" and "--model" not in extra else []
    TALLY["bad_inputs_tried"] += 1
    status, err = run_cli(argv)
    lines = err.strip().splitlines()
    assert status != 0, (case, err)
    assert len(lines) == 1 and "Traceback" not in err and "error" in lines[0], (case, err)
    assert not out.exists() and not (_private_mlflow / "mlflow.db").exists(), case
    TALLY["bad_inputs_clear_error"] += 1


@pytest.mark.parametrize("where", ["long name", "under a file", "special file system"])
def test_an_output_path_that_cannot_be_made_fails_before_any_work(where, tmp_path, monkeypatch,
                                                                  _private_mlflow):
    import rnnbench.training.run as run

    monkeypatch.setattr(run, "run_training", lambda *a, **k: pytest.fail("training started"))
    (tmp_path / "file").write_text("x")
    out = {"long name": tmp_path / ("a" * 250), "under a file": tmp_path / "file" / "out",
           "special file system": Path("/sys/rnnbench-out")}[where]
    if where == "special file system" and not Path("/sys").is_dir():
        pytest.skip("no /sys here")
    TALLY["bad_inputs_tried"] += 1
    status, err = run_cli([*TRAIN_LONG, "--out-outside", "--out", str(out)])
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"rnnbench: error: {out}")
    assert not (_private_mlflow / "mlflow.db").exists()
    TALLY["bad_inputs_clear_error"] += 1


# ------------------------------------------------------------------ faults
TRAIN_LONG = ["train", "--task", "adding", "--model", "rnn", "--seed", "5",
              *[a for s in TINY if s.startswith(("tasks.adding", "models.rnn"))
                for a in ("--set", s)]]


# training that outlasts any test: no step or epoch cap in reach, no stop at the threshold
FOREVER = ["--set", "tasks.adding.train.max_steps=100000", "--set", "train.max_epochs=100000",
           "--set", "tasks.adding.train.early_stop=false"]


def store_runs(store: Path) -> list[tuple[str, str, str]]:
    """(name, status, failure reason) of every run in a SQLite store, read without MLflow."""
    if not (store / "mlflow.db").exists():
        return []
    with contextlib.closing(sqlite3.connect(store / "mlflow.db", timeout=30)) as c:
        try:
            rows = c.execute("select r.name, r.status, (select value from tags t where "
                             "t.run_uuid = r.run_uuid and t.key = 'failure_reason') "
                             "from runs r order by r.start_time").fetchall()
        except sqlite3.OperationalError:  # the tables are being created
            return []
    return rows


STARTED: list[subprocess.Popen] = []  # killed when the module ends, whatever failed


def start(argv: list[str], out: Path) -> subprocess.Popen:
    STARTED.append(subprocess.Popen([sys.executable, "-m", "rnnbench.cli", *argv, "--out-outside",
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True))
    return STARTED[-1]


def wait_running(store: Path, proc: subprocess.Popen, n: int = 1) -> None:
    deadline = time.monotonic() + 120
    while sum(s == "RUNNING" for _, s, _ in store_runs(store)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.2)
    time.sleep(1.0)  # well inside training


def previous_result(out: Path) -> str:
    """Train once into `out` (a tiny run); its metrics.json text, to compare after a fault."""
    status, err = run_cli([*TRAIN_LONG, "--set", "tasks.adding.train.max_steps=5",
                           "--out-outside", "--out", str(out)])
    assert status == 0, err
    return (out / "metrics.json").read_text()


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_ends_killed_in_one_line_and_keeps_the_previous_result(
        sig, status, tmp_path, _private_mlflow):
    out = tmp_path / "out"
    before = previous_result(out)
    p = start([*TRAIN_LONG, *FOREVER], out)
    wait_running(_private_mlflow, p)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    TALLY["faults_injected"] += 1
    assert p.returncode == status, err  # what the process printed, should it not be ours
    assert err.strip().splitlines()[-1:] == [
        f"rnnbench: stopped by {sig.name}; results of finished runs are kept"]
    assert "Traceback" not in err
    runs = store_runs(_private_mlflow)
    intact = (out / "metrics.json").read_text() == before
    TALLY["runs_survived"] += intact
    TALLY["runs_lost"] += not intact
    assert [(s, r) for _, s, r in runs] == [("FINISHED", None),
                                            ("KILLED", f"stopped by {sig.name}")]
    assert intact and [f.name for f in tmp_path.iterdir()] == ["out"]  # no half-written folder


def test_a_run_killed_outright_is_marked_killed_by_the_next_run(tmp_path, _private_mlflow):
    p = start([*TRAIN_LONG, *FOREVER], tmp_path / "a")
    wait_running(_private_mlflow, p)
    p.kill()  # SIGKILL: the run cannot end itself
    p.wait()
    TALLY["faults_injected"] += 1
    assert [s for _, s, _ in store_runs(_private_mlflow)] == ["RUNNING"]
    previous_result(tmp_path / "b")  # the same (model, task, seed) again
    (_, s1, why), (_, s2, _) = store_runs(_private_mlflow)
    assert (s1, s2) == ("KILLED", "FINISHED") and "ended without ending its run" in why
    TALLY["runs_survived"] += 1


def test_a_stopped_study_stops_its_workers_and_ends_their_runs_killed(tmp_path,
                                                                      _private_mlflow):
    import yaml

    raw = yaml.safe_load(YAML_TEXT)
    raw["studies"] = {"long": {
        "kind": "sigma", "processes": 2, "task": "adding", "models": ["rnn"], "seeds": [0],
        "x": "models.rnn.w_hh_scale",
        "common": [s for s in TINY if s.startswith(("tasks.adding", "models.rnn"))
                   and "max_steps" not in s] + FOREVER[1::2],
        "variants": {"a": ["models.rnn.w_hh_scale=0.5"], "b": ["models.rnn.w_hh_scale=1.0"],
                     "c": ["models.rnn.w_hh_scale=1.5"]}}}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "study"
    p = start(["study", "--params", str(params), "--name", "long"], out)
    wait_running(_private_mlflow, p, n=2)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    TALLY["faults_injected"] += 1
    assert p.returncode == 143 and time.monotonic() - t0 < 30
    assert err.strip().splitlines()[-1] == \
        "rnnbench: stopped by SIGTERM; results of finished runs are kept"
    assert "Traceback" not in err
    runs = store_runs(_private_mlflow)
    assert len(runs) == 2 and {s for _, s, _ in runs} == {"KILLED"}, runs
    assert not out.exists()  # no half-written study
    TALLY["runs_survived"] += 1


IN_FINALIZER = """
import signal, sys, time
from rnnbench.training import pool as run
run._worker_init()
run._IN_JOB.append("job")

class Finalized:
    def __del__(self):  # the signal lands while a finalizer runs, as in SQLAlchemy's gc hooks
        signal.raise_signal(signal.SIGTERM)
        sum(range(1000))

try:
    Finalized()
    deadline = time.monotonic() + 5  # the run goes on
    while time.monotonic() < deadline:
        pass
    print("went on")
except KeyboardInterrupt as e:
    print("stopped:", e)
"""


# Loaded before the CLI (sitecustomize): every command is stopped inside a library's exec() of
# source text, as an interrupt that lands while dataclasses or SQLAlchemy generate code is.
STOP_IN_EXEC = """
import rnnbench.commands as commands
caught = commands.guarded
def stopped_in_exec(fn, args):
    return caught(lambda a: exec("raise KeyboardInterrupt({name!r})"), args)
commands.guarded = stopped_in_exec
"""


@pytest.mark.parametrize("name,status", [("SIGTERM", 143), ("", 130)])
def test_a_stop_inside_a_library_exec_still_exits_with_its_status(name, status, tmp_path):
    """Under `python -m`, CPython 3.11 would end such a process by SIGINT (-2) after the
    command had stopped cleanly."""
    (tmp_path / "sitecustomize.py").write_text(STOP_IN_EXEC.format(name=name))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    p = subprocess.run([sys.executable, "-m", "rnnbench.cli", "list"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == status, p.stderr
    assert p.stderr.strip().splitlines() == [
        f"rnnbench: stopped by {name or 'SIGINT'}; results of finished runs are kept"]


def test_a_stop_that_lands_in_a_finalizer_still_stops_the_worker():
    p = subprocess.run([sys.executable, "-c", IN_FINALIZER], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.stdout.strip() == "stopped: SIGTERM" and "Traceback" not in p.stderr, p


def test_a_full_disk_is_one_line_and_keeps_the_previous_result(tmp_path, monkeypatch,
                                                                 _private_mlflow):
    import errno

    import rnnbench.training.run as run

    out = tmp_path / "out"
    argv = [*TRAIN_LONG, "--set", "tasks.adding.train.max_steps=5", "--out-outside", "--out",
            str(out)]
    assert run_cli(argv)[0] == 0
    before = (out / "metrics.json").read_text()

    def full(_obj, path, *_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(run.torch, "save", full)
    status, err = run_cli(argv)
    TALLY["faults_injected"] += 1
    intact = (out / "metrics.json").read_text() == before
    TALLY["runs_survived"] += intact
    TALLY["runs_lost"] += not intact
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("rnnbench: error: ") and "model.pt: No space left on device" in err
    runs = store_runs(_private_mlflow)
    assert [s for _, s, _ in runs] == ["FINISHED", "FAILED"] and "No space" in runs[1][2]
    assert intact and [f.name for f in tmp_path.iterdir()] == ["out"]


WRITER = """
import sys, time
from pathlib import Path
from rnnbench.tracking import Tracker
i, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
with Tracker("race", f"w{i}", {"model": "m", "task": "t", "seed": i}, {"i": i}) as t:
    t.log_dataset("adding", "ab" * 32, {"task": "adding"}, {"rows": 1})  # the same, by all
    t.log_metrics({"x": float(i)})
"""


@pytest.mark.parametrize("writers", [4, pytest.param(8, marks=pytest.mark.slow)])
def test_writers_starting_together_on_a_fresh_store_all_record(writers, _private_mlflow):
    """Every process opens the fresh store at the same instant: MLflow creating its tables
    in several processes at once broke the store for good before store_lock."""
    start_at = time.time() + 4 + writers  # every interpreter has imported MLflow by then
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(i), str(start_at)], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for i in range(writers)]
    codes = [p.wait(timeout=300) for p in procs]
    TALLY["faults_injected"] += 1
    assert codes == [0] * writers, [p.stderr.read()[-2000:] for p in procs]
    runs = store_runs(_private_mlflow)
    assert sorted(n for n, _, _ in runs) == sorted(f"w{i}" for i in range(writers))
    assert {s for _, s, _ in runs} == {"FINISHED"}
    TALLY["runs_survived"] += len(runs)


@pytest.mark.slow
def test_real_training_processes_share_a_fresh_store(tmp_path, _private_mlflow):
    procs = [start([*TRAIN_LONG, "--seed", str(s), "--set", "tasks.adding.train.max_steps=5"],
                   tmp_path / f"s{s}") for s in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    TALLY["faults_injected"] += 1
    assert [p.returncode for p in procs] == [0] * 4, [e[-2000:] for _, e in outs]
    runs = store_runs(_private_mlflow)
    assert sorted(n for n, _, _ in runs) == [f"rnn/adding/seed{s}" for s in range(4)]
    TALLY["runs_survived"] += len(runs)


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


def closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("kind", ["closed", "silent", "missing folder", "read-only folder"])
def test_unusable_tracking_fails_within_10_s_before_any_work(kind, tmp_path, monkeypatch,
                                                              silent_server):
    uri = {"closed": closed_port(), "silent": silent_server,
           "missing folder": f"sqlite:///{tmp_path / 'no' / 'where' / 'mlflow.db'}",
           "read-only folder": f"sqlite:///{tmp_path / 'ro' / 'mlflow.db'}"}[kind]
    if kind == "read-only folder":
        (tmp_path / "ro").mkdir(mode=0o555)
        if os.access(tmp_path / "ro", os.W_OK):
            pytest.skip("running as root: a read-only folder is writable")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    out = tmp_path / "out"
    t0 = time.monotonic()
    status, err = run_cli([*TRAIN_LONG, "--out-outside", "--out", str(out)])
    TALLY["faults_injected"] += 1
    assert time.monotonic() - t0 < 10
    assert status == 2 and len(err.strip().splitlines()) == 1 and uri in err, err
    assert not out.exists() and not (tmp_path / "no").exists()  # nothing created


def test_the_summary_counts_what_ran():
    """Runs last in the module: the counters are those of the tests above."""
    if TALLY["bad_inputs_tried"] == 0:
        pytest.skip("run with the rest of the module")
    assert TALLY["bad_inputs_tried"] >= 200
    assert TALLY["bad_inputs_clear_error"] == TALLY["bad_inputs_tried"]
    assert TALLY["runs_lost"] == 0 and TALLY["faults_injected"] > 0


def test_a_call_another_writer_got_in_the_way_of_is_retried(monkeypatch):
    from rnnbench import store

    monkeypatch.setattr(store.time, "sleep", lambda s: None)
    for message in ("database is locked", "UNIQUE constraint failed: datasets.experiment_id"):
        calls = []

        def flaky(x, message=message, calls=calls):
            calls.append(x)
            if len(calls) < 3:
                raise RuntimeError(f"(sqlite3.OperationalError) {message}")
            return x * 2

        assert store.retry_locked(flaky, 21) == 42 and len(calls) == 3
    calls = []

    def broken(x):
        calls.append(x)
        raise RuntimeError("UNIQUE constraint failed: runs.run_uuid")  # a bug: never retried

    with pytest.raises(RuntimeError):
        store.retry_locked(broken, 1)
    assert len(calls) == 1
