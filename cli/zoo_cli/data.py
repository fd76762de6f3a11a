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
def show(name: str, n: int, out: str | None, traversal: str | None, path: str | None, seed: int) -> None:
    """Write a grid of random images and a traversal of each factor."""
    from zoo.data import get_dataset
    from zoo.image import save_grid

    dataset = get_dataset(name, **({"path": path} if path else {}))
    images, _ = dataset.sample(n, seed)
    info(f"{name}: {len(dataset):,} images, {dataset.image_spec.channels}x{dataset.image_spec.size}")
    click.echo(save_grid(images, out or f"{name}_grid.png", nrow=8, scale=2))
    if hasattr(dataset, "traversal"):
        rows, labels = dataset.traversal()
        info("traversal rows: " + ", ".join(labels))
        click.echo(save_grid(rows, traversal or f"{name}_traversal.png", nrow=len(rows) // len(labels), scale=2))
