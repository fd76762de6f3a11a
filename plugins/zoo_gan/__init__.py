"""Vanilla GAN + recoder (Asperti & Tonelli 2022): registration only, torch-free."""

from __future__ import annotations

from pathlib import Path

import zoo

_SHIPPED = (Path(__file__).parent / "weights" / "gan.faces64" / "config.json").is_file()


@zoo.hookimpl
def zoo_register_models(register):
    register(zoo.ModelSpec(
        arch="gan", factory="zoo_gan.model:GAN",
        weights=(zoo.WeightsCfg(tag="faces64", dataset="faces64",
                                embedded="zoo_gan:weights/gan.faces64" if _SHIPPED else None),),
        description="vanilla GAN with a recoder (image → z) trained on generated samples",
        paper="Asperti & Tonelli 2022, Comparing the latent space of generative models"))
