"""Running a sweep: every trial of the plan as a Ray task, resumable, logged to one store.

Ray (the optional extra `pip install -e '.[ray]'`) starts a local cluster by default, or joins
the one at `address`. Each trial asks for its CPU threads, the sweep's `threads` (and a GPU when
it trains on CUDA); inside its worker it trains with those threads, pinning torch's, Numba's and
BLAS's (fit does), in the ordinary tracked training run (rnnbench.training.run.run_training), so
trials write the same files and MLflow runs as the pipeline, tagged with the sweep's name, their
variant and their configuration hash. The tracking store and its experiment are created once,
before the fan-out; workers log to the URI the driver uses, which must be a tracking server
(http or https) when the cluster is joined at `address`: a store on the driver's disk would
leave each machine logging to its own.

Resumable: a trial whose configuration hash already has a final run in the store's experiment
(FINISHED, or FAILED as a diverged training), whichever sweep or pipeline made it, is skipped;
summary.json says where it was found. A trial that fails (an invalid value, an error, a worker
that crashed) is recorded as failed with its one-line reason, and the others go on. summary.json
in the output folder lists every trial and its outcome; a line per event shows done / in flight
(submitted to Ray: queued or running) / failed / skipped.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rnnbench.config import ConfigError
from rnnbench.sweep.plan import Plan, Trial, plan

SCHEMA_VERSION = 1


def trial_params(job: dict):
    """The params a trial trains with, loaded as its worker loads them."""
    from rnnbench.params import load_params

    return load_params(job["params_path"], job["overrides"])


def _run_trial(job: dict) -> dict:
    """In a Ray worker: one trial's training run; its outcome as plain data."""
    from rnnbench.training.run import run_training

    try:
        m = run_training(trial_params(job), job["task"], job["model"], job["seed"],
                         Path(job["out"]), stage=job["stage"], tags=job["tags"])
    except Exception as exc:  # recorded by the run's tracker (FAILED) and in the summary
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:2000]}
    return {"status": "finished" if m["status"] == "ok" else m["status"],
            "mlflow_run_id": m["mlflow_run_id"], "reason": m["reason"],
            "metric": m["metric"], "test": m["test"].get(m["metric"]),
            "train_time_s": m["train_time_s"], "host": os.uname().nodename, "pid": os.getpid()}


class Progress:
    def __init__(self, name: str, total: int, stream=sys.stderr):
        self.name, self.total, self.stream = name, total, stream
        self.counts = {"done": 0, "failed": 0, "skipped": 0}
        self.in_flight = 0  # submitted to Ray, not ended: queued or running (not told apart)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def show(self, event: str = "") -> None:
        c = self.counts
        print(f"sweep {self.name}: {c['done']} done, {self.in_flight} in flight, {c['failed']} "
              f"failed, {c['skipped']} skipped of {self.total}" + (f" ({event})" if event else ""),
              file=self.stream, flush=True)


def check_shared(uri: str, address: str | None) -> None:
    """Workers of a cluster joined at `address` log to `uri`: it must be a tracking server, not
    a store on this machine's disk (each machine would log to its own)."""
    from rnnbench.store import TrackingError

    if address and not uri.startswith(("http://", "https://")):
        raise TrackingError(f"--address {address}: tracking URI {uri} is a store on this "
                            "machine; workers of a cluster need a tracking server (start "
                            "`rnnbench server`, set MLFLOW_TRACKING_URI=http://HOST:PORT)")


def _start_ray(address: str | None, cpus: int | None, tracking: str, threads: int):
    try:
        import ray
    except ImportError:
        raise ConfigError("rnnbench sweep runs on Ray, which is not installed: "
                          "pip install -e '.[ray]'") from None
    env = {"MLFLOW_TRACKING_URI": tracking, "OMP_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads)}
    for var in ("NUMBA_CACHE_DIR", "PYTHONPATH"):
        if os.environ.get(var):
            env[var] = os.environ[var]
    kwargs = {"address": address} if address else {"num_cpus": cpus or os.cpu_count()}
    ray.init(**kwargs, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env}, configure_logging=False)
    return ray


