"""Sweeps: the plan from SWEEP.yaml (a trial trains with the threads it asks Ray for), then real
runs on a local Ray cluster of two workers logging to a real `mlflow server` on loopback, with a
SQLite store and (marked slow) with PostgreSQL; resumed, a sweep skips what is finished,
wherever it was found; a bad value or a crashed worker fails its trial alone; a report is built
from the tracking store; a cluster needs a tracking server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from rnnbench.config import ConfigError, apply_overrides
from tests.conftest import ROOT, TINY, complete_metrics, mlflow_runs
from tests.test_report import result

LRS = [0.01, 0.003, -1.0]  # the last is invalid: its trials fail, the others run


def write_sweep(tmp: Path, **over) -> Path:
    raw = apply_overrides(yaml.safe_load((ROOT / "params.yaml").read_text()),
                          TINY + ["experiment=sweeptest"])
    (tmp / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    sweep = {"name": "tiny", "params": "params.yaml", "models": ["rnn", "gru"],
             "tasks": ["adding"], "seeds": [0], "axes": {"train.lr": LRS}, **over}
    (tmp / "sweep.yaml").write_text(yaml.safe_dump(sweep, sort_keys=False))
    return tmp / "sweep.yaml"


# ---------------------------------------------------------------- the plan
def test_plan_crosses_the_axes_and_marks_invalid_trials(tmp_path):
    from rnnbench.sweep.plan import plan

    trials = plan(write_sweep(tmp_path)).trials
    assert [(t.model, t.overrides) for t in trials] == [
        (m, ["train.threads=1", f"train.lr={lr}"]) for m in ("rnn", "gru") for lr in LRS]
    assert trials[0].label == "train.lr=0.01" and trials[0].variant == "rnn [train.lr=0.01]"
    bad = [t for t in trials if t.error]
    assert len(bad) == 2 and "train.lr = -1.0: Input should be greater than 0" in bad[0].error
    hashes = [t.config_hash for t in trials if not t.error]
    assert len(set(hashes)) == 4  # the learning rate is part of the configuration
    again = plan(write_sweep(tmp_path)).trials
    assert [t.config_hash for t in again if not t.error] == hashes


def test_a_seeded_sample_is_reproducible(tmp_path):
    from rnnbench.sweep.plan import plan

    picks = {s: [t.name for t in plan(write_sweep(tmp_path, sample={"n": 3, "seed": s})).trials]
             for s in (0, 0, 1)}
    assert len(picks[0]) == 3 and picks[0] != picks[1]
    with pytest.raises(ConfigError, match="sample.n = 9: the grid has only 6 trials"):
        plan(write_sweep(tmp_path, sample={"n": 9}))


@pytest.mark.parametrize("over,message", [
    ({"axes": {"train.nope": [1]}}, "axes.train.nope: no such key"),
    ({"axes": {"train.threads": [1, 2]}}, "axes.train.threads: a trial trains with the sweep's"),
    ({"models": ["nope"]}, "model 'nope' is not defined"),
    ({"models": ["seq2seq_gru"]}, "cannot serve task 'adding'"),
    ({"name": "Bad Name"}, "name = 'Bad Name'"),
    ({"seeds": [-1]}, "seeds.0 = -1"),
])
def test_mistakes_in_the_sweep_stop_it_in_one_line(tmp_path, over, message):
    from rnnbench.sweep.plan import plan

    with pytest.raises(ConfigError, match=message) as info:
        plan(write_sweep(tmp_path, **over))
    assert "\n" not in str(info.value)


def test_a_trial_trains_with_the_threads_it_asks_ray_for(tmp_path):
    from rnnbench.params import load_params
    from rnnbench.sweep.plan import plan
    from rnnbench.sweep.run import submission, trial_params

    p = plan(write_sweep(tmp_path, threads=3))
    assert load_params(p.params_path).train.threads == 1  # the base's threads do not count
    for t in p.trials:
        if t.error is None:
            job, options = submission(p, t, tmp_path / "out", gpus=False)
            assert trial_params(job).train.threads == options["num_cpus"] == 3


def test_a_cluster_needs_a_tracking_server_and_absolute_paths(tmp_path, monkeypatch):
    from rnnbench.store import TrackingError
    from rnnbench.sweep.plan import plan
    from rnnbench.sweep.run import check_shared, run_sweep, submission

    path = write_sweep(tmp_path)
    with pytest.raises(TrackingError, match=r"^--address 10.0.0.1:6379: tracking URI "
                       r"sqlite:///\S+/mlflow.db is a store on this machine;") as info:
        run_sweep(path, tmp_path / "out", address="10.0.0.1:6379")
    assert "\n" not in str(info.value) and not (tmp_path / "out").exists()  # before any work
    check_shared("https://mlflow.example.org", "10.0.0.1:6379")  # a server: fine
    check_shared(f"sqlite:///{tmp_path}/mlflow.db", None)  # a local cluster: fine

    monkeypatch.chdir(tmp_path)
    p = plan(Path("sweep.yaml"))
    job, _ = submission(p, p.trials[0], tmp_path / "out", gpus=False)
    assert job["params_path"] == str(tmp_path / "params.yaml")  # what workers elsewhere open


def hand_made_run(experiment: str, t, tags: dict[str, str], end: str, tmp: Path) -> str:
    """A final (or not) run of trial `t`, made by hand in the store, with its result.json."""
    from rnnbench.store import client, ensure_experiment

    c = client()
    run = c.create_run(ensure_experiment(experiment), tags={
        "config_hash": t.config_hash, "model": t.model, "task": t.task, "seed": str(t.seed),
        **tags})
    folder = tmp / run.info.run_id
    folder.mkdir()
    r = result(t.model, t.model, t.task, 0.05, t.seed,
               status="diverged" if tags.get("status") == "diverged" else "ok")
    (folder / "result.json").write_text(json.dumps(complete_metrics(r)))
    c.log_artifact(run.info.run_id, str(folder / "result.json"))
    c.set_terminated(run.info.run_id, status=end)
    return run.info.run_id


def test_trials_found_finished_elsewhere_are_skipped_and_reported(tmp_path):
    """A trial whose configuration hash has a final run under another tag (another sweep, a
    pipeline) is skipped, and the sweep's summary and report hold it, saying where it was."""
    from rnnbench.sweep.plan import plan
    from rnnbench.sweep.report import sweep_report
    from rnnbench.sweep.run import run_sweep

    path = write_sweep(tmp_path)
    p = plan(path)
    a, b, c, d = [t for t in p.trials if t.error is None]
    runs = tmp_path / "runs"
    runs.mkdir()

    def made(t, end="FINISHED", **tags):
        return hand_made_run(p.experiment, t, tags, end, runs)

    ids = {a.name: made(a, sweep="tiny", run_group="sweep tiny"),
           b.name: made(b, run_group="pipeline 0123abcd")}
    ids[c.name] = made(c, sweep="tiny", run_group="sweep tiny")
    made(c, study="sigma", run_group="study sigma")  # newer, but c's run of this sweep is taken
    made(d, "FAILED", run_group="cli")  # an error: not final
    ids[d.name] = made(d, "FAILED", status="diverged", sweep="other", run_group="sweep other")

    summary = run_sweep(path, tmp_path / "out", stream=open(os.devnull, "w"))  # noqa: SIM115
    assert summary["counts"] == {"done": 0, "failed": 2, "skipped": 4}  # no Ray started
    found = {t["trial"]: (t["mlflow_run_id"], t["found_in"]) for t in summary["trials"]
             if t["status"] == "skipped"}
    assert found == {a.name: (ids[a.name], "sweep tiny"), b.name: (ids[b.name], "pipeline "
                     "0123abcd"), c.name: (ids[c.name], "sweep tiny"),
                     d.name: (ids[d.name], "sweep other")}

    report, held = sweep_report(path, tmp_path / "out" / "report")
    assert {h["trial"]: (h["mlflow_run_id"], h["found_in"], h["this_sweep"]) for h in held} == {
        n: (run_id, where, where == "sweep tiny") for n, (run_id, where) in found.items()}
    text = report.read_text()
    for t in (a, b, c, d):
        assert f"| {t.variant} |" in text, t.variant
    assert "Missing runs" not in text


