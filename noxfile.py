"""nox sessions, all in the locked uv environment (.venv) so that torch is installed once."""

import os

import nox

nox.options.sessions = ["lint", "tests", "cells"]
nox.options.default_venv_backend = "none"


def _uv_sync(session: nox.Session) -> None:
    session.run("uv", "sync", "--frozen", "--all-extras", "--quiet", external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (pytest), one worker per core (at most 4)."""
    _uv_sync(session)
    workers = ("-n", "auto", "--maxprocesses", "4")
    session.run("uv", "run", "--frozen", "pytest", *workers, "--durations=20", *session.posargs, external=True)


@nox.session
def cells(session: nox.Session) -> None:
    """Reproduce ablations/smoke.yaml from scratch and compare with the committed reference values."""
    _uv_sync(session)
    results = session.create_tmp() + "/smoke-results"
    session.run("rm", "-rf", results, external=True)
    bench = ("uv", "run", "--frozen", "bench")
    grid = ("--grid", "ablations/smoke.yaml", "--results", results)
    # a cell per usable core (at most 4), one torch thread each: the reference's tolerances cover 1 and 2 threads
    workers = str(min(len(os.sched_getaffinity(0)), 4))
    session.run(*bench, "run", *grid, "--device", "cpu", "--workers", workers, "--threads", "1", external=True)
    session.run(*bench, "reproduce", *grid, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    _uv_sync(session)
    session.run("uv", "run", "--frozen", "ruff", "check", ".", external=True)
    session.run("uv", "run", "--frozen", "ruff", "format", "--check", ".", external=True)
