"""diffusers' AutoencoderKL (the Stable Diffusion VAE family) as a zoo model: registration only, torch-free.

``zoo.create_model("diffusers:PATH_OR_REPO")`` loads a diffusers folder (``config.json`` +
``diffusion_pytorch_model.safetensors``, or a pipeline folder with ``vae/``), a Hub repo in that layout
(``diffusers:ORG/REPO[@REV]``, through zoo's bounded Hub client), in place — no conversion. Needs the optional extra
``pip install "latent-zoo[diffusers]"``.
"""

from __future__ import annotations

import zoo


@zoo.hookimpl
def zoo_register_models(register):
    register(zoo.ModelSpec(
        arch="diffusers_vae", factory="zoo_diffusers.model:DiffusersVAE",
        sources={"diffusers": "zoo_diffusers.model:load"},
        description="diffusers AutoencoderKL (Stable Diffusion's VAE family), loaded in place: diffusers:PATH_OR_REPO",
        paper="Rombach et al. 2022, High-Resolution Image Synthesis with Latent Diffusion Models"))