def test_a_crashed_worker_fails_its_trial_alone(tmp_path, monkeypatch):
    """A worker that dies outright (os._exit) fails its trial with a one-line reason; the other
    trials end, and summary.json is written."""
    import io

    import rnnbench.sweep.run as run_module

    def fake_trial(job: dict) -> dict:  # defined here: Ray ships it by value
        if "train.lr=0.003" in job["overrides"]:
            os._exit(3)
        return {"status": "finished", "mlflow_run_id": None, "pid": os.getpid()}

    monkeypatch.setattr(run_module, "_run_trial", fake_trial)
    progress = io.StringIO()
    summary = run_module.run_sweep(write_sweep(tmp_path), tmp_path / "out", cpus=2,
                                   stream=progress)
    assert summary == json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"] == {"done": 2, "failed": 4, "skipped": 0}  # 2 invalid, 2 crashed
    crashed = [t for t in summary["trials"] if "train.lr=0.003" in t["overrides"]]
    assert [t["status"] for t in crashed] == ["failed", "failed"]
    assert all(t["reason"].startswith("WorkerCrashedError: The worker died") and
               "\n" not in t["reason"] for t in crashed)
    lines = progress.getvalue().splitlines()
    assert lines[0] == "sweep tiny: 0 done, 0 in flight, 2 failed, 0 skipped of 6 (planned)"
    assert lines[1] == "sweep tiny: 0 done, 4 in flight, 2 failed, 0 skipped of 6 (submitted " \
        "to Ray)"
    assert lines[-1].startswith("sweep tiny: 2 done, 0 in flight, 4 failed, 0 skipped of 6 (")
    assert sum(": failed: WorkerCrashedError: The worker died" in x for x in lines) == 2


