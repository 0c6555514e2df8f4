"""Run a grid's cells as Slurm jobs, with submitit: one job per `cells_per_job` cells, all submitted as one job
array. Each job runs its cells as `bench run` does on one machine: it claims each cell's lock in the store (on
a cluster, a shared filesystem), skips a cell another run holds or has finished, and writes its results
itself, so two arrays on one store never train a cell twice. A job that Slurm preempts or times out gets
submitit's signal (USR2 by default); its cells save their training state at their next batch, and submitit
requeues the job, which resumes them (training/resume.py). `local=True` runs the jobs with submitit's local
executor (real subprocesses on this machine, requeue included), for trying a cluster recipe without one.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, replace
from pathlib import Path

from benchmark.errors import BenchError, Preempted
from benchmark.runner.loop import Progress, RunSummary, run_locally
from benchmark.store import CellStatus, CellStore
from benchmark.training.resume import EXIT_TERMINATED, STOP

SLURM_HINT = "the slurm executor needs the 'slurm' extra: pip install 'cvae-bench[slurm]' (or uv sync --extra slurm)"


@dataclass(frozen=True)
class SlurmOptions:
    folder: str = "slurm"  # submitit's job files and logs
    partition: str | None = None
    time_min: int = 60  # per job
    mem_gb: float | None = None
    cpus_per_job: int = 1
    gpus_per_job: int = 0
    cells_per_job: int = 1
    array_parallelism: int = 64  # jobs of the array running at once
    local: bool = False  # submitit's local executor instead of Slurm


def check_slurm(options: SlurmOptions) -> None:
    """Before any cell: submitit is installed and its folder can be written."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise BenchError(SLURM_HINT) from None
    try:
        Path(options.folder).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BenchError(f"--slurm-folder {options.folder}: cannot write there ({err.strerror or err})") from None


def run_on_slurm(units, store: CellStore, options, progress, summary: RunSummary) -> None:
    executor = _executor(options.slurm)
    batches = [units[i : i + options.slurm.cells_per_job] for i in range(0, len(units), options.slurm.cells_per_job)]
    if options.force:  # done here, once: a requeued job must resume its cells, not start them over
        _reset(store, [cell for unit in units for cell in unit])
    threads = options.threads or options.slurm.cpus_per_job
    job_options = replace(options, executor="local", workers=1, threads=threads, force=False)
    jobs = executor.map_array(CellsJob(), [str(store.root)] * len(batches), batches, [job_options] * len(batches))
    for job, batch in zip(jobs, batches):
        for unit in batch:
            for cell in unit:
                progress.cell_started(cell)
        try:
            done: RunSummary = job.result()
        except Exception as err:  # noqa: BLE001 - a job that ended without its result: the store says what it did
            reason = f"Slurm job {job.job_id} ended: {str(err).strip().splitlines()[-1] if str(err) else type(err)}"
            cells = [c for unit in batch for c in unit]
            stored = [c.id for c in cells if store.status(c.id) == CellStatus.DONE]
            done = RunSummary(done=stored, failed={c.id: reason for c in cells if c.id not in stored})
        summary.add(done)
        for unit in batch:
            for cell in unit:
                progress.cell_finished(cell, "failed" if cell.id in done.failed else "done")


def _reset(store: CellStore, cells) -> None:
    """`--force`: each cell not held by another run starts from nothing (its files and saved state dropped)."""
    for cell in cells:
        with store.claim(cell.id) as mine:
            if mine:
                store.begin(cell.id, cell.resolved(), keep_resume=False)


def _executor(slurm: SlurmOptions):
    import submitit

    executor = submitit.AutoExecutor(folder=slurm.folder, cluster="local" if slurm.local else None)
    parameters = {"timeout_min": slurm.time_min, "cpus_per_task": slurm.cpus_per_job, "tasks_per_node": 1}
    parameters |= {"slurm_array_parallelism": slurm.array_parallelism}
    if slurm.gpus_per_job:
        parameters["gpus_per_node"] = slurm.gpus_per_job
    if slurm.mem_gb:
        parameters["mem_gb"] = slurm.mem_gb
    if slurm.partition:
        parameters["slurm_partition"] = slurm.partition
    executor.update_parameters(**parameters)
    return executor


try:
    from submitit.helpers import Checkpointable
except ImportError:  # without the slurm extra this module is imported only to say so (check_slurm)
    Checkpointable = object


class CellsJob(Checkpointable):
    """One job: its units of cells, run in this process against the store at `root`. Requeued as it was
    submitted (submitit's Checkpointable), it resumes its cells from their saved states."""

    def __call__(self, root: str, units, options) -> RunSummary:
        import submitit

        environment = submitit.JobEnvironment()
        os.environ["BENCH_JOB_ID"] = str(environment.job_id)  # recorded in each cell's provenance
        preempt = environment._usr_sig()  # the signal submitit asks Slurm to send before preemption or timeout
        requeue = signal.getsignal(preempt)
        summary = RunSummary()
        with STOP.handling():  # SIGTERM, and below the preemption signal: save at the next batch
            signal.signal(preempt, STOP._on_signal)
            try:
                run_locally(units, CellStore(root), options, Progress(), summary)
            except Preempted:
                if preempt in STOP.signals and callable(requeue):
                    requeue(preempt, None)  # submitit: checkpoint (this job, as submitted) and requeue, then exit
                # SIGTERM alone (scancel, or a preemption that Slurm requeues itself): end without a result, so
                # a job that Slurm requeues runs again and resumes, and the run's driver sees it end unfinished
                os._exit(EXIT_TERMINATED)
            finally:
                signal.signal(preempt, requeue)
        return summary
