"""Registers relocation's maps, fit sets and the ``relocate`` task through the hooks a third-party plugin uses.

Cheap and torch-free: the functions are named as ``"module:function"`` strings and imported when first used.
"""

import zoo


def one_more_than_dim(d_in: int) -> int:
    """Fit points that determine a map with a bias (or a centring): one more than the source dimension."""
    return d_in + 1


def any_two(d_in: int) -> int:
    """A regularised map takes any fit set of two or more points."""
    return 2


@zoo.hookimpl
def zoo_register_relocation_maps(register):
    maps = "zoo.relocate.maps"
    register(zoo.RelocationMapSpec("linear", f"{maps}:fit_linear",
                                   "Y ≈ X·A without bias, closed-form least squares (the paper's map)"))
    register(zoo.RelocationMapSpec("ridge", f"{maps}:fit_ridge",
                                   "linear with an L2 penalty chosen by leave-one-out error", min_points=any_two))
    register(zoo.RelocationMapSpec("affine", f"{maps}:fit_affine", "Y ≈ X·A + b",
                                   min_points=one_more_than_dim))
    register(zoo.RelocationMapSpec("procrustes", f"{maps}:fit_procrustes",
                                   "standardise both sides, then the best (semi-)orthogonal A",
                                   min_points=one_more_than_dim))
    register(zoo.RelocationMapSpec("mlp", f"{maps}:fit_mlp",
                                   "linear plus a residual MLP, kept only where it improves the fit"))


@zoo.hookimpl
def zoo_register_fit_sets(register):
    support = "zoo.relocate.support"
    register(zoo.FitSetSpec("support", f"{support}:support_set",
                            "the paper's support set: one image per sign sector of the most informative latents "
                            "(the default, --fit auto)", uses_gains=True))
    register(zoo.FitSetSpec("random", f"{support}:random_set", "uniformly random pool images"))
    register(zoo.FitSetSpec("kmeans", f"{support}:kmeans_set", "the pool images nearest to k-means centroids"))
    register(zoo.FitSetSpec("fps", f"{support}:farthest_point_set", "farthest-point sampling of the pool's codes"))
    register(zoo.FitSetSpec("data", f"{support}:whole_pool", "every pool image (--n-fit ignored)",
                            whole_pool=True))
    register(zoo.FitSetSpec("generated", None, "samples decoded by the source model (needs a sampler)",
                            generated=True))


RELOCATE = zoo.TaskSpec(
    "relocate", "zoo.relocate.api:relocate_task",
    "fit a map between two latent spaces and report L/R/M-MSE (Asperti & Tonelli 2022)",
    models="pair", data="images", needs=("encode", "decode"),
    options=(
        zoo.Option("fit", "str", "auto", "Correspondence set the map is fitted on: a registered fit set, or auto "
                                         "(the paper's support set of real images)."),
        zoo.Option("method", "str", "linear", "The map: a registered relocation map."),
        zoo.Option("n_fit", "int", 150, "Fit points; at most --n-pool, and at least the source latent dimension for "
                                        "a linear map.", min=2),
        zoo.Option("n_pool", "int", 2000, "Images the fit set is chosen from (all of them with --fit data), "
                                          "disjoint from the test images.", min=2),
        zoo.Option("n_test", "int", 1000, "Held-out images; the baseline pairs each with another one.", min=2),
        zoo.Option("seed", "int", 0, "Seed of every random draw (images, fit set, map).", min=0),
        zoo.Option("refine_targets", "int", 0, "Refine the target codes of the fit set by this many inversion "
                                               "steps (for GAN recoders).", min=0),
        zoo.Option("out", "str", None, "Folder for relocation.png (default: relocation/SOURCE-TARGET)."),
        zoo.Option("save_map", "str", None, "Save the fitted map in this folder."),
        zoo.Option("overwrite", "bool", False, "Replace zoo's files in --out/--save-map even if other files are "
                                               "there; other files are kept."),
    ),
    report="zoo_cli.relocate:report")


@zoo.hookimpl
def zoo_register_tasks(register):
    register(RELOCATE)
