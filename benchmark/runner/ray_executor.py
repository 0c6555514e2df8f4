"""Run a grid's cells (or packs) as Ray tasks. The driver owns the store: workers return results
and write nothing, so they need no shared filesystem. Each worker reads data sets and caches
from its own data and cache directories ($BENCH_DATA_DIR, $BENCH_CACHE_DIR, passed on from
the driver's environment); on a cluster, give every node the data there.

A task whose worker dies is retried once by Ray; a second loss records the cell as failed.
Ctrl-C cancels the tasks in flight; cells already stored stay done.
"""

from __future__ import annotations

import os

from benchmark.errors import BenchError, Preempted
from benchmark.runner.execute import CellResult, failed_results
from benchmark.runner.loop import Progress, execute_unit, run_concurrently

RAY_HINT = "the Ray executor needs the 'ray' extra: pip install 'cvae-bench[ray]' (or uv sync --extra ray)"
FORWARDED_ENV = ("BENCH_DATA_DIR", "BENCH_CACHE_DIR")


def _ray():
    # Under `uv run`, Ray would rebuild the environment in every worker from the project file,
    # without the extras (so without Ray); workers use this interpreter and its packages instead.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray
    except ImportError:
        raise BenchError(RAY_HINT) from None
    return ray


def _remote_unit(cells, options) -> list[CellResult]:
    return execute_unit(cells, options, Progress())


def run_on_ray(units, store, options, progress, summary) -> None:
    ray = _ray()
    started_here = not ray.is_initialized()
    if started_here:
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        ray.init(
            address=options.ray_address,
            num_cpus=None if options.ray_address else (options.ray_cpus or os.cpu_count()),
            runtime_env={"env_vars": env},
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    worker_options = _worker_options(options)
    remote = ray.remote(num_cpus=options.cpus_per_cell, num_gpus=options.gpus_per_cell, max_retries=1)(_remote_unit)
    pending = {}
    try:
        run_concurrently(
            units,
            store,
            progress,
            summary,
            pending,
            lambda cells: remote.remote(cells, worker_options),
            lambda pending: _next_done(ray, pending),
            options,
        )
    except (KeyboardInterrupt, Preempted):  # a cell in flight resumes from its last saved state
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()


def _next_done(ray, pending: dict):
    (ref,), _ = ray.wait(list(pending), num_returns=1)
    return ref, _results(ray, ref, pending[ref])


def _worker_options(options):
    from dataclasses import replace

    threads = options.threads or max(1, int(options.cpus_per_cell))
    device = options.device if options.device != "auto" or options.gpus_per_cell else "cpu"
    return replace(options, threads=threads, device=device)


def _results(ray, ref, cells) -> list[CellResult]:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as err:
        reason = f"Ray worker lost twice (first try and one retry): {type(err).__name__}"
        return failed_results(cells, reason)
