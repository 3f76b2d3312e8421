"""Root of the command line: builds the typer app and maps every failure to one exit code."""

from __future__ import annotations

import sys

import typer

from dccli import __version__

app = typer.Typer(
    name="dccli",
    help="Operate an AI/GPU cluster from one YAML inventory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dccli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Operate an AI/GPU cluster from one YAML inventory."""


def _register(command: str | None = None) -> None:
    # Each module only defines typer commands; heavy imports happen inside the commands. Each module is
    # named after the command it registers: `dccli backup run` needs the backup module only (typer builds
    # every registered command's click objects before parsing: ~13 ms for all of them on every run).
    from dccli.cli import REGISTERED

    for module_name in (command,) if command in REGISTERED else REGISTERED:
        module = __import__(f"dccli.cli.{module_name}", fromlist=["register"])
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    from dccli.errors import DccliError, ExitCode

    args = sys.argv[1:] if argv is None else argv
    _register(next((a for a in args if not a.startswith("-")), None))
    try:
        app(args=argv, prog_name="dccli", standalone_mode=True)
    except DccliError as exc:  # pragma: no cover - commands normally handle their own errors
        sys.stderr.write(f"dccli: error: {exc}\n")
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.stderr.write("dccli: interrupted\n")
        sys.exit(int(ExitCode.INTERRUPTED))
