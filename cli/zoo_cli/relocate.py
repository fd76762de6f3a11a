"""``zoo relocate SRC TGT`` (or every ordered pair of several models with ``--matrix``): the ``relocate`` task's
command, with the task's options, and the task's report — the table people read.

``--method`` and ``--fit`` take any relocation map or fit set a plugin registered: the registry checks the name (one
line with a did-you-mean) and ``--help`` lists the names registered when it is shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import click

from zoo import distributed, registry
from zoo.relocate.plugin import RELOCATE
from zoo_cli.output import emit_json, info, table
from zoo_cli.run import task_command

STATS = ("l_mse", "r_mse", "m_mse", "target_r_mse")


def fmt(mean: float, std: float) -> str:
    """``0.0173 ± 0.0021``: the spread to two significant digits and the mean to as many decimals (at least three
    significant digits of the mean), so a small spread never prints as ± 0.000."""
    decimals = max(2, 2 - math.floor(math.log10(abs(mean)))) if mean else 3
    if std > 0:
        decimals = max(decimals, 1 - math.floor(math.log10(std)))
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def print_relocations(results: Sequence[Mapping[str, Any]]) -> None:
    """The table of relocation results (``RelocationResult.to_dict()`` or the task's result), then the files
    written."""
    first = results[0]
    table(f"relocation on {first['data']} ({first['n_test']} held-out images; baseline = mean inter-image MSE)",
          ["from", "to", "fit", "L-MSE", "R-MSE", "M-MSE", "target R-MSE", "baseline"],
          [[r["source"], r["target"], f"{r['fit']}/{r['method']}/{r['n_fit']}", *(fmt(**r[k]) for k in STATS),
            f"{r['baseline']:.4f}"] for r in results])
    for r in results:
        for kind, path in r["files"].items():
            info(f"{kind}: {path}")


def report(result: Mapping[str, Any]) -> None:
    """The ``relocate`` task's report (``zoo run relocate``)."""
    print_relocations([result])


class RelocateCommand(click.Command):
    """``--help`` ends with the relocation maps and fit sets registered when it is shown, whichever plugin added
    them."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for title, names in (("Relocation maps (--method)", registry.relocation_maps),
                             ("Fit sets (--fit; auto means support)", registry.fit_sets)):
            with formatter.section(title):
                formatter.write_dl([(name, entry.spec.description) for name, entry in sorted(names.entries.items())])
        super().format_epilog(ctx, formatter)


def _relocate(models: tuple[str, ...], matrix: bool, data: str | None, data_args: tuple[str, ...],
              device: str | None, batch_size: int | None, as_json: bool, **options: Any) -> None:
    import zoo
    from zoo.data import get_dataset
    from zoo.errors import ZooError
    from zoo.relocate.api import relocation_matrix, resolve_fit
    from zoo_cli.train import parse_args

    if data_args:  # the dataset built once, with its arguments, for every pair
        data = get_dataset(data, **parse_args(data_args)) if data else None
        if data is None:
            raise ZooError("--data-arg needs --data")

    # unknown names: one line with a did-you-mean, before any model is loaded
    registry.relocation_maps.get(options["method"])
    resolve_fit(options["fit"])
    if not matrix:
        if len(models) != 2:
            raise ZooError(f"relocate takes SRC and TGT (got {len(models)} names); use --matrix for more")
        result = zoo.run(RELOCATE, *models, data=data, device=device, batch_size=batch_size, **options)
        if not distributed.is_main():  # under torchrun rank 0 reports for the group
            return None
        if as_json:
            emit_json(result.to_dict())
        return print_relocations([result])
    if len(models) < 2:
        raise ZooError("--matrix needs at least two models")
    if options.pop("save_map"):
        raise ZooError("--save-map saves the map of one pair; run SRC TGT without --matrix to save one")
    if options.pop("out"):
        raise ZooError("--out is the folder of one pair's relocation.png; --matrix draws none")
    results = [r.to_dict() for r in relocation_matrix(list(models), data=data, device=device, batch_size=batch_size,
                                                      **options)]
    if not distributed.is_main():
        return
    if as_json:
        emit_json(results)
    print_relocations(results)


def relocate_command() -> click.Command:
    """The task's generated options (``zoo run relocate`` has the same), with MODELS… and ``--matrix``."""
    generated = task_command(RELOCATE, "relocate")
    params = [click.Argument(["models"], nargs=-1, required=True),
              *(p for p in generated.params if not isinstance(p, click.Argument)),
              click.Option(["--matrix"], is_flag=True,
                           help="Run every ordered pair of the given models (the paper's Table 2).")]
    return RelocateCommand("relocate", callback=_relocate, params=params,
                           help="Relocate the latent space of SRC into TGT (MODELS = SRC TGT, or several with "
                                "--matrix): fit a map on a fit set, report L/R/M-MSE on held-out images.",
                           short_help="Fit a map between two latent spaces and report L/R/M-MSE.")


relocate = relocate_command()
