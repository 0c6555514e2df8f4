"""User-facing errors.

A `BenchError` is a mistake in what the user gave us (a bad grid, a missing
file, an unknown name). The CLI prints its message as one line and exits with
its code; it never shows a traceback for one.
"""


class BenchError(Exception):
    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class Preempted(BaseException):  # noqa: N818 - it names what happened, as KeyboardInterrupt does
    """The process was asked to stop (SIGTERM, what cluster schedulers send before a kill). Cells in training
    save their state first (training/resume.py). A BaseException, like KeyboardInterrupt, so no handler of
    ordinary errors takes it for a cell's failure."""
