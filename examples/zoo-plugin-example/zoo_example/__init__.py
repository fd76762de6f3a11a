"""Registration of the example plugin: cheap, torch-free."""

import zoo


@zoo.hookimpl
def zoo_register_models(register):
    register(zoo.ModelSpec(
        arch="linae",
        factory="zoo_example.model:build",
        weights=(zoo.WeightsCfg(tag="dsprites", dataset="dsprites"),),
        default_args={"latent_dim": 8, "channels": 1, "image_size": 64},
        description="linear autoencoder (PCA-like); an example third-party plugin",
    ))
