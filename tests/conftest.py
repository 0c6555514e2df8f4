import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BENCH_DATA_DIR") or REPO.parent / "shared" / "data")

# Derived tensors, classifiers and statistics are cached once for the whole session (and removed after
# it, unless BENCH_CACHE_DIR names a cache to keep).
if "BENCH_CACHE_DIR" not in os.environ:
    os.environ["BENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-cache-")
    atexit.register(shutil.rmtree, os.environ["BENCH_CACHE_DIR"], ignore_errors=True)

if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n N`: share the cores, not N x all of them
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "fashion-mnist").exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


class CliResult:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys, monkeypatch):
    """`bench ...` in this process (no interpreter start and torch import per call); returns what
    subprocess.run would: returncode, stdout, stderr."""
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args) -> CliResult:
        from benchmark.commands import main

        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(exited.value.code, captured.out, captured.err)

    return run
