"""StyleGAN2 in W space (Karras et al. 2020): registration only, torch-free."""

from __future__ import annotations

from pathlib import Path

import zoo

_SHIPPED = (Path(__file__).parent / "weights" / "stylegan.faces64" / "config.json").is_file()


@zoo.hookimpl
def zoo_register_models(register):
    register(zoo.ModelSpec(
        arch="stylegan", factory="zoo_stylegan.model:StyleGAN",
        weights=(zoo.WeightsCfg(tag="faces64", dataset="faces64",
                                embedded="zoo_stylegan:weights/stylegan.faces64" if _SHIPPED else None),),
        description="StyleGAN2 generator; zoo's latent space is W (mapping exposed for Z), W recoder + refinement",
        paper="Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN",
        converters={"stylegan2": "zoo_stylegan.convert:convert_nvlabs_pickle"}))
