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

from benchmark.errors import Preempted
from benchmark.runner.execute import failed_results
from benchmark.runner.loop import Progress, execute_unit, run_concurrently
from benchmark.training.resume import EXIT_TERMINATED, STOP


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """The torch threads a worker gets when the run does not say: the CPUs shared out."""
    return max(1, usable_cpus() // workers)


def run_in_processes(units, store, options, progress, summary) -> None:
    worker_options = replace(options, threads=options.threads or threads_per_worker(options.workers))
    pool = ProcessPoolExecutor(
        min(options.workers, len(units)) or 1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
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
            lambda cells: pool.submit(_worker_unit, cells, worker_options),
            _next_done,
            options,
        )
    except (KeyboardInterrupt, Preempted):
        workers = list((pool._processes or {}).values())  # a public terminate_workers() is Python 3.14+
        for process in workers:
            process.terminate()  # SIGTERM: a cell in training saves its state at its next batch, then exits
        for process in workers:
            process.join(WORKER_SAVE_SECONDS)  # before this process ends, which kills them (start_worker)
        raise
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)  # pending is left only when interrupted


WORKER_SAVE_SECONDS = 60  # how long an interrupted run waits for its workers to save their cells' states


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def start_worker(parent: int) -> None:
    """Worker start: save a training cell's state on SIGTERM (training/resume.py), and end this process when
    the run that started it ends."""
    STOP.install(exit_when_idle=True)
    die_with_parent(parent)


def _worker_unit(cells, options):
    """A unit in a worker; a worker asked to stop ends once its cell has saved its state."""
    try:
        return execute_unit(cells, options, Progress())
    except Preempted:
        os._exit(EXIT_TERMINATED)


def die_with_parent(parent: int) -> None:
    """End this process when the run that started it ends, however it ends (kill -9 included); otherwise a
    killed run leaves its workers training cells nobody will store."""
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
