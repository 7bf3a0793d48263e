"""A grid block (params.yaml grid.blocks.<name>): every (model, task, seed) run it lists, each an
ordinary tracked run through training.run.run_training, `grid.processes` at a time.

Layout: out/<model>/<task>/seed<k>/ holds a run's result.json, curves.csv, model.pt,
probes.json and showcase.json; its slim metrics.json (the scalars `dvc metrics show` lists) goes
to metrics_out/<model>/<task>/seed<k>.json, a folder of its own, because DVC declares metrics
files apart from cached outputs. Both folders are written whole once every run has finished: a
failed or stopped run leaves the previous results of the block as they were.
"""

from __future__ import annotations

from pathlib import Path

from rnnbench.config import ConfigError
from rnnbench.params import load_params
from rnnbench.training.pool import run_jobs

RUNS_KIND, METRICS_KIND = "train block", "train block metrics"


def block_runs(params, name: str) -> list[tuple[str, str, int]]:
    if name not in params.grid.blocks:
        raise ConfigError(f"grid.blocks: no block {name!r} (blocks: "
                          f"{', '.join(params.grid.blocks)})")
    return params.grid.block_runs(params.grid.blocks[name])


def _run_one(job: dict) -> str:
    """One run of a block (a job built by run_block) -> its folder, relative to the block's."""
    from rnnbench.training.run import run_training

    params = load_params(job["params_path"], job["overrides"])  # validated by run_block already
    model, task, seed = job["run"]
    data = Path(job["data"]) / task if job["data"] else None
    run_training(params, task, model, seed, job["out"] / job["path"], data_dir=data,
                 stage=job["stage"], tags={"block": job["block"],
                                           "block_processes": str(job["processes"])})
    return job["path"]


def run_block(params_path: str | Path, overrides: list[str], name: str, out: Path,
              metrics_out: Path, data: Path | None, stage: str = "cli") -> list[str]:
    """Train block `name`; write out/ and metrics_out/ whole; return the runs' folders."""
    from rnnbench.io import atomic_dir, check_output_dir
    from rnnbench.params import params_source
    from rnnbench.training.run import check_run

    params = load_params(params_path, overrides)
    runs = block_runs(params, name)
    for model, task in sorted({(m, t) for m, t, _ in runs}):  # before any worker starts
        check_run(params, task, model, params_source(params_path, overrides))
    for task in sorted({t for _, t, _ in runs}):
        if data is not None and not (Path(data) / task).is_dir():
            raise ConfigError(f"--data {data}: no folder {task}/ (run the data stage: "
                              f"dvc repro data@{task})")
    out, metrics_out = Path(out), Path(metrics_out)
    check_output_dir(out, RUNS_KIND)
    check_output_dir(metrics_out, METRICS_KIND)
    processes = min(params.grid.processes, len(runs))
    with atomic_dir(out, kind=RUNS_KIND) as tmp, \
            atomic_dir(metrics_out, kind=METRICS_KIND) as mtmp:
        jobs = [{"params_path": str(params_path), "overrides": list(overrides), "run": run,
                 "data": str(data) if data is not None else None, "out": tmp,
                 "path": f"{run[0]}/{run[1]}/seed{run[2]}", "stage": stage, "block": name,
                 "processes": processes} for run in runs]
        folders = run_jobs(_run_one, jobs, processes)
        for folder in folders:
            dest = mtmp / f"{folder}.json"
            dest.parent.mkdir(parents=True, exist_ok=True)
            (tmp / folder / "metrics.json").rename(dest)
    return folders
