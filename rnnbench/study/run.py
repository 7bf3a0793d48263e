"""Controlled experiments and the memory-length study: sets of ordinary tracked training runs.

A study is a list of variants (each a list of `--set` overrides on top of params.yaml) crossed
with models and seeds; every run goes through `training.run.run_training`, the one training loop,
and is an ordinary MLflow run tagged study/variant/kind. `run_study` writes one folder per run,
out/<variant-slug>/<model>/seed<k>/ (result.json, metrics.json, curves.csv, model.pt,
probes.json), then out/summary.json (its schema: rnnbench.study.schema.StudySummary),
atomically, only once every run has finished: an exception midway leaves no summary.json. A
diverged run is a result (status 'diverged').

Gradient figures come from probes.json, not from MLflow: the probe at initialisation gives the
decay of ||dL/dh_t|| per step, its horizons and the ratio at the longest lag (> 1: the gradient
grows back through time); the probe after training adds the median/max of the pre-clipping
global gradient norm over the validation round it ran in. Per-step norms stay in MLflow only
(summary.json gives each run's id); reading them back would tie the summary to the store.

The `studies:` section of params.yaml (a mapping name -> StudyConfig) holds the quick
profile's studies; profiles/full-studies.yaml holds the full ones. Every variant is validated
with load_params before the first run; an error names `studies.<name>.variants.<label>` and
the override that broke it.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

from rnnbench.config import ConfigError
from rnnbench.params import load_params
from rnnbench.study.schema import SUMMARY_SCHEMA_VERSION, StudyConfig, StudySummary, slug
from rnnbench.training.pool import run_jobs

CURVE = "l0_fwd"  # the probes' headline curve: layer 1, forward direction
def load_studies(params_path: str | Path) -> dict[str, StudyConfig]:
    return load_params(params_path).studies or {}


def _params(params_path: Path, overrides: list[str]):
    return load_params(params_path, overrides)


def lookup(params, key: str, model: str | None = None) -> Any:
    """The value at dotted `key` ('{model}' substituted) in validated params."""
    node: Any = params.model_dump(mode="json", by_alias=True)
    for part in key.replace("{model}", model or "").split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def validate_study(params_path: str | Path, name: str) -> tuple[StudyConfig, dict[str, Any]]:
    """(the study, {label: its params}); every override applied and validated, every model
    known and able to serve the task, x resolvable. Raises ConfigError, one line."""
    from rnnbench.models.families import serves
    from rnnbench.tasks.registry import get_task

    params_path = Path(params_path)
    studies = load_studies(params_path)
    if name not in studies:
        raise ConfigError(f"{params_path}: studies.{name}: no such study "
                          f"(defined: {', '.join(studies) or 'none'})")
    study = studies[name]
    _params(params_path, [])  # the file itself first: its errors are not a variant's
    where = f"{params_path}: studies.{name}"
    out = {}
    for label, own in [("", []), *study.variants.items()]:  # "": the common overrides alone
        here = f"{where}.variants.{label}" if label else f"{where}.common"
        overrides = [*study.common, *own]
        try:
            params = _params(params_path, overrides)
        except ConfigError:
            for i in range(len(overrides)):  # name the first override that breaks it
                try:
                    _params(params_path, overrides[:i + 1])
                except ConfigError as exc:
                    raise ConfigError(f"{here}: override {overrides[i]!r}: {exc}") from None
            raise
        if not label:
            continue
        try:
            task = get_task(study.task)
            spec = task.spec(params.task(study.task))
        except (ConfigError, KeyError, ValueError) as exc:
            raise ConfigError(f"{where}.task = {study.task!r}: {exc}") from None
        for m in study.models:
            if m not in params.models:
                raise ConfigError(f"{where}.models: unknown model {m!r} "
                                  f"(defined in models: {', '.join(params.models)})")
            if not serves(params.models[m], spec):
                raise ConfigError(f"{where}.models: {m!r} ({params.models[m].family}) cannot "
                                  f"serve task {study.task!r} ({spec.shape})")
            if study.x:
                try:
                    lookup(params, study.x, m)
                except KeyError:
                    raise ConfigError(f"{where}.x = {study.x!r}: no such key in the params of "
                                      f"variant {label!r}, model {m!r}") from None
        out[label] = params
    return study, out


# ---------------------------------------------------------------- summaries
def _num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _fig(probe: dict | None, loss: str) -> dict | None:
    if probe is None:
        return None
    f = probe["figures"]
    ratio = probe["gradients"][loss]["curves"].get(CURVE, {}).get("ratio", [])
    end = next((v for v in reversed(ratio) if v is not None), None)
    return {"decay_factor": _num(f.get(f"{loss}.{CURVE}.decay_factor")),
            "horizon": {f"{t:g}": f.get(f"{loss}.{CURVE}.horizon@{t:g}")
                        for t in probe.get("thresholds", [])},
            "end_ratio": _num(end), "sigma_max": _num(f.get(f"{CURVE}.w_hh.sigma_max"))}


def grad_figures(probes: list[dict]) -> dict:
    """The gradient figures of one run from its probes.json (see the module docstring)."""
    if not probes:
        return {"loss": None, "init": None, "trained": None}
    losses = list(probes[0]["gradients"])
    loss = "final" if "final" in losses else losses[0]
    init = next((p for p in probes if p["step"] == 0), None)
    later = [p for p in probes if p["step"] > 0]
    trained = max(later, key=lambda p: (p["step"], p["checkpoint"])) if later else None
    fig = _fig(trained, loss)
    if fig is not None:
        fig.update(step=trained["step"], train_grad_norm=trained.get("train_grad_norm") or None)
    return {"loss": loss, "init": _fig(init, loss), "trained": fig}


def slim_probes(probes: list[dict]) -> list[dict]:
    """probes.json without the bulky parts: the l0_fwd ratio curves and the flat figures."""
    return [{"step": p["step"], "checkpoint": p["checkpoint"], "cell": p["cell"],
             "seq_len": p["seq_len"], "thresholds": p["thresholds"], "figures": p["figures"],
             "gradients": {loss: {"curves": {CURVE: {"ratio": g["curves"][CURVE]["ratio"]}}}
                           for loss, g in p["gradients"].items() if CURVE in g["curves"]}}
            for p in probes]


def best_value(curves: list[dict], key: str, higher: bool) -> float | None:
    """The best finite value of column `key` over a run's curve rows (read from curves.csv)."""
    vals = [float(r[key]) for r in curves if r.get(key) not in (None, "")]
    vals = [v for v in vals if math.isfinite(v)]
    return (max(vals) if higher else min(vals)) if vals else None


