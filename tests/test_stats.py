"""Henze-Zirkler against the published formula written out pair by pair, and its behaviour."""

import math

import numpy as np

from zoo.metrics.stats import henze_zirkler


def hz_by_hand(x):
    n, p = x.shape
    m = x.mean(0)
    s_inv = np.linalg.inv(np.cov(x, rowvar=False, bias=True))
    b = (1 / math.sqrt(2)) * ((n * (2 * p + 1)) / 4) ** (1 / (p + 4))
    first = sum(math.exp(-b * b / 2 * float((x[i] - x[j]) @ s_inv @ (x[i] - x[j]))) for i in range(n) for j in range(n))
    second = sum(math.exp(-b * b / (2 * (1 + b * b)) * float((x[i] - m) @ s_inv @ (x[i] - m))) for i in range(n))
    return first / n - 2 * (1 + b * b) ** (-p / 2) * second + n * (1 + 2 * b * b) ** (-p / 2)


def test_statistic_equals_the_formula():
    x = np.array([[0.0, 1.0], [1.0, 0.5], [2.0, 2.5], [0.5, -1.0], [1.5, 0.0], [-1.0, 0.3]])
    assert abs(henze_zirkler(x)["hz"] - hz_by_hand(x)) < 1e-10
    y = np.random.default_rng(0).normal(size=(40, 3))
    assert abs(henze_zirkler(y)["hz"] - hz_by_hand(y)) < 1e-9


def test_gaussian_passes_and_skewed_fails():
    rng = np.random.default_rng(1)
    g = henze_zirkler(rng.normal(size=(500, 5)) @ rng.normal(size=(5, 5)))
    e = henze_zirkler(rng.exponential(size=(500, 5)))
    assert g["p_value"] > 0.05 and g["normal"]
    assert e["p_value"] < 1e-6 and not e["normal"]
    assert henze_zirkler(np.ones((10, 2)))["hz"] == 40.0  # singular covariance


def test_imse_is_zero_for_an_exact_inverter_and_the_lost_latents_energy_otherwise():
    """I-MSE against the same draws worked out by hand: an encoder that inverts the decoder exactly scores 0; one
    that drops two of four latents scores the mean of their squares / 2 over the draws."""
    import torch

    import zoo
    from zoo.metrics.stats import inverter_mse

    class Sigmoid(zoo.ZooModel):
        def __init__(self, keep):
            super().__init__()
            self.image_spec, self.latent_spec = zoo.ImageSpec(1, (2, 2)), zoo.LatentSpec((4,))
            self.keep = torch.tensor(keep, dtype=torch.float32)

        def encode(self, x):
            return torch.logit(x.flatten(1).double()).float() * self.keep

        def decode(self, z):
            return torch.sigmoid(z.double()).float().view(-1, 1, 2, 2)

    exact = inverter_mse(Sigmoid([1, 1, 1, 1]), n=300, seed=4)
    assert exact["imse"] < 1e-9 and exact["n"] == 300 and exact["latent_space"] == "z"
    z = torch.randn(300, 4, generator=torch.Generator().manual_seed(4)).double()
    lossy = inverter_mse(Sigmoid([1, 1, 0, 0]), n=300, seed=4, batch_size=64)
    assert math.isclose(lossy["imse"], float(z[:, 2:].pow(2).sum(1).mean() / 4), rel_tol=1e-5)
    assert lossy["per_dim"][0] < 1e-9 and math.isclose(lossy["per_dim"][3], float(z[:, 3].pow(2).mean()), rel_tol=1e-5)
