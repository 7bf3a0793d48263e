"""speed.json, speed.csv, metrics.json and the MLflow runs of a speed benchmark (one run per grid
and device)."""

from __future__ import annotations

import csv
import io
import statistics
from contextlib import ExitStack
from pathlib import Path

from rnnbench.io import atomic_dir, write_json_atomic, write_result
from rnnbench.speed.schema import SpeedResult
from rnnbench.tracking import Tracker

ID_COLUMNS = ("index", "key", "family", "cell", "hidden", "batch", "seq_len", "input_size",
              "layers", "bidirectional", "device", "dtype", "impl", "kernel", "optimizer",
              "params")
STAT_COLUMNS = ("forward_ms", "train_step_ms", "latency_b1_ms")
SCALAR_COLUMNS = ("train_seq_per_s", "train_steps_per_s", "train_gflops", "forward_gflops",
                  "matmul_fraction", "peak_mem_mib")
NUMBA_STATS = ("torch_train_step_ms", "numba_train_step_ms", "speedup", "torch_forward_ms",
               "numba_forward_ms", "forward_speedup")
NUMBA_SCALARS = ("numba_gflops", "matmul_fraction")


def config_row(c: dict) -> dict:
    """One CSV row (and one MLflow step): medians, with each IQR beside its median."""
    row = {k: c[k] for k in ID_COLUMNS}
    for k in STAT_COLUMNS:
        row[k], row[f"{k}_iqr"] = c[k]["median"], c[k]["iqr"]
    row.update({k: c[k] for k in SCALAR_COLUMNS})
    row["compile_s"] = c["compile_s"]
    return row


def csv_text(configs: list[dict]) -> str:
    rows = [config_row(c) for c in configs]
    buf = io.StringIO()
    fields = list(rows[0]) if rows else list(ID_COLUMNS)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def models_series(configs: list[dict]) -> tuple[int, dict[str, list[float]]]:
    """(first step, metric -> values) for configs that are contiguous in speed.json."""
    metrics = [f"{k}" for k in STAT_COLUMNS] + [f"{k}_iqr" for k in STAT_COLUMNS] + \
        list(SCALAR_COLUMNS)
    rows = [config_row(c) for c in configs]
    return configs[0]["index"], {m: [float(r[m]) for r in rows] for m in metrics}


def numba_series(points: list[dict]) -> dict[str, list[float]]:
    series = {k: [float(p[k]["median"]) for p in points] for k in NUMBA_STATS}
    series.update({k: [float(p[k]) for p in points] for k in NUMBA_SCALARS})
    return series


HEADLINE_RATIOS = ("gru/lstm",)  # the training-step ratio a claim is decided on (report/speed.py)


def scalar_metrics(data: dict) -> dict:
    """metrics.json (DVC's metrics file): the two scalars compared across experiments, the
    machine's matmul rate (GFLOP/s, CPU or else the first device) and the median over shapes of
    the GRU/LSTM training step time ratio, as shipped; speed.json keeps every measurement.
    `dvc metrics show` is one table of every file's keys: these stay few and short."""
    rates = data["matmul"]
    device = "cpu" if "cpu" in rates else next(iter(rates), None)
    out: dict = {"gflops": round(rates[device]["rate_gflops"], 2)} if device else {}
    for name in HEADLINE_RATIOS:
        vals = [r["median"] for r in data["ratios"] if r["name"] == name
                and r["quantity"] == "train_step" and r.get("impl", "default") == "default"]
        if vals:
            out[name] = round(statistics.median(vals), 3)
    return out


def _runs(data: dict) -> list[tuple[str, str, int, dict[str, list[float]], dict[str, float]]]:
    """(grid, device, first step, series, single values) of every MLflow run to log."""
    runs = []
    for device, rate in data["matmul"].items():
        configs = [c for c in data["configs"] if c["device"] == device]
        single = {"matmul_gflops": rate["rate_gflops"]}
        if configs:
            first, series = models_series(configs)
            compile_s = (data.get("numba_compile") or {}).get("compile_s")
            if device == "cpu" and compile_s is not None:
                single["numba_compile_s"] = compile_s
            runs.append(("models", device, first, series, single))
        if device == "cpu" and data["numba_vs_torch"]:
            runs.append(("numba", device, 0, numba_series(data["numba_vs_torch"]), single))
    return runs


def log_and_write(data: dict, out: Path, experiment: str, stage: str) -> None:
    """Log the runs, add their ids to `data`, write out/ (speed.csv, speed.json, metrics.json)
    atomically, attach the JSON to every run. Any failure marks the open runs FAILED and writes
    nothing."""
    env = data["environment"]
    tags = {"kind": "speed", "stage": stage, "cpu_model": str(env["cpu_model"]),
            "gpu_name": str(env["gpu_name"]), **{k: str(v) for k, v in env["threads"].items()}}
    with ExitStack() as stack:
        trackers = []
        for grid, device, first, series, single in _runs(data):
            t = stack.enter_context(Tracker(
                experiment, run_name=f"speed-{grid}-{device}",
                tags={**tags, "device": device, "grid": grid}, params=data["config"],
                source=stage))
            t.log_series(series, first_step=first)
            t.log_metrics(single)
            trackers.append(t)
            data.setdefault("mlflow_runs", {})[f"{grid}/{device}"] = t.run_id
        data.setdefault("mlflow_runs", {})
        with atomic_dir(out, kind="speed") as tmp:
            (tmp / "speed.csv").write_text(csv_text(data["configs"]), encoding="utf-8")
            write_result(tmp / "speed.json", SpeedResult, data)
            write_json_atomic(tmp / "metrics.json", scalar_metrics(data))
            for t in trackers:  # from the private folder, never from a shared `out`
                t.log_artifact(tmp / "speed.json")
