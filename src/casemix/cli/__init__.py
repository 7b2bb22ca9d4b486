"""The ``casemix`` command line.

Sub-commands live in their own modules and are imported only when run, so
``casemix --help`` stays fast and a broken optional dependency of one
command never breaks the others.

Errors (``docs/errors.md``): bad input — any :class:`casemix.errors.CasemixError`
or a file that cannot be opened — prints one line ``Error: …`` and exits 2;
anything else is a casemix bug and prints one line ``Error: internal error …``
and exits 1.  ``casemix --debug …`` or ``CASEMIX_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

import click

from casemix.errors import CasemixError

#: exit status of a run stopped by bad input (click uses 2 for usage errors too)
BAD_INPUT = 2
#: exit status of a run stopped by an unexpected error (a bug)
INTERNAL = 1


class _BadInput(click.ClickException):
    """One ``Error: …`` line, no traceback: the input or the configuration is at fault."""

    exit_code = BAD_INPUT


class _Internal(click.ClickException):
    """One ``Error: …`` line, no traceback: an unexpected error (a bug)."""

    exit_code = INTERNAL


def _debug(ctx: click.Context) -> bool:
    flag = ctx.find_root().params.get("debug")
    return bool(flag) or os.environ.get("CASEMIX_DEBUG", "").strip() not in ("", "0")


def _one_line(text: str) -> str:
    # a multi-line message (e.g. a polars plan) would read as several errors
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return " ".join(lines) if len(lines) <= 3 else " ".join(lines[:3]) + " …"


def failure(exc: BaseException) -> click.ClickException:
    """The one-line error a command prints for ``exc``, with its exit status."""
    if isinstance(exc, CasemixError):
        return _BadInput(_one_line(str(exc)))
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ""
        reason = exc.strerror or type(exc).__name__
        return _BadInput(f"{where}: {reason}" if where else _one_line(str(exc) or reason))
    return _Internal(
        f"internal error ({type(exc).__name__}: {_one_line(str(exc))}); rerun with "
        "--debug for the traceback and please report it"
    )


# name -> "module:attribute" of a click command.  Each module owns its command.
COMMANDS: dict[str, str] = {
    "group": "casemix.cli.group_cmd:group",
    "schemes": "casemix.cli.group_cmd:schemes",
    "demo": "casemix.cli.demo:demo",
    "weights": "casemix.cli.weights_cmd:weights",
    "settle": "casemix.cli.settle_cmd:settle",
    "policy": "casemix.cli.settle_cmd:policy",
    "dip": "casemix.cli.dip_cmd:dip",
    "report": "casemix.cli.report_cmd:report",
    "benefits": "casemix.cli.benefits_cmd:benefits",
    "check": "casemix.cli.check_cmd:check",
}


def _available(name: str) -> bool:
    module = COMMANDS[name].split(":")[0]
    return importlib.util.find_spec(module) is not None


class _LazyGroup(click.Group):
    """A click group that imports each sub-command on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if _available(n))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _available(cmd_name):
            return None
        module, attr = COMMANDS[cmd_name].split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if _debug(ctx):
                raise
            raise failure(exc) from None


@click.group(cls=_LazyGroup)
@click.version_option(package_name="casemix")
@click.option(
    "--debug",
    is_flag=True,
    envvar="CASEMIX_DEBUG",
    help="Show the Python traceback of an error (also: CASEMIX_DEBUG=1).",
)
def main(debug: bool) -> None:
    """casemix: CHS-DRG / DIP grouping and global-budget payment simulation."""
