"""The built-in commands, attached through the same ``zoo_register_commands`` hook a plugin uses.

Command modules are imported when attached; each keeps torch imports inside its functions, so ``zoo list`` stays fast.
The metric commands are not written by hand: each is its task's generated command (:func:`zoo_cli.run.task_command`),
so ``zoo mig NAME`` and ``zoo run mig NAME`` take the same flags and print the same result.
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
    "zoo_cli.relocate": ("relocate",),
    "zoo_cli.convert": ("convert",),
    "zoo_cli.run": ("run",),
    "zoo_cli.publish": ("ship", "push", "new_plugin"),
}
# registered tasks that are also top-level commands (zoo.metrics.plugin declares their options)
TASK_COMMANDS = ("mig", "scores", "ppl", "jacobian", "stats", "fid")


def task_commands() -> list[click.Command]:
    """The generated commands of :data:`TASK_COMMANDS` that are registered (a disabled plugin's are not)."""
    from zoo import registry
    from zoo_cli.run import task_command

    entries = registry.tasks.entries
    return [task_command(entries[name].spec, name) for name in TASK_COMMANDS if name in entries]


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
    for cmd in task_commands():
        cli.add_command(cmd)
