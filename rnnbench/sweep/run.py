"""Running a sweep: every trial of the plan as a Ray task, resumable, logged to one store.

Ray (the optional extra `pip install -e '.[ray]'`) starts a local cluster by default, or joins
the one at `address`. Each trial asks for its CPU threads (and a GPU when it trains on CUDA);
inside its worker it pins torch's, Numba's and BLAS's threads (fit does) and runs the ordinary
tracked training run (rnnbench.training.run.run_training), so trials write the same files and
MLflow runs as the pipeline, tagged with the sweep's name, their variant and their
configuration hash. The tracking store and its experiment are created once, before the
fan-out; workers log to the URI the driver uses (an `rnnbench server` across machines).

Resumable: a trial whose configuration hash already has a final run in the store (FINISHED,
or FAILED as a diverged training) is skipped. A trial that fails (an invalid value, an error)
is recorded as a FAILED run with its reason, and the others go on. summary.json in the output
folder lists every trial and its outcome; a line per event shows done / running / failed /
skipped.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rnnbench.config import ConfigError
from rnnbench.sweep.plan import Trial, plan

SCHEMA_VERSION = 1


def _run_trial(job: dict) -> dict:
    """In a Ray worker: one trial's training run; its outcome as plain data."""
    from rnnbench.params import load_params
    from rnnbench.training.run import run_training

    try:
        params = load_params(job["params_path"], job["overrides"])
        m = run_training(params, job["task"], job["model"], job["seed"], Path(job["out"]),
                         stage=job["stage"], tags=job["tags"])
    except Exception as exc:  # recorded by the run's tracker (FAILED) and in the summary
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:2000]}
    return {"status": "finished" if m["status"] == "ok" else m["status"],
            "mlflow_run_id": m["mlflow_run_id"], "reason": m["reason"],
            "metric": m["metric"], "test": m["test"].get(m["metric"]),
            "train_time_s": m["train_time_s"], "host": os.uname().nodename, "pid": os.getpid()}


class Progress:
    def __init__(self, name: str, total: int, stream=sys.stderr):
        self.name, self.total, self.stream = name, total, stream
        self.counts = {"done": 0, "running": 0, "failed": 0, "skipped": 0}

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def show(self, event: str = "") -> None:
        c = self.counts
        print(f"sweep {self.name}: {c['done']} done, {c['running']} running, {c['failed']} "
              f"failed, {c['skipped']} skipped of {self.total}" + (f" ({event})" if event else ""),
              file=self.stream, flush=True)


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
    from rnnbench.models.families import FAMILIES
    from rnnbench.params import load_params
    from rnnbench.store import check_reachable, ensure_experiment
    from rnnbench.sweep.plan import load_sweep
    from rnnbench.tracking import final_runs, record_failure

    cfg, trials = plan(path)  # every mistake in the sweep itself stops it here
    uri = check_reachable()
    t0 = time.perf_counter()
    out = Path(out).resolve()
    mark_output_dir(out, "sweep")
    experiment = load_params(load_sweep(path)[1]).experiment  # the base params' experiment
    ensure_experiment(experiment)  # the store and the experiment exist before the fan-out
    final = final_runs(experiment)
    progress = Progress(cfg.name, len(trials), stream)
    tags = lambda t: {"sweep": cfg.name, "variant": t.label, "trial": t.name}  # noqa: E731
    todo: list[Trial] = []
    for t in trials:
        if t.error is not None:
            t.result = {"status": "failed", "reason": t.error, "mlflow_run_id": record_failure(
                experiment, t.name, {**tags(t), "model": t.model, "task": t.task,
                                     "seed": str(t.seed)}, t.error)}
            progress.add("failed")
        elif t.config_hash in final:
            t.result = {"status": "skipped", "mlflow_run_id": final[t.config_hash]}
            progress.add("skipped")
        else:
            todo.append(t)
    progress.show("planned")
    if todo:
        _fan_out(cfg, todo, path, out, uri, (address, cpus), progress, tags, FAMILIES)
    summary = {"schema_version": SCHEMA_VERSION, "sweep": cfg.name, "experiment": experiment,
               "tracking_uri": uri, "wall_time_s": round(time.perf_counter() - t0, 3),
               "counts": dict(progress.counts),
               "trials": [{"trial": t.name, "model": t.model, "task": t.task, "seed": t.seed,
                           "overrides": t.overrides, "config_hash": t.config_hash, **t.result}
                          for t in trials]}
    write_json_atomic(out / "summary.json", summary)
    return summary


def _fan_out(cfg, todo: list[Trial], path: Path, out: Path, uri: str, cluster, progress,
             tags, families) -> None:
    ray = _start_ray(*cluster, uri, cfg.threads)
    try:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        refs = {}
        pending = list(todo)
        limit = cfg.max_concurrent or len(todo)
        while pending or refs:
            while pending and len(refs) < limit:
                t = pending.pop(0)
                fam = families[t.params.models[t.model].family]
                use_gpu = cfg.gpu if cfg.gpu is not None else \
                    (gpus and not fam.cpu_only and t.params.train.device != "cpu")
                job = {"params_path": str(Path(path).parent / cfg.params), "overrides":
                       t.overrides, "task": t.task, "model": t.model, "seed": t.seed,
                       "out": str(out / t.config_hash[:12]), "stage": f"sweep:{cfg.name}",
                       "tags": tags(t)}
                task = ray.remote(_run_trial).options(num_cpus=cfg.threads,
                                                      num_gpus=1 if use_gpu else 0)
                refs[task.remote(job)] = t
                progress.add("running")
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                t = refs.pop(ref)
                t.result = ray.get(ref)
                progress.add("running", -1)
                progress.add("failed" if t.result["status"] == "failed" else "done")
                progress.show(f"{t.name}: {t.result['status']}")
    finally:
        ray.shutdown()