def run_record(m: dict, probes: list[dict], params, label: str, x_value: Any, path: str,
               curves: list[dict] | None = None) -> dict:
    t = params.train.with_overrides(params.task(m["task"]).train)
    metric = m["metric"]
    return {
        "variant": label, "slug": slug(label), "x_value": x_value, "model": m["model"],
        "family": m["family"], "seed": m["seed"], "path": path,
        "mlflow_run_id": m["mlflow_run_id"], "status": m["status"],
        "diverged_at_step": m["diverged_at_step"], "reason": m["reason"], "metric": metric,
        "higher_is_better": m["higher_is_better"], "solved_threshold": m["solved_threshold"],
        "test_metric": _num(m["test"].get(metric)) if m["status"] == "ok" else None,
        "val_metric": _num(m["val"].get(metric)),
        "baseline": _num(m["baseline"].get(metric)), "baselines": m["baseline"],
        "solved": bool(m["solved"]), "steps": m["steps"], "steps_to_solve": m["steps_to_solve"],
        "time_to_solve_s": m["time_to_solve_s"], "train_time_s": m["train_time_s"],
        "clipped_fraction": m["clipped_fraction"],
        "train": {"optimizer": t.optimizer, "lr": t.lr, "clip": t.clip,
                  "clip_value": t.clip_value},
        "model_config": m["model_config"], "n_params": m["n_params"], "facts": m["facts"],
        "train_metric": _num((m.get("train_eval") or {}).get(metric)),
        "best_val_metric": best_value(curves or [], f"val_{metric}", m["higher_is_better"]),
        "grad": grad_figures(probes),
        "probes": slim_probes(probes),
    }


def _run_one(job: dict) -> dict:
    """One study run (a job built by run_study) -> its summary record."""
    from rnnbench.training.run import run_training

    rel = job["path"]
    params = _params(job["params_path"], job["overrides"])  # validated by run_study already
    m = run_training(params, job["task"], job["model"], job["seed"], job["out"] / rel,
                     data_dir=None, stage=job["stage"], tags=job["tags"])
    probes = json.loads((job["out"] / rel / "probes.json").read_text(encoding="utf-8"))
    with (job["out"] / rel / "curves.csv").open(encoding="utf-8") as f:
        curves = list(csv.DictReader(f))
    return run_record(m, probes, params, job["tags"]["variant"], job["x_value"], rel, curves)


def run_study(params_path: str | Path, name: str, out: Path, stage: str = "cli") -> dict:
    """Run every variant x model x seed of studies.<name>; write out/ whole (the runs' folders
    and summary.json) once every run has finished; return the summary."""
    from rnnbench.io import atomic_dir, check_output_dir, write_result

    study, variants = validate_study(params_path, name)  # before anything is written
    out = Path(out)
    check_output_dir(out, "study")
    with atomic_dir(out, kind="study") as tmp:
        summary = _run_jobs(study, variants, params_path, name, tmp, stage)
        write_result(tmp / "summary.json", StudySummary, summary)
    return summary


def _run_jobs(study: StudyConfig, variants: dict, params_path, name: str, out: Path,
              stage: str) -> dict:
    t0 = time.perf_counter()
    jobs, described = [], []
    for label, params in variants.items():
        own = study.variants[label]
        x0 = lookup(params, study.x, study.models[0]) if study.x else None
        described.append({"label": label, "slug": slug(label),
                          "overrides": [*study.common, *own], "x_value": x0})
        for model in study.models:
            x_value = lookup(params, study.x, model) if study.x else None
            jobs += [{"params_path": params_path, "overrides": [*study.common, *own],
                      "task": study.task, "model": model, "seed": seed,
                      "out": out, "path": f"{slug(label)}/{model}/seed{seed}", "stage": stage,
                      "x_value": x_value,
                      "tags": {"study": name, "variant": label, "kind": study.kind,
                               "study_processes": str(study.processes)}}
                     for seed in study.seeds]
    runs = run_jobs(_run_one, jobs, study.processes)
    summary = {"schema_version": SUMMARY_SCHEMA_VERSION, "study": name, "kind": study.kind,
               "task": study.task, "x": study.x, "models": study.models, "seeds": study.seeds,
               "params_path": str(params_path), "stage": stage,
               "wall_time_s": round(time.perf_counter() - t0, 3),
               "processes": study.processes, "variants": described,
               "runs": runs}
    return summary
