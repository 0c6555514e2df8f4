"""Every random stream of a cell has its own id: two streams sharing one would draw the same numbers."""

import pytest


def test_every_stream_the_package_draws_from_is_in_the_table_and_seeds_are_distinct():
    import re
    from pathlib import Path

    from benchmark.seeding import STREAMS, stream_seed

    package = Path(__file__).resolve().parents[1] / "benchmark"
    used = set()
    for path in package.rglob("*.py"):
        used |= set(re.findall(r'(?:stream_generator|stream_seed)\([^,]+, "(\w+)"', path.read_text()))
        used |= set(re.findall(r'generator\("(\w+)"\)', path.read_text()))
    assert used and used <= set(STREAMS), used - set(STREAMS)
    seeds = {stream_seed(seed, s) for seed in range(3) for s in STREAMS}
    assert len(seeds) == 3 * len(STREAMS)
    with pytest.raises(KeyError):
        stream_seed(0, "nosie")
