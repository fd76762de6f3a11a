"""``zoo relocate SRC TGT``: a thin wrapper over :func:`zoo.relocate.api.relocate`."""

from __future__ import annotations

import click

from zoo_cli.output import emit_json, info, json_option, table

FITS = ("auto", "support", "random", "kmeans", "fps", "data", "generated")
METHODS = ("linear", "ridge", "affine", "procrustes", "mlp")


@click.command()
@click.argument("models", nargs=-1, required=True)
@click.option("--fit", type=click.Choice(FITS), default="auto", show_default=True,
              help="Correspondence set: the paper's support set, alternatives, the whole pool, or generated samples "
                   "(auto: generated when StyleGAN is involved, else support).")
@click.option("--method", type=click.Choice(METHODS), default="linear", show_default=True)
@click.option("--n-fit", type=click.IntRange(min=2), default=150, show_default=True)
@click.option("--n-test", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--data", default=None, help="Dataset (default: the one both models were trained on).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="relocation", show_default=True,
              help="Folder for relocation.png.")
@click.option("--save-map", type=click.Path(file_okay=False), default=None, help="Save the fitted map here.")
@click.option("--matrix", is_flag=True, help="Run every ordered pair of the given models (the paper's Table 2).")
@json_option
def relocate(models: tuple[str, ...], fit: str, method: str, n_fit: int, n_test: int, data: str | None, seed: int,
             out: str, save_map: str | None, matrix: bool, as_json: bool) -> None:
    """Relocate the latent space of SRC into TGT (MODELS = SRC TGT, or several with --matrix)."""
    from zoo.errors import ZooError
    from zoo.relocate.api import fmt, relocate as run, relocation_matrix

    kwargs = dict(fit=fit, method=method, n_fit=n_fit, n_test=n_test, data=data, seed=seed)
    if matrix:
        if len(models) < 2:
            raise ZooError("--matrix needs at least two models")
        results = relocation_matrix(list(models), **kwargs)
    else:
        if len(models) != 2:
            raise ZooError(f"relocate takes SRC and TGT (got {len(models)} names); use --matrix for more")
        results = [run(models[0], models[1], out=out, save_map_to=save_map, **kwargs)]
    if as_json:
        emit_json([r.to_dict() for r in results] if matrix else results[0].to_dict())
    table(f"relocation on {results[0].data} ({results[0].n_test} held-out images; baseline = mean inter-image MSE)",
          ["from", "to", "fit", "L-MSE", "R-MSE", "M-MSE", "target R-MSE", "baseline"],
          [[r.source, r.target, f"{r.fit}/{r.method}/{r.n_fit}", fmt(r.l_mse), fmt(r.r_mse), fmt(r.m_mse),
            fmt(r.target_r_mse), f"{r.baseline:.4f}"] for r in results])
    for r in results:
        for kind, path in r.files.items():
            info(f"{kind}: {path}")
