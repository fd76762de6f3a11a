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
