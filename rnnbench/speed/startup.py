"""Numba's start-up costs, measured apart from the steady-state timings.

- In process: the model's precompile() (JIT compile, or loading the on-disk cache) plus what its
  first training step costs beyond a warm one (first-call dispatch). Only the process's first
  Numba call pays it, so it is measured once, before any other Numba timing, on a tiny shape.
- Cached start: two child processes share a NUMBA_CACHE_DIR that starts empty. The first
  compiles and fills the cache, the second reuses it; each reports, on the wall clock shared
  with the parent, when it was spawned, when its imports were done and when its first and
  second training steps ended. "numba_work_s" = precompile + (first step - warm step): the Numba
  part of getting ready (compile or cache load); the target for the cached child is under 1 s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from rnnbench.speed.bench import Case, make_bench

TINY = Case("numba_rnn", hidden=8, batch=2, seq_len=3, input_size=4)
START_CASE = Case("numba_rnn", hidden=64, batch=16, seq_len=50, input_size=32)
CACHED_TARGET_S = 1.0

_CHILD = """
import json, sys, time
t_spawn = float(sys.argv[1])
t0 = time.time()
import torch
from rnnbench.speed.bench import Case, make_bench
t_import = time.time()
bench = make_bench(Case(**json.loads(sys.argv[2]), dtype=sys.argv[3]))
t_built = time.time()
bench.train_step()
t_first = time.time()
bench.train_step()
t_second = time.time()
print(json.dumps({"interpreter_s": t0 - t_spawn, "import_s": t_import - t0,
                  "build_s": t_built - t_import,  # includes importing numba and the kernels
                  "compile_s": bench.compile_s,
                  "first_step_s": t_first - t_built, "warm_step_s": t_second - t_first,
                  "to_first_step_s": t_first - t_spawn}))
"""


def compile_time(dtype: str) -> dict:
    """The Numba model's precompile plus its first training step beyond a warm one, in s."""
    from rnnbench.kernels.rnn import rnn_forward

    already = len(rnn_forward.signatures) > 0  # compiled (or loaded) earlier in this process
    bench = make_bench(dataclasses.replace(TINY, dtype=dtype))
    t0 = time.perf_counter()
    bench.train_step()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    bench.train_step()
    warm = time.perf_counter() - t0
    return {"first_call_s": first, "warm_call_s": warm, "precompile_s": bench.compile_s,
            "compile_s": bench.compile_s + max(0.0, first - warm),
            "compiled_earlier_in_process": already, "shape": TINY.key(), "dtype": dtype}


def _child_env(cache_dir: str, threads: int) -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])  # so the child imports this rnnbench
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir,
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    return env


def _run_child(cache_dir: str, threads: int, dtype: str, timeout_s: float) -> dict:
    args = {k: v for k, v in dataclasses.asdict(START_CASE).items() if k != "dtype"}
    cmd = [sys.executable, "-c", _CHILD, repr(time.time()), json.dumps(args), dtype]
    done = subprocess.run(cmd, env=_child_env(cache_dir, threads), capture_output=True,
                          text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"cached-start child failed ({done.returncode}): {done.stderr[-2000:]}")
    rec = json.loads(done.stdout.strip().splitlines()[-1])
    rec["numba_work_s"] = rec["compile_s"] + max(0.0, rec["first_step_s"] - rec["warm_step_s"])
    return rec


def cached_start(threads: int, dtype: str, timeout_s: float = 300.0) -> dict:
    """Time to the end of the first training step: empty cache, then the cache it filled."""
    with tempfile.TemporaryDirectory(prefix="rnnbench-numba-cache-") as cache:
        fresh = _run_child(cache, threads, dtype, timeout_s)
        cached = _run_child(cache, threads, dtype, timeout_s)
    return {"shape": START_CASE.key(), "dtype": dtype, "threads": threads,
            "fresh_cache": fresh, "cached": cached, "target_numba_work_s": CACHED_TARGET_S,
            "cached_meets_target": cached["numba_work_s"] < CACHED_TARGET_S,
            "torch_version": torch.__version__}
