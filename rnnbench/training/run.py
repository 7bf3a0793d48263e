"""One tracked training run: data -> model -> fit -> files + MLflow. Used by the DVC train
stage, `rnnbench train` and the studies, so all produce the same outputs."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path

import torch

from rnnbench.config import ConfigError
from rnnbench.io import atomic_dir, check_output_dir, write_json_atomic, write_result
from rnnbench.models.build import build_model
from rnnbench.models.families import family, param_count, resolve_width, why_not
from rnnbench.models.recurrent import RecurrentNet
from rnnbench.probes.unrolled import can_unroll
from rnnbench.tasks.data import data_config, make_data, read_data
from rnnbench.tasks.registry import get_task
from rnnbench.tracking import Tracker, run_name
from rnnbench.training.encode import DTYPES, encode_inputs, encode_targets
from rnnbench.training.evaluate import length_points, memory_gates, train_split_metrics
from rnnbench.training.fit import fit, planned_steps, resolve_device
from rnnbench.training.schema import RUN_SCHEMA_VERSION, RunResult, RunScalars

# result.json: the whole record (configs, facts, baseline, breakdowns, beyond-test evaluations);
# metrics.json: only the scalars a user compares across runs (DVC's metrics file).
OUTPUTS = ("result.json", "metrics.json", "curves.csv", "model.pt", "probes.json",
           "showcase.json")


def _round(v: float, digits: int) -> float:
    return float(f"{v:.{digits}g}")


def scalar_metrics(result: dict) -> dict:
    """metrics.json of a run's record: the test metric, solved, steps, the step it was solved
    at, training time, time to solve and parameters, rounded to what a table shows (result.json
    keeps the exact values); unknowns left out. Short names: `dvc metrics show` is one table
    of every run's keys side by side."""
    test = result["test"].get(result["metric"])
    out = {"test": _round(test, 6) if test is not None and math.isfinite(test) else None,
           "solved": bool(result["solved"]),
           "steps": result["steps"], "solve_at": result["steps_to_solve"],
           "train_s": None if result["train_time_s"] is None
           else round(result["train_time_s"], 2),
           "solve_s": None if result["time_to_solve_s"] is None
           else round(result["time_to_solve_s"], 2),
           "params": result["n_params"]}
    return {k: v for k, v in out.items() if v is not None}


def curves_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def attach_probes(cfg, model, spec, splits, train_cfg):
    """The gradient probes' fit callback, or None; its start() probes the untrained model.
    Probes read a recurrent core's state gradients through its unrolled graph: encoder-decoders
    and cores that cannot be unrolled (the state-free scans) are not probed."""
    if cfg is None or not isinstance(model, RecurrentNet):
        return None
    if not can_unroll(model.core):
        return None
    from rnnbench.probes.gradients import ProbeCallback

    dtype = DTYPES[train_cfg.dtype]
    data = splits[cfg.split]
    x = encode_inputs(data["x"][:cfg.batch_size], spec, dtype)  # run_probe moves it to the model
    y = encode_targets(data["y"][:cfg.batch_size], spec, dtype)
    return ProbeCallback(model, spec, x, y, cfg, planned_steps(len(splits["train"]["y"]),
                                                                train_cfg, spec))


def probe_metrics(results: list[dict]) -> dict[str, float]:
    """Numeric probe figures at initialisation and after training, named for MLflow."""
    out = {}
    for r in results:
        stage = "init" if r["step"] == 0 else "trained"
        for k, v in r["figures"].items():
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                out[f"probe.{stage}.{k}".replace("@", "_at_")] = float(v)
    return out


def run_identity(params, task_name: str, model_name: str, seed: int) -> dict:
    """Everything that determines a run's result: the task's data config, the model's config
    at the width a parameter budget chooses, the training config with the task's overrides,
    the seeds and the probes. Its hash (config_hash) tags the run, so a sweep can tell a
    configuration already trained."""
    task_cfg = params.task(task_name)
    spec = get_task(task_name).spec(task_cfg)
    return {"task_name": task_name, "task": data_config(task_cfg),
            "model": resolve_width(params.model(model_name), spec).model_dump(mode="json"),
            "train": params.train.with_overrides(task_cfg.train).model_dump(mode="json"),
            "seed": seed, "data_seed": params.data.seed,
            "probe": params.probe.model_dump(mode="json") if params.probe else None}


