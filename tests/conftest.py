import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BENCH_DATA_DIR") or REPO.parent / "shared" / "data")

# Derived tensors, classifiers and statistics are cached once for the whole session.
os.environ.setdefault("BENCH_CACHE_DIR", tempfile.mkdtemp(prefix="bench-cache-"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "fashion-mnist").exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA
