"""Tracked runs on forked workers, for the train stages' grid blocks and the studies: each
worker trains one run at a time, single-threaded; a stopped parent stops its workers, and each
ends its run KILLED in the tracking store.

Results do not depend on the number of workers: every run is seeded and runs alone in its
process (threads pinned by the command); only its wall times share the machine.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

_STOPPING = []  # in a worker: the signal that stopped it
_IN_JOB = []  # in a worker: the job it runs now
STOP_GRACE_S = 10.0  # a stopped worker's time to end its run KILLED before SIGKILL


def _worker_init() -> None:
    def stop(signum, _frame):
        if signum == signal.SIGALRM:  # the re-raise armed below
            signum = _STOPPING[-1]
        else:
            _STOPPING.append(signum)
        if not _IN_JOB:  # idle, waiting for work: nothing to end, nothing to say
            os._exit(143)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    default_hook = sys.unraisablehook

    def swallowed(unraisable) -> None:
        # Python runs a signal handler wherever the main thread is, a finalizer or a weakref
        # callback (SQLAlchemy's) included; an exception raised there is printed with its
        # traceback and dropped, and the run would go on. Raise it again a moment later, once
        # the finalizer has returned (re-raising the signal here would land in this hook).
        if _STOPPING and isinstance(unraisable.exc_value, KeyboardInterrupt):
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            return
        default_hook(unraisable)

    sys.unraisablehook = swallowed
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(signum, stop)


def _run_in_worker(fn: Callable[[dict], dict], job: dict) -> dict | None:
    """fn(job) in a worker: SIGTERM or SIGINT ends the run KILLED (tracking.Tracker), then
    the worker at once, whatever error the interrupt surfaced as: the executor would catch
    even a SystemExit and hand the worker its next job."""
    _IN_JOB.append(job)
    try:
        return fn(job)
    finally:
        _IN_JOB.clear()
        if _STOPPING:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(143)


def run_jobs(fn: Callable[[dict], dict], jobs: list[dict], processes: int) -> list[dict]:
    """fn(job) for every job, in this process when `processes` is 1, else on that many forked
    workers (a job is plain data, fn a module-level function); results in job order."""
    if processes == 1:
        return [fn(job) for job in jobs]
    return _run_parallel(fn, jobs, processes)


def _run_parallel(fn: Callable[[dict], dict], jobs: list[dict], processes: int) -> list[dict]:
    """The jobs on `processes` forked workers, results in job order. When the parent stops (a
    failed run, Ctrl-C, SIGTERM) its workers get SIGTERM at once and each ends its run KILLED
    (_run_in_worker): leaving the executor's block alone would wait for the runs in flight.
    multiprocessing.Pool is no way out: its terminate() can wait forever on a queue lock that
    a worker stopped while idle still holds."""
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(processes, mp_context=ctx, initializer=_worker_init) as pool:
        try:
            return list(pool.map(functools.partial(_run_in_worker, fn), jobs))
        except BaseException:
            procs = list(pool._processes.values())  # no public handle on the workers
            for proc in procs:
                proc.terminate()
            deadline = time.monotonic() + STOP_GRACE_S
            for proc in procs:
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.kill()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
