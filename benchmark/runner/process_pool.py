"""Run a grid's cells (or packs) several at a time on this machine, each in its own process.

Small models use a few cores poorly: on 2 cores two single-threaded cells train more images per
second together than one cell with both threads (`bench perf train`, run (d)). Workers start with
spawn (no fork of a threaded parent), return results and write nothing; this process owns the store.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace

from benchmark.runner.execute import failed_results
from benchmark.runner.loop import Progress, execute_unit, run_concurrently


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_in_processes(units, store, options, progress, summary) -> None:
    worker_options = replace(options, threads=options.threads or max(1, usable_cpus() // options.workers))
    pool = ProcessPoolExecutor(
        min(options.workers, len(units)) or 1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )
    pending: dict = {}
    try:
        run_concurrently(
            units,
            store,
            progress,
            summary,
            pending,
            lambda cells: pool.submit(execute_unit, cells, worker_options, Progress()),
            _next_done,
        )
    except KeyboardInterrupt:
        for process in list((pool._processes or {}).values()):  # a public terminate_workers() is Python 3.14+
            process.terminate()  # cells in flight are left partial; the next run redoes them
        raise
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)  # pending is left only when interrupted


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Worker start: end this process when the run that started it ends, however it ends (kill -9
    included); otherwise a killed run leaves its workers training cells nobody will store."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the run ended before the line above took effect
        os._exit(1)


def _next_done(pending: dict):
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    future = next(iter(done))
    try:
        return future, future.result()
    except Exception as err:  # noqa: BLE001 - the worker died (killed, out of memory); its cells fail
        reason = f"worker process lost: {type(err).__name__}"
        return future, failed_results(pending[future], reason)
