"""How ``zoo fid`` shows its result: the value always with its feature space and its number of images."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo_cli.output import info

COMPARED = {"samples": "samples of {model}", "reconstruction": "reconstructions by {model}",
            "data": "held-out {data} images (the floor at this n)"}


def headline(result: Mapping[str, Any]) -> str:
    """``FID 12.3 (faces64-features, 5,000 vs 5,000 images)``."""
    n = f"{result['n']:,}"
    return f"FID {result['fid']:.4g} ({result['features']}, {n} vs {n} images)"


def report(result: Mapping[str, Any]) -> None:
    compared = COMPARED[result["mode"]].format(model=result["model"], data=result["data"])
    info(f"{headline(result)}: {compared} vs held-out {result['data']} images")
    height, width = result["image_size"]
    info(f"  mean term ‖Δμ‖² {result['mean_term']:.4g}, covariance term {result['cov_term']:.4g} "
         f"({result['feature_dim']}-d features; images compared at the model's {height}×{width})")
    if result["eps_offset"]:
        info(f"  the matrix square root failed numerically: {result['eps_offset']:g} was added to both diagonals, as "
             f"pytorch-fid does")
    if result["features"] == "inception" and result["published_weights"]:
        info("  pytorch-fid's Inception weights: comparable with published FIDs at the same n (usually 50,000) and "
             "the same reference data")
    elif result["features"] == "inception":
        info("  these Inception weights are not pytorch-fid's file (sha256 differs): not comparable with published "
             "FIDs")
    else:
        info("  zoo's own feature space: compare with other zoo models, not with published (Inception) FIDs")
