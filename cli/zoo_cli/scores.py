"""``zoo scores``: every disentanglement score of a model, a thin wrapper over :mod:`zoo.metrics.scores`."""

from __future__ import annotations

import click

from zoo_cli.output import emit_json, info, json_option, table

# the number each score is usually quoted by
HEADLINE = {"beta_vae": "eval_accuracy", "factor_vae": "eval_accuracy", "dci": "disentanglement",
            "sap": "SAP_score", "modularity": "modularity_score", "unsupervised": "gaussian_total_correlation",
            "mig": "discrete_mig", "mig_chen": "mig_chen"}


@click.command()
@click.argument("name")
@click.option("--data", default=None, help="Ground-truth dataset (default: the model's training data).")
@click.option("--only", default=None, help="Comma-separated subset of: mig, mig_chen, beta_vae, factor_vae, dci, "
                                           "sap, modularity, unsupervised.")
@click.option("--quick", is_flag=True, help="A tenth of dlib's sample sizes (a first look, not reportable numbers).")
@click.option("--dci-mode", type=click.Choice(["sklearn", "fast"]), default="sklearn", show_default=True,
              help="sklearn: dlib's gradient boosting (~10 min on dSprites); fast: a random forest.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write a bar chart of the scores as PNG.")
@click.option("--overwrite", is_flag=True, help="Replace the PNG at --out even if zoo did not write it.")
@json_option
def scores(name: str, data: str | None, only: str | None, quick: bool, dci_mode: str, seed: int, out: str | None,
           overwrite: bool,
           as_json: bool) -> None:
    """All disentanglement scores with disentanglement_lib's algorithms and defaults (MIG, β-VAE, FactorVAE, DCI,
    SAP, modularity/explicitness, unsupervised), plus Chen et al.'s MIG for models with a Gaussian encoder."""
    import zoo
    from zoo.data import get_dataset
    from zoo.errors import ZooError
    from zoo.metrics.mig import compute_mig
    from zoo.metrics.scores import SCORES, chen_mig, compute_scores

    known = ("mig", "mig_chen", *SCORES)
    wanted = [s.strip() for s in only.split(",")] if only else list(known)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ZooError(f"unknown score {unknown[0]!r}; choose from {', '.join(known)}")
    model = zoo.create_model(name)
    zoo.require(model, "encode", purpose="disentanglement scores")
    if not only and not model.has("encode_dist"):
        wanted.remove("mig_chen")  # it needs q(z|x); asked for by --only, chen_mig's capability check says so
    data = data or model.image_spec.dataset
    dataset = get_dataset(data)
    if not hasattr(dataset, "factor_sizes"):
        raise ZooError(f"{data} has no ground-truth factors; the scores need a dataset such as dsprites or faces64")
    results = {}
    if "mig" in wanted:
        results["mig"] = {"discrete_mig": compute_mig(model, dataset, num_train=1000 if quick else 10000,
                                                      seed=seed)["discrete_mig"]}
    if "mig_chen" in wanted:
        results["mig_chen"] = chen_mig(model, dataset, num_points=2000 if quick else 10000, seed=seed)
    results.update(compute_scores(model, dataset, scores=[s for s in wanted if s in SCORES], quick=quick,
                                  dci_mode=dci_mode, seed=seed))
    summary = {s: results[s][HEADLINE[s]] for s in wanted}
    if out:
        from zoo.image import save_bar_chart

        bounded = [s for s in wanted if s != "unsupervised"]  # the Gaussian TC is in nats, not in [0, 1]
        save_bar_chart(bounded, [summary[s] for s in bounded], out,
                       title=f"{model.display_name} on {data}{' (quick)' if quick else ''}", overwrite=overwrite)
    if as_json:
        return emit_json({"model": model.display_name, "data": data, "quick": quick, "dci_mode": dci_mode,
                          "seed": seed, "summary": summary, "scores": results, "png": out})
    table(f"Disentanglement scores of {model.display_name} on {data}{' (quick sizes)' if quick else ''}",
          ["score", "key", "value"], [[s, HEADLINE[s], f"{summary[s]:.4f}"] for s in wanted])
    if out:
        info(f"bar chart written to {out}")