def config_hash(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def check_run(params, task_name: str, model_name: str, source: str | None = None) -> None:
    """A ConfigError before any work where the model cannot serve the task or cannot run on
    train.device (cuda without CUDA, or a CPU-only model); source: the params file, named
    first in the message."""
    task_cfg, model_cfg = params.task(task_name), params.model(model_name)
    spec = get_task(task_name).spec(task_cfg)
    try:
        reason = why_not(model_cfg, spec)
        if reason is not None:
            raise ConfigError(f"model {model_name!r} ({model_cfg.family}) cannot serve task "
                              f"{task_name!r} ({spec.shape}): {reason}")
        resolve_device(params.train.with_overrides(task_cfg.train).device,
                       family(model_cfg).cpu_only)
    except ConfigError as exc:
        if source is None:
            raise
        raise ConfigError(f"{source}: {exc}") from None


def run_training(params, task_name: str, model_name: str, seed: int, out: Path,
                 data_dir: Path | None = None, stage: str = "cli",
                 tags: dict[str, str] | None = None) -> dict:
    """Train one (model, task, seed); write OUTPUTS into `out`: probes.json holds the gradient
    probes at params.probe's checkpoints (an empty list when params.probe is null),
    showcase.json the task's qualitative output of the trained model (or null)."""
    check_run(params, task_name, model_name)
    task, task_cfg = get_task(task_name), params.task(task_name)
    spec = task.spec(task_cfg)
    model_cfg = params.model(model_name)
    check_output_dir(out, "train")  # before any work: never replace what is not ours
    model_cfg = resolve_width(model_cfg, spec)  # the width a parameter budget chooses
    splits, meta = read_data(params, task_name, data_dir) if data_dir else \
        make_data(params, task_name)
    train_cfg = params.train.with_overrides(task_cfg.train)
    fam = family(model_cfg)
    torch.manual_seed(seed)
    model = build_model(model_cfg, spec)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == param_count(model_cfg, spec), "parameter count disagrees with closed form"

    tags = {"task": task_name, "model": model_name, "family": model_cfg.family,
            "seed": str(seed), "dvc_stage": stage, "data_sha256": meta["sha256"],
            "device": train_cfg.device,
            "config_hash": config_hash(run_identity(params, task_name, model_name, seed)),
            **(tags or {})}
    run_params = {"task": data_config(task_cfg), "model": model_cfg.model_dump(mode="json"),
                  "train": train_cfg.model_dump(mode="json"), "seed": seed,
                  "data_seed": params.data.seed, "n_params": n_params}
    with Tracker(params.experiment, run_name(model_name, task_name, seed, tags), tags,
                 run_params, source=stage) as tracker:
        tracker.log_dataset(task_name, meta["sha256"],
                            {"path": str(data_dir) if data_dir else "generated in memory",
                             "task": task_name, "data_seed": params.data.seed},
                            {"sizes": meta.get("sizes", {})})
        def on_epoch(row: dict, series: dict) -> None:
            tracker.log_series(series, first_step=row["step"] - len(series["train_loss"]) + 1)
            # train_loss is logged per step above; the row's epoch mean would collide with it
            tracker.log_metrics({k: v for k, v in row.items()
                                 if k not in ("epoch", "step", "train_loss")}, step=row["step"])

        probe = attach_probes(params.probe, model, spec, splits, train_cfg)
        callbacks = [on_epoch] + ([probe] if probe else [])
        result = fit(model, spec, lambda p, y: task.metrics(task_cfg, p, y), splits, train_cfg,
                     seed, cpu_only=fam.cpu_only, on_start=probe.start if probe else None,
                     on_epoch=lambda row, series: [cb(row, series) for cb in callbacks])
        if probe:
            probe.finish(result.steps)
            tracker.log_metrics(probe_metrics(probe.results), step=result.steps)
        device = next(model.parameters()).device
        test_value = result.test.get(spec.metric, float("nan"))
        ok = result.status == "ok"
        breakdowns = task.breakdowns(task_cfg, result.test_pred, splits["test"]) if ok else {}
        showcase = task.showcase(task_cfg, model, splits, seed) if ok else None
        # beyond the test split (rnnbench/training/evaluate.py): the train/validation gap, the
        # same weights at 2x and 4x the length T, the keep gates over the memory spans
        train_eval = train_split_metrics(model, task, task_cfg, spec, splits, train_cfg) \
            if ok else {}
        lengths = length_points(model, model_cfg, task, task_cfg, spec, params.data.seed,
                                train_cfg) if ok else None
        gates = memory_gates(model, task, task_cfg, spec, splits) if ok else None
        metrics = {
            "schema_version": RUN_SCHEMA_VERSION, "task": task_name, "model": model_name,
            "family": model_cfg.family, "facts": fam.facts(model_cfg), "seed": seed,
            "stage": stage,
            "model_config": model_cfg.model_dump(mode="json"), "task_config": data_config(task_cfg),
            "mlflow_run_id": tracker.run_id, "git_commit": tracker.commit, **result.summary(),
            "metric": spec.metric, "higher_is_better": spec.higher_is_better,
            "claims": list(spec.claims), "definition": spec.definition,
            "solved_threshold": spec.solved_threshold,
            "solved": result.status == "ok" and spec.is_solved(test_value),
            "baseline": meta["baseline"], "n_params": n_params, "device": str(device),
            "dtype": train_cfg.dtype,
            "data_sha256": meta["sha256"], "breakdowns": breakdowns,
            "train_eval": train_eval, "lengths": lengths, "gates": gates,
        }
        tracker.log_metrics({f"test_{k}": v for k, v in result.test.items()}
                            | {"train_time_s": result.train_time_s, "n_params": n_params,
                               "compile_s": result.compile_s,
                               "solved": float(metrics["solved"])}, step=result.steps)
        tracker.set_tags({"status": result.status, "device": str(device)})
        with atomic_dir(out, kind="train") as tmp:
            write_result(tmp / "result.json", RunResult, metrics)
            write_result(tmp / "metrics.json", RunScalars, scalar_metrics(metrics))
            (tmp / "curves.csv").write_text(curves_csv(result.curves), encoding="utf-8")
            torch.save(model.state_dict(), tmp / "model.pt")
            write_json_atomic(tmp / "probes.json", probe.results if probe else [])
            write_json_atomic(tmp / "showcase.json", showcase)
            for name in OUTPUTS:  # from this run's private folder, never from a shared `out`
                tracker.log_artifact(tmp / name)
        tracker.end(failed=result.status != "ok", reason=result.reason)
    return metrics
