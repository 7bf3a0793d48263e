"""What a speed result depends on: the hardware, library versions, threads, and the machine's own
matrix-multiply rate measured in the same run (the yardstick for achieved GFLOP/s)."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from rnnbench.speed.timing import measure, summarize

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
MATMUL_N = 1024  # square matmul side; 2*N^3 flops


def cpu_model() -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
        for line in text.splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment(threads: dict[str, int]) -> dict:
    import numba

    cuda = torch.cuda.is_available()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "gpu_name": torch.cuda.get_device_name(0) if cuda else None,
        "cuda_version": torch.version.cuda if cuda else None,
        "cudnn_version": torch.backends.cudnn.version() if cuda else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "threads": {**threads, "torch_interop_threads": torch.get_num_interop_threads()},
        "thread_env": {k: os.environ.get(k) for k in THREAD_ENV},  # None: the library's default
    }


@contextmanager
def native_thread_limits(threads: int) -> Iterator[list[dict]]:
    """Cap every loaded OpenMP and BLAS pool at `threads` while the benchmark runs; yields what
    is in force (threadpoolctl's view), or [] where threadpoolctl is not installed.

    torch.set_num_threads reaches torch's own pools only. The process also holds numpy's and
    scipy's OpenBLAS (scipy's serves Numba's np.dot) and the system libgomp of Numba's threading
    layer; left at their defaults (one thread per core), their idle workers spin and measured
    torch LSTM steps 200x slower on a 2-core machine. Load them all before calling this."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        yield []
        return
    with threadpool_limits(limits=threads):
        keep = ("user_api", "internal_api", "prefix", "num_threads", "version")
        yield [{k: p.get(k) for k in keep} for p in threadpool_info()]


def _gflops(samples_s: list[float], flops: float) -> dict:
    return summarize([flops / s / 1e9 for s in samples_s])


def matmul_rate(device: str, dtype: str, warmup: int, repeats: int, min_sample_s: float) -> dict:
    """GFLOP/s of an N x N @ N x N matmul: numpy (CPU only) and torch.mm on `device`.

    rate_gflops, the reference for matmul_fraction, is the best median: what this device's BLAS
    reaches at the pinned thread count (numpy's BLAS follows its own thread settings, recorded in
    environment.thread_env)."""
    n, flops = MATMUL_N, 2.0 * MATMUL_N**3
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen, dtype=getattr(torch, dtype)) for _ in range(2))
    out: dict = {"n": n, "dtype": dtype, "device": device}
    if device == "cpu":
        an, bn = a.numpy(), b.numpy()
        out["numpy_gflops"] = _gflops(measure(lambda: np.matmul(an, bn), warmup, repeats,
                                              min_sample_s), flops)
    a, b = a.to(device), b.to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    out["torch_gflops"] = _gflops(measure(lambda: torch.mm(a, b), warmup, repeats, min_sample_s,
                                          sync), flops)
    rates = [out[k]["median"] for k in ("numpy_gflops", "torch_gflops") if k in out]
    out["rate_gflops"] = max(rates)
    return out