def test_a_ray_error_is_one_line():
    from rnnbench.sweep.run import ray_reason

    class RayTaskError(Exception):
        cause = ValueError("bad value\nTraceback ...")

    assert ray_reason(RayTaskError("ray::_run_trial() (pid=1)\n...")) == "ValueError: bad value"
    assert ray_reason(OSError("lost\nmore")) == "OSError: lost"


# ---------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(backend: str, artifacts: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rnnbench.cli", "server", "--backend",
                             backend, "--artifacts", str(artifacts), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.read() == b"OK":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield url
    finally:  # the server and every process it started
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def _install_postgres() -> str | None:
    """Debian's postgresql, installed when missing (as root); None, or why it cannot be."""
    if _pg_bin() is not None:
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "PostgreSQL is not installed and apt-get cannot install it here (not root)"
    done = subprocess.run("apt-get install -y -q postgresql || (apt-get update -q && "
                          "apt-get install -y -q postgresql)", shell=True, capture_output=True,
                          text=True, timeout=600)
    return None if done.returncode == 0 and _pg_bin() else \
        f"apt-get install postgresql failed: {done.stderr.strip()[-300:]}"


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on loopback; its SQLAlchemy URI."""
    why = _install_postgres()
    if why:
        pytest.skip(why)
    bin_, port = _pg_bin(), free_port()
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="rnnbench-pg-"))
    base.chmod(0o777)  # the postgres user owns the cluster inside
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    sock.chmod(0o777)

    def pg(*cmd: str) -> None:
        done = subprocess.run([*run_as, *cmd], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    try:
        pg(str(bin_ / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
        pg(str(bin_ / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
           f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start")
        pg(str(bin_ / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
           "mlflow")
        yield f"postgresql://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([*run_as, str(bin_ / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- sweeps, end to end
def sweep(path: Path, url: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": url, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rnnbench.cli", "sweep", str(path), "--out",
                           str(out), "--out-outside", "--cpus", "2", *extra], cwd=path.parent,
                          env=env, capture_output=True, text=True, timeout=600)


def check_sweep_against(url: str, tmp: Path) -> None:
    path, out = write_sweep(tmp), tmp / "out"
    t0 = time.perf_counter()
    first = sweep(path, url, out)
    wall = time.perf_counter() - t0
    assert first.returncode == 1, first.stderr  # two trials failed: said by the exit status
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"done": 4, "failed": 2, "skipped": 0}
    assert "sweep tiny: 4 done, 2 failed, 0 skipped" in first.stdout
    assert "sweep tiny: 0 done, 4 in flight, 2 failed" in first.stderr  # progress lines
    assert "sweep tiny: 4 done, 0 in flight, 2 failed" in first.stderr

    client, runs = mlflow_runs(url)
    by_status = {}
    for r in runs:
        by_status.setdefault(r.info.status, []).append(r)
    assert len(by_status["FINISHED"]) == 4 and len(by_status["FAILED"]) == 2
    for r in by_status["FINISHED"]:
        assert r.data.tags["sweep"] == "tiny" and r.data.tags["variant"].startswith("train.lr=")
        assert r.data.tags["config_hash"] in {t["config_hash"] for t in summary["trials"]}
        assert "result.json" in [a.path for a in client.list_artifacts(r.info.run_id)]
    assert all("greater than 0" in r.data.tags["failure_reason"] for r in by_status["FAILED"])
    pids = {t["pid"] for t in summary["trials"] if t["status"] == "finished"}
    print(f"\nsweep of 6 trials on 2 Ray workers: {wall:.1f} s, {len(pids)} worker processes")

    t0 = time.perf_counter()
    second = sweep(path, url, out)
    again = json.loads((out / "summary.json").read_text())
    assert again["counts"]["skipped"] == 4 and again["counts"]["done"] == 0
    assert {t.get("found_in") for t in again["trials"] if t["status"] == "skipped"} == \
        {"sweep tiny"}
    assert len(mlflow_runs(url)[1]) == len(runs) + 2  # only the invalid trials, recorded again
    print(f"resumed: 4 of 4 finished trials skipped in {time.perf_counter() - t0:.1f} s")
    report = (out / "report" / "benchmark.md").read_text()
    assert second.returncode == 1 and "(4 runs of sweep tiny, 0 of them found finished " \
        "under another tag)" in second.stdout
    for model in ("rnn", "gru"):
        for lr in LRS[:2]:
            assert f"| {model} [train.lr={lr}] |" in report


def test_a_sweep_on_ray_logs_to_an_mlflow_server_and_resumes(tmp_path):
    with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts") as url:
        check_sweep_against(url, tmp_path)


@pytest.mark.slow  # ~75 s: the same sweep as above, the store on PostgreSQL instead of SQLite
@pytest.mark.postgres
def test_a_sweep_against_a_postgresql_store(tmp_path):
    with postgres() as uri, mlflow_server(uri, tmp_path / "artifacts") as url:
        check_sweep_against(url, tmp_path)
