"""The metric groups, one module each, registered by importing them here: the one place a group is added.
The import order is the order of evaluation and of the metrics in every table, so it is kept as written."""

# isort: skip_file
from benchmark.metrics.groups import reconstruction  # noqa: F401 - each module registers its group
from benchmark.metrics.groups import domain  # noqa: F401
from benchmark.metrics.groups import inception  # noqa: F401
from benchmark.metrics.groups import likelihood  # noqa: F401
from benchmark.metrics.groups import label  # noqa: F401
from benchmark.metrics.groups import codebook  # noqa: F401
from benchmark.metrics.groups import completion  # noqa: F401
from benchmark.metrics.groups import cost  # noqa: F401
