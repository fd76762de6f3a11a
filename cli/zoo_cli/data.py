"""``zoo data list`` and ``zoo data show``: thin wrappers over :mod:`zoo.data`."""

from __future__ import annotations

import click

from zoo_cli.output import emit_json, info, json_option, print_table


@click.group()
def data() -> None:
    """Datasets with ground-truth factors, and loaders for files you already have."""


@data.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List registered datasets."""
    from zoo.data import list_datasets

    rows = list_datasets()
    if as_json:
        return emit_json(rows)
    print_table(["name", "procedural", "description"],
                [[r["name"], "yes" if r["procedural"] else "file", r["description"]] for r in rows])


@data.command()
@click.argument("name")
@click.option("--n", type=click.IntRange(min=1), default=64, show_default=True, help="Images in the grid.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Grid PNG (default NAME_grid.png).")
@click.option("--traversal", type=click.Path(dir_okay=False), default=None,
              help="Factor traversal PNG, one row per factor (default NAME_traversal.png).")
@click.option("--path", default=None, help="The file or folder of a file-backed dataset.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace PNGs at --out/--traversal even if zoo did not write them.")
def show(name: str, n: int, out: str | None, traversal: str | None, path: str | None, seed: int,
         overwrite: bool) -> None:
    """Write a grid of random images and a traversal of each factor (no traversal for a file holding only part of
    a factor grid: a note says so, and asking for one by --traversal is an error)."""
    from zoo.data import get_dataset
    from zoo.errors import DataError
    from zoo.image import save_grid

    dataset = get_dataset(name, **({"path": path} if path else {}))
    images, _ = dataset.sample(n, seed)
    info(f"{name}: {len(dataset):,} images, {dataset.image_spec.channels}x{dataset.image_spec.size}")
    rows = None
    if dataset.has_factors:
        try:
            rows, labels = dataset.traversal()  # before any file is written: a refusal leaves nothing half done
        except DataError as exc:
            if traversal:
                raise
            info(f"no traversal: {exc}")
    click.echo(save_grid(images, out or f"{name}_grid.png", nrow=8, scale=2, overwrite=overwrite))
    if rows is not None:
        info("traversal rows: " + ", ".join(labels))
        click.echo(save_grid(rows, traversal or f"{name}_traversal.png", nrow=len(rows) // len(labels), scale=2,
                             row_labels=labels, overwrite=overwrite))
