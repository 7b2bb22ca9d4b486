"""The ``casemix`` command line.

Sub-commands live in their own modules and are imported only when run, so
``casemix --help`` stays fast and a broken optional dependency of one
command never breaks the others.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

# name -> "module:attribute" of a click command.  Each module owns its command.
COMMANDS: dict[str, str] = {
    "group": "casemix.cli.group_cmd:group",
    "schemes": "casemix.cli.group_cmd:schemes",
    "demo": "casemix.cli.demo:demo",
    "weights": "casemix.cli.settle_cmd:weights",
    "settle": "casemix.cli.settle_cmd:settle",
    "dip": "casemix.cli.dip_cmd:dip",
    "report": "casemix.cli.report_cmd:report",
    "benefits": "casemix.cli.benefits_cmd:benefits",
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


@click.group(cls=_LazyGroup)
@click.version_option(package_name="casemix")
def main() -> None:
    """casemix: CHS-DRG / DIP grouping and global-budget payment simulation."""
