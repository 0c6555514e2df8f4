"""User-facing errors.

A `BenchError` is a mistake in what the user gave us (a bad grid, a missing
file, an unknown name). The CLI prints its message as one line and exits with
its code; it never shows a traceback for one.
"""


class BenchError(Exception):
    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
