"""The built-in command groups, attached through the same ``zoo_register_commands`` hook a plugin uses.

Command modules are imported when attached; each keeps torch imports inside its functions, so ``zoo list`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

import zoo

# module → names of the click commands/groups it defines
BUILTIN_COMMANDS = {
    "zoo_cli.train": ("train",),
    "zoo_cli.data": ("data",),
    "zoo_cli.metrics": ("mig", "ppl", "jacobian", "stats"),
    "zoo_cli.scores": ("scores",),
    "zoo_cli.relocate": ("relocate",),
    "zoo_cli.convert": ("convert",),
    "zoo_cli.run": ("run",),
}


@zoo.hookimpl
def zoo_register_commands(cli: Any) -> None:
    for module, names in BUILTIN_COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        for name in names:
            cmd = getattr(mod, name, None)
            if isinstance(cmd, click.Command):
                cli.add_command(cmd)
