"""The timing procedure: warm-up, adaptive samples, round-robin interleaving, summaries, memory.

A *sample* calls the function back to back until at least `min_sample_s` have passed, then
divides the elapsed time by the number of calls; `sync` (torch.cuda.synchronize on a GPU, a
no-op on the CPU) runs before the clock starts and after every call, so a sample never ends
while queued GPU work is still running. Interleaving takes sample i of every function before
sample i + 1 of any, so slow drift of the machine (other jobs, frequency scaling) lands on all
of them alike and cancels in per-sample ratios.
"""

from __future__ import annotations

import ctypes
import os
import statistics
import threading
import time
from collections.abc import Callable

import numpy as np


def _noop() -> None:
    pass


def summarize(samples: list[float]) -> dict:
    """Median, quartiles and interquartile range of raw samples, which are kept."""
    q25, q75 = (float(q) for q in np.percentile(samples, [25, 75]))
    return {"median": float(statistics.median(samples)), "q25": q25, "q75": q75,
            "iqr": q75 - q25, "samples": [float(s) for s in samples]}


def one_sample(fn: Callable[[], object], min_sample_s: float,
               sync: Callable[[], None] = _noop) -> tuple[float, int]:
    """(seconds per call, calls made): loop `fn` until at least min_sample_s have passed."""
    sync()
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        sync()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_sample_s:
            return elapsed / calls, calls


def interleave(fns: dict[str, Callable[[], object]], warmup: int, repeats: int,
               min_sample_s: float, sync: Callable[[], None] = _noop) -> dict[str, list[float]]:
    """Seconds per call of each function, `repeats` samples each, taken round-robin.

    Warm-up: `warmup` untimed calls of each function, also round-robin."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            out[name].append(one_sample(fn, min_sample_s, sync)[0])
    return out


def measure(fn: Callable[[], object], warmup: int, repeats: int, min_sample_s: float,
            sync: Callable[[], None] = _noop) -> list[float]:
    """Seconds per call, `repeats` samples, after `warmup` untimed calls."""
    return interleave({"fn": fn}, warmup, repeats, min_sample_s, sync)["fn"]


def ratio_samples(num: list[float], den: list[float]) -> list[float]:
    """Per-sample ratios of two interleaved series (sample i of each was taken side by side)."""
    return [a / b for a, b in zip(num, den, strict=True)]


def ms(samples_s: list[float]) -> dict:
    return summarize([1e3 * s for s in samples_s])


# ---------------------------------------------------------------- memory
def _rss_bytes() -> int:
    """Resident set size of this process, from /proc (about 10 us), else psutil."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss


def _release_free_heap() -> None:
    """Hand memory that glibc keeps after free() back to the OS (malloc_trim), so a step's
    allocations show as RSS growth again; a no-op without glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def cpu_peak_growth_mib(fn: Callable[[], object], calls: int = 3, period_s: float = 5e-4) -> float:
    """Peak growth of process RSS over the RSS just before, while `fn` runs `calls` times.

    A thread samples RSS every `period_s` while the calls run (torch ops release the GIL, so it
    runs during them; a Numba kernel holds it, so growth inside one is seen when it returns and
    its outputs are still alive). Free heap is trimmed first, so what the step allocates and
    frees shows as growth; short spikes between two samples are missed, so this is a lower bound
    on the extra memory a step needs beyond the model, inputs and optimizer state.
    """
    fn()  # gradients exist from here on, as they do between real training steps
    _release_free_heap()
    base, peak, done = _rss_bytes(), [0], threading.Event()

    def sampler() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(period_s)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    try:
        for _ in range(calls):
            fn()
            peak[0] = max(peak[0], _rss_bytes())
    finally:
        done.set()
        thread.join()
    return max(0, peak[0] - base) / 2**20


def cuda_peak_mib(fn: Callable[[], object], device) -> float:
    """torch.cuda.max_memory_allocated during one call, over what was allocated before it."""
    import torch

    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


# ---------------------------------------------------------------- cross-check
def timer_check(fn: Callable[[], object], threads: int, warmup: int, repeats: int,
                min_sample_s: float, sync: Callable[[], None] = _noop,
                tolerance: float = 0.1, pairs_per_repeat: int = 4) -> dict:
    """Our timing against torch.utils.benchmark.Timer on the same callable; ratio = our median /
    Timer's median; ok when within `tolerance` of 1.

    The two take turns, sample by sample: one of ours (`one_sample`: n calls over at least
    `min_sample_s`), then one Timer block of the same n calls (Timer.timeit(n)), for
    repeats x pairs_per_repeat pairs. Taken once each, one after the other, the machine's drift
    between the two (another job starting on a shared CPU) lands on one side only and reads as
    a disagreement of 20-60% where the methods agree."""
    from torch.utils.benchmark import Timer

    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    for _ in range(warmup):
        fn()
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(repeats * pairs_per_repeat):
        per_call, calls = one_sample(fn, min_sample_s, sync)
        ours.append(per_call)
        theirs.append(timer.timeit(calls).median)  # seconds per call over one block
    ratio = statistics.median(ours) / statistics.median(theirs)
    return {"ours_ms": 1e3 * statistics.median(ours), "timer_ms": 1e3 * statistics.median(theirs),
            "ratio": ratio, "pairs": len(ours), "tolerance": tolerance,
            "ok": abs(ratio - 1) <= tolerance}
