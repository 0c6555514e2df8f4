"""The `bench` command line: one module per verb, each a thin layer over a package function.

`common.py` declares the options the verbs share (--grid, --results, --device, --data-dir, ...) once. The
heavy layers (torch, pandas: the runner, training, the reports) are imported when a command runs, not
here, so `bench --help` and a mistyped option answer in a fraction of a second.
"""

from __future__ import annotations

import sys

import typer

from benchmark import __version__
from benchmark.commands import (
    compare,
    data,
    evaluate,
    instrument,
    perf,
    plan,
    report,
    reproduce,
    run,
    sample,
    status,
    store,
)
from benchmark.commands.common import console
from benchmark.errors import BenchError, Preempted

try:
    from typer._click import exceptions as parser_errors  # typer >= 0.29 bundles its own click
except ImportError:  # pragma: no cover - older typer on plain click
    from click import exceptions as parser_errors

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="CVAE Bench: train, measure and compare conditional VAEs over ablation grids.",
)
for verb in (
    run.run,
    plan.plan,
    evaluate.evaluate,
    status.status,
    report.report,
    sample.sample,
    reproduce.reproduce,
    compare.compare,
):
    app.command()(verb)
app.add_typer(data.app, name="data")
app.add_typer(store.app, name="store")
app.add_typer(instrument.app, name="instrument")
app.add_typer(perf.app, name="perf")


def _version(value: bool) -> None:
    if value:
        console.print(f"bench {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """CVAE Bench."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors, ours and the option parser's, become one line on stderr and exit 2."""
    try:
        code = app(args=argv, standalone_mode=False)
    except BenchError as err:
        _fail(str(err), err.exit_code)
    except parser_errors.NoArgsIsHelpError as err:
        print(err.ctx.get_help())
        sys.exit(0)
    except parser_errors.UsageError as err:
        command = err.ctx.command_path if err.ctx else "bench"
        _fail(f"{command}: {err.format_message()} (see {command} --help)", 2)
    except parser_errors.ClickException as err:
        _fail(err.format_message(), err.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _fail(
            "interrupted: cells already stored are kept; the next run resumes those in flight from their last save", 130
        )
    except Preempted:
        _fail("terminated (SIGTERM): cells in training saved their state; the next run resumes them", 143)
    sys.exit(code or 0)


def _fail(message: str, code: int) -> None:
    print("error: " + " ".join(message.split()), file=sys.stderr)
    sys.exit(code)