def run_sweep(path: Path, out: Path, address: str | None = None, cpus: int | None = None,
              stream=sys.stderr) -> dict:
    """Run the sweep at `path`; write out/summary.json; return it."""
    from rnnbench.io import mark_output_dir, write_json_atomic
    from rnnbench.store import check_reachable, ensure_experiment
    from rnnbench.tracking import final_runs, record_failure

    p = plan(path)  # every mistake in the sweep itself stops it here
    cfg = p.cfg
    uri = check_reachable()
    check_shared(uri, address)
    t0 = time.perf_counter()
    out = Path(out).resolve()
    mark_output_dir(out, "sweep")
    ensure_experiment(p.experiment)  # the store and the experiment exist before the fan-out
    final = final_runs(p.experiment, cfg.name)
    progress = Progress(cfg.name, len(p.trials), stream)
    todo: list[Trial] = []
    for t in p.trials:
        if t.error is not None:
            t.result = {"status": "failed", "reason": t.error, "mlflow_run_id": record_failure(
                p.experiment, t.name, {**_tags(cfg, t), "model": t.model, "task": t.task,
                                       "seed": str(t.seed)}, t.error)}
            progress.add("failed")
        elif t.config_hash in final:
            found = final[t.config_hash]
            t.result = {"status": "skipped", "mlflow_run_id": found["run_id"],
                        "found_in": found["run_group"]}
            progress.add("skipped")
        else:
            todo.append(t)
    progress.show("planned")
    if todo:
        _fan_out(p, todo, out, uri, (address, cpus), progress)
    summary = {"schema_version": SCHEMA_VERSION, "sweep": cfg.name, "experiment": p.experiment,
               "tracking_uri": uri, "wall_time_s": round(time.perf_counter() - t0, 3),
               "counts": dict(progress.counts),
               "trials": [{"trial": t.name, "model": t.model, "task": t.task, "seed": t.seed,
                           "overrides": t.overrides, "config_hash": t.config_hash, **t.result}
                          for t in p.trials]}
    write_json_atomic(out / "summary.json", summary)
    return summary


def _tags(cfg, t: Trial) -> dict[str, str]:
    return {"sweep": cfg.name, "variant": t.label, "trial": t.name}


def submission(p: Plan, t: Trial, out: Path, gpus: bool) -> tuple[dict, dict]:
    """A trial's job (what its worker trains) and its Ray task options: as many CPUs as the
    threads it trains with, a GPU where it trains on one, no retry (a crashed trial is failed;
    a resumed sweep runs it again)."""
    from rnnbench.models.families import FAMILIES

    cfg = p.cfg
    fam = FAMILIES[t.params.models[t.model].family]
    use_gpu = cfg.gpu if cfg.gpu is not None else \
        (gpus and not fam.cpu_only and t.params.train.device != "cpu")
    job = {"params_path": str(p.params_path), "overrides": t.overrides, "task": t.task,
           "model": t.model, "seed": t.seed, "out": str(out / t.config_hash[:12]),
           "stage": f"sweep:{cfg.name}", "tags": _tags(cfg, t)}
    return job, {"num_cpus": t.params.train.threads, "num_gpus": 1 if use_gpu else 0,
                 "max_retries": 0}


def _fan_out(p: Plan, todo: list[Trial], out: Path, uri: str, cluster, progress) -> None:
    ray = _start_ray(*cluster, uri, p.cfg.threads)
    try:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        task = ray.remote(_run_trial)
        refs = {}
        pending = list(todo)
        limit = p.cfg.max_concurrent or len(todo)

        def submit() -> None:
            while pending and len(refs) < limit:
                t = pending.pop(0)
                job, options = submission(p, t, out, gpus)
                refs[task.options(**options).remote(job)] = t
                progress.in_flight += 1

        submit()
        progress.show("submitted to Ray")
        while refs:
            collect(ray, refs, progress)
            submit()
    finally:
        ray.shutdown()


def collect(ray, refs: dict, progress: Progress) -> None:
    """Wait for the next of the trials in flight (Ray object ref -> Trial) to end and record its
    outcome, dropping it from `refs`: a worker that crashed or a task Ray lost is a failed trial
    with a one-line reason, and the others go on."""
    ready, _ = ray.wait(list(refs), num_returns=1)
    for ref in ready:
        t = refs.pop(ref)
        try:
            t.result = ray.get(ref)
        except ray.exceptions.RayError as exc:
            t.result = {"status": "failed", "reason": ray_reason(exc)}
        progress.in_flight -= 1
        failed = t.result["status"] == "failed"
        progress.add("failed" if failed else "done")
        progress.show(f"{t.name}: {t.result['status']}"
                      + (": " + t.result["reason"].partition("\n")[0][:300] if failed else ""))


def ray_reason(exc: Exception) -> str:
    """One line for an error of Ray's: the task's own exception when it raised one."""
    cause = getattr(exc, "cause", None) or exc  # RayTaskError: the exception inside
    first = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")
    return f"{type(cause).__name__}: {first}"[:2000]
