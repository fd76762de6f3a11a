"""Registers zoo's metrics through the same hook a third-party plugin uses."""

import zoo


@zoo.hookimpl
def zoo_register_metrics(register):
    register(zoo.MetricSpec("mig", "zoo.metrics.mig:compute_mig",
                            "Mutual Information Gap, disentanglement_lib's estimator (key discrete_mig)",
                            needs=("encode",)))
    register(zoo.MetricSpec("mig_chen", "zoo.metrics.scores:chen_mig",
                            "Chen et al.'s sampling-based MIG (log|V| normaliser); not comparable with discrete_mig",
                            needs=("encode_dist",)))
    register(zoo.MetricSpec("scores", "zoo.metrics.scores:compute_scores",
                            "β-VAE, FactorVAE, DCI, SAP, modularity/explicitness and unsupervised scores (dlib)",
                            needs=("encode",)))
    register(zoo.MetricSpec("ppl", "zoo.metrics.ppl:perceptual_path_length",
                            "perceptual path length (Karras et al.), pixel-space squared L2 by default",
                            needs=("decode",)))
    register(zoo.MetricSpec("jacobian", "zoo.metrics.jacobian:jacobian_geometry",
                            "pullback metric JᵀJ of the decoder: spectrum, condition number, orthogonality",
                            needs=("decode",)))
    register(zoo.MetricSpec("hz", "zoo.metrics.stats:latent_normality",
                            "Henze-Zirkler multivariate normality test of the encoded data", needs=("encode",)))
    register(zoo.MetricSpec("distances", "zoo.metrics.stats:distance_analysis",
                            "latent distances of random / noisy / nearest pairs vs the PCA-reduced image space",
                            needs=("encode",)))
