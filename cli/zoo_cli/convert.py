"""``zoo convert FORMAT SRC OUT``: foreign weights → a zoo weights folder, a thin wrapper over :func:`zoo.convert`."""

from __future__ import annotations

import click

from zoo_cli.output import info


@click.command()
@click.argument("fmt", metavar="FORMAT")
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--network", default=None, help="stylegan2: which network of the pickle, G_ema (default) or G.")
@click.option("--tag", default=None, help="Weights tag recorded in config.json (default: the file name).")
@click.option("--overwrite", is_flag=True,
              help="Write into OUT even if it holds other files (zoo's are replaced, the others kept).")
def convert(fmt: str, src: str, out: str, network: str, tag: str | None, overwrite: bool) -> None:
    """Convert weights in a foreign FORMAT (e.g. stylegan2: an NVlabs stylegan2-ada-pytorch pickle, read without
    executing any code from it) into a zoo weights folder OUT."""
    import zoo

    options = {k: v for k, v in {"network": network, "tag": tag}.items() if v is not None}
    folder = zoo.convert(fmt, src, out, overwrite=overwrite, **options)
    info(f"wrote {folder}; load it with zoo.create_model('local-dir:{folder}')")
