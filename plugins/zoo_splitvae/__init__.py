"""Split-VAE (Asperti & Tonelli 2022): registration only, torch-free."""

from __future__ import annotations

from pathlib import Path

import zoo

WEIGHTS = Path(__file__).parent / "weights"


def _tag(tag: str, description: str) -> zoo.WeightsCfg:
    shipped = (WEIGHTS / f"splitvae.{tag}" / "config.json").is_file()
    return zoo.WeightsCfg(tag=tag, dataset="faces64", description=description,
                          embedded=f"zoo_splitvae:weights/splitvae.{tag}" if shipped else None)


@zoo.hookimpl
def zoo_register_models(register):
    register(zoo.ModelSpec(
        arch="splitvae", factory="zoo_splitvae.model:SplitVAE", aliases=("svae",),
        weights=(_tag("faces64", "seed 0"), _tag("faces64-s1", "a second training, seed 1 (Type-1 relocation)")),
        description="Split-VAE: the decoder emits two images and a mask, x̂ = σ·x̂₁ + (1−σ)·x̂₂",
        paper="Asperti, Bugo & Filippini 2022, Enhancing variational generation through self-decomposition"))
