"""Registration of the example plugin: one of each extension point, cheap and torch-free.

- an architecture (``linae``, a linear autoencoder),
- a dataset (``stripes``, procedural stripes with two factors),
- a metric (``code_spread``: per-dimension spread of a model's codes on data),
- a relocation map (``rank2``: a reduced-rank linear map between latent spaces).
"""

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


@zoo.hookimpl
def zoo_register_datasets(register):
    register(zoo.DatasetSpec("stripes", "zoo_example.data:Stripes",
                             "procedural 64x64 stripes: angle (8) and spacing (6); an example dataset"))


@zoo.hookimpl
def zoo_register_tasks(register):
    register(zoo.TaskSpec(
        "code_spread", "zoo_example.metric:code_spread",
        "standard deviation of each latent dimension over data, and how many dimensions are in use",
        models="one", data="images", needs=("encode",),
        options=(zoo.Option("n", "int", 500, "images to encode", min=2),
                 zoo.Option("seed", "int", 0, "seed of the image draw"),
                 zoo.Option("threshold", "float", 0.05, "a dimension whose spread is below this is unused", min=0)),
    ))


@zoo.hookimpl
def zoo_register_relocation_maps(register):
    register(zoo.RelocationMapSpec(
        "rank2", "zoo_example.relocation:fit_rank2",
        "least squares through the source codes' top-2 principal directions (a reduced-rank linear map)",
        min_points=lambda d_in: 3,
    ))
