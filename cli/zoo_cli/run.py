"""``zoo run TASK MODELS… [--option …]``: a command for every registered task, generated from its spec.

The built-in commands ``zoo mig``, ``zoo ppl``, … are the same generated commands under their task's name, so a
third-party task gets exactly what a built-in one has: typed options, ``--data``, ``--device``, ``--batch-size``,
``--json`` and a report.
"""

from __future__ import annotations

from typing import Any

import click

from zoo import distributed, registry
from zoo.spec import Option, TaskSpec
from zoo_cli.output import emit_json

ARGUMENTS = {"one": ("name",), "pair": ("source", "target"), "none": ()}
CLICK_TYPES = {"int": (int, click.IntRange), "float": (float, click.FloatRange), "str": (str, None),
               "bool": (bool, None)}


def _click_option(o: Option) -> click.Option:
    flag = f"--{o.name.replace('_', '-')}"
    if o.type == "bool":
        decls = [flag] if not o.default else [f"{flag}/--no-{o.name.replace('_', '-')}"]
        return click.Option([*decls, o.name], is_flag=True, default=bool(o.default), help=o.help)
    kind, ranged = CLICK_TYPES[o.type]
    ctype: Any = click.Choice(o.choices) if o.choices else (ranged(min=o.min) if ranged and o.min is not None
                                                              else kind)
    return click.Option([flag, o.name], type=ctype, default=o.default, show_default=o.default is not None,
                        help=o.help)


def task_command(spec: TaskSpec, name: str | None = None) -> click.Command:
    """The click command of ``spec`` (``name``: the command's name, default the task's)."""

    def callback(data: str | None = None, data_args: tuple[str, ...] = (), device: str | None = None,
                 batch_size: int | None = None, as_json: bool = False, **kwargs: Any) -> None:
        import zoo
        from zoo._util import import_object
        from zoo_cli.train import parse_args

        models = [kwargs.pop(a) for a in ARGUMENTS[spec.models]]
        result = zoo.run(spec, *models, data=data, data_args=parse_args(data_args), device=device,
                         batch_size=batch_size, **kwargs)
        if not distributed.is_main():  # under torchrun rank 0 reports for the group; this rank computed its shard
            return None
        if as_json:
            return emit_json(result.to_dict())
        if spec.report is not None:
            return import_object(spec.report)(result)
        from zoo.progress import err_console

        err_console.print(result)

    params: list[click.Parameter] = [click.Argument([a]) for a in ARGUMENTS[spec.models]]
    if spec.data is not None:
        what = "ground-truth dataset" if spec.data == "factors" else "dataset"
        params += [click.Option(["--data"], help=f"The {what} (default: the one the model was trained on; "
                                                 f"your files: folder:DIR, npz:FILE)."),
                   click.Option(["--data-arg", "data_args"], multiple=True, metavar="KEY=VALUE",
                                help="Dataset argument, e.g. size=64 or factors=labels.csv (repeatable).")]
    params += [_click_option(o) for o in spec.options]
    if spec.models != "none":
        params += [click.Option(["--device"], default=None, help="cpu, cuda, cuda:1, … (default: CUDA when available)"),
                   click.Option(["--batch-size"], type=click.IntRange(min=1), default=None,
                                help="Images per batch through a model (default: chosen per device).")]
    params.append(click.Option(["--json", "as_json"], is_flag=True, help="Print machine-readable JSON on stdout."))
    return click.Command(name or spec.name, callback=callback, params=params, help=spec.description,
                         short_help=_short(spec.description))


def _short(description: str, width: int = 60) -> str:
    """The first clause of a description, cut at a word boundary."""
    text = description.split(";")[0].strip()
    if len(text) <= width:
        return text
    return text[:width].rsplit(" ", 1)[0] + "…"


class TaskGroup(click.Group):
    """``zoo run``: one sub-command per registered task, built when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return registry.tasks.names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = registry.tasks.entries.get(name)
        return task_command(entry.spec) if entry is not None else None


run = TaskGroup("run", help="Run any registered metric or tool (built-in or from a plugin) on models.")
