"""How ``zoo mig``, ``zoo scores``, ``zoo ppl``, ``zoo jacobian`` and ``zoo stats`` (and the other built-in metric
tasks) show a result to people: one function per task, given its :class:`zoo.tasks.TaskResult` (``--json`` prints
the result itself)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo_cli.output import info, table


def mig(result: Mapping[str, Any]) -> None:
    table(f"MIG of {result['model']} on {result['data']} ({result['num_train']} samples): "
          f"{result['discrete_mig']:.4f}",
          ["factor", "normalised gap"], [[f, f"{g:.4f}"] for f, g in zip(result["factor_names"], result["per_factor"])])


def mig_chen(result: Mapping[str, Any]) -> None:
    table(f"Chen et al.'s MIG of {result['model']} on {result['data']} ({result['num_points']} points): "
          f"{result['mig_chen']:.4f}",
          ["factor", "normalised gap"], [[f, f"{g:.4f}"] for f, g in zip(result["factor_names"], result["per_factor"])])


def scores(result: Mapping[str, Any]) -> None:
    quick = " (quick sizes)" if result["quick"] else ""
    table(f"Disentanglement scores of {result['model']} on {result['data']}{quick}", ["score", "key", "value"],
          [[s, result["headline"][s], f"{v:.4f}"] for s, v in result["summary"].items()])
    if result["png"]:
        info(f"bar chart written to {result['png']}")


def ppl(result: Mapping[str, Any]) -> None:
    info(f"PPL of {result['model']} ({result['space']}, {result['sampling']}, {result['n']} paths, "
         f"{result['distance']}): {result['ppl']:.5g}")


def jacobian(result: Mapping[str, Any]) -> None:
    table(f"pullback metric of {result['model']} at {result['n']} codes", ["quantity", "value"],
          [["log10 condition (median)", f"{result['log10_condition_median']:.3f}"],
           ["anisotropy λmax/mean λ (median)", f"{result['anisotropy_median']:.3f}"],
           ["column orthogonality (mean)", f"{result['orthogonality_mean']:.3f}"],
           ["trace JᵀJ (mean)", f"{result['trace_mean']:.4g}"]])


def hz(result: Mapping[str, Any]) -> None:
    info(f"Henze-Zirkler on {result['n']} encoded images of {result['model']}: HZ = {result['hz']:.4g}, "
         f"p = {result['p_value']:.3g} ({'consistent with' if result['normal'] else 'not'} a Gaussian at 5 %)")


def imse(result: Mapping[str, Any]) -> None:
    info(f"I-MSE of {result['model']} ({result['n']:,} draws in {result['latent_space']}, seed {result['seed']}): "
         f"{result['imse']:.5g}")


def distances(result: Mapping[str, Any]) -> None:
    rows = [[space, *(f"{result[space][k]:.4g}" for k in ("random", "noise", "near", "noise_ratio", "near_ratio"))]
            for space in ("latent", "image_pca")]
    table(f"Mean distances ({result['n']} images; noise ±{result['noise']}, image space PCA-reduced to "
          f"{result['latent_dim']} dims)",
          ["space", "random", "+noise", "nearest", "noise/random", "nearest/random"], rows)


def stats(result: Mapping[str, Any]) -> None:
    hz(result)
    if "distances" in result:
        distances(result["distances"])
