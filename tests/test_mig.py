"""MIG against disentanglement_lib's fixtures and a straightforward per-pair reference on the same inputs."""

import math
from collections import Counter

import numpy as np
import pytest
import torch

import zoo
from zoo.data import get_dataset
from zoo.metrics.mig import compute_mig, factor_entropy, histogram_discretize, mig_from_codes, mutual_info_matrix


def reference_mi(a, b) -> float:
    """sklearn's mutual_info_score, written out for one pair of labellings."""
    n = len(a)
    if len(set(a)) == 1 or len(set(b)) == 1:
        return 0.0
    joint, ca, cb = Counter(zip(a, b)), Counter(a), Counter(b)
    total = 0.0
    for (x, y), nij in joint.items():
        term = (nij / n) * (math.log(nij) - math.log(n)) + (nij / n) * (
            math.log(n) + math.log(n) - math.log(ca[x] * cb[y]))
        total += term if abs(term) >= np.finfo(float).eps else 0.0
    return max(total, 0.0)


def reference_mig(codes, factors, bins=20):
    """dlib's loop: discretise each latent with np.histogram/np.digitize, one MI call per (latent, factor) pair."""
    disc = [np.digitize(c, np.histogram(c, bins)[1][:-1]) for c in codes.T]
    m = np.array([[reference_mi(list(d), list(f)) for f in factors.T] for d in disc])
    h = np.array([reference_mi(list(f), list(f)) for f in factors.T])
    s = np.sort(m, axis=0)[::-1]
    return float(np.mean((s[0] - s[1]) / h)), m, h


def test_dlib_fixtures():
    x = np.array([[.1, .2, .3, .4, .5, .6], [.6, .5, .4, .3, .2, .1]]).T
    np.testing.assert_array_equal(histogram_discretize(x, 3).T, [[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]])
    np.testing.assert_allclose(factor_entropy(np.array([[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]]).T),
                               [math.log(3)] * 2, atol=1e-12)
    mi = mutual_info_matrix(np.array([[1, 2, 1, 2], [1, 1, 2, 2]]).T, np.array([[1, 2, 1, 2], [2, 2, 1, 1]]).T)
    np.testing.assert_allclose(mi, [[math.log(2), 0], [0, math.log(2)]], atol=1e-12)


def test_identity_observations_fixture():
    """dlib's end-to-end test: 10 factors with values 1..10, observations = factors, identity discretiser."""
    rs = np.random.RandomState(0)
    ys = rs.randint(1, 11, size=(3000, 10))
    assert 0.9 <= mig_from_codes(ys.astype(float), ys, num_bins=None)["discrete_mig"] <= 1.0
    assert 0.0 <= mig_from_codes(np.zeros_like(ys), ys, num_bins=None)["discrete_mig"] <= 0.2
    assert 0.0 <= mig_from_codes(np.hstack([ys, ys]), ys, num_bins=None)["discrete_mig"] <= 0.1


@pytest.mark.parametrize("n, d, k", [(2000, 10, 5), (1500, 16, 3)])
def test_matches_per_pair_reference_to_1e12(n, d, k):
    rng = np.random.default_rng(n)
    factors = rng.integers(0, [3, 6, 40, 32, 32][:k], size=(n, k))
    codes = factors[:, rng.integers(0, k, size=d)] + rng.normal(size=(n, d)) * rng.uniform(0.1, 5, size=d)
    ref, m_ref, h_ref = reference_mig(codes, factors)
    out = mig_from_codes(codes, factors)
    np.testing.assert_allclose(out["mutual_info"], m_ref, atol=1e-12, rtol=0)
    np.testing.assert_allclose(out["entropy"], h_ref, atol=1e-12, rtol=0)
    assert abs(out["discrete_mig"] - ref) < 1e-12


def test_perfect_dsprites_representation_scores_about_0896():
    ds = get_dataset("dsprites")
    factors = ds.sample_factors(10000, np.random.RandomState(0))
    mig = mig_from_codes(factors.astype(float), factors)
    assert abs(mig["discrete_mig"] - 0.896) < 0.003
    np.testing.assert_allclose(mig["per_factor"][:2], [1.0, 1.0], atol=0.01)  # shape, scale: one bin per value


def test_invariances_and_duplication():
    ds = get_dataset("dsprites")
    f = ds.sample_factors(5000, np.random.default_rng(1))
    codes = f.astype(float) + np.random.default_rng(2).normal(size=f.shape) * 0.3
    base = mig_from_codes(codes, f)["discrete_mig"]
    perm = mig_from_codes(codes[:, [3, 0, 4, 1, 2]], f)["discrete_mig"]
    rescaled = mig_from_codes(3.0 * codes[:, [2, 1, 0, 3, 4]] - 7.0, f)["discrete_mig"]
    assert abs(perm - base) < 1e-12 and abs(rescaled - base) < 1e-12
    assert mig_from_codes(np.hstack([codes, codes]), f)["discrete_mig"] < 1e-12


def test_compute_mig_on_a_model_uses_dlib_stream():
    class Oracle(zoo.ZooModel):
        """'Encodes' a dSprites image into its centroid and mass (a crude but real representation)."""

        def __init__(self):
            super().__init__()
            self.image_spec, self.latent_spec = zoo.ImageSpec(1, (64, 64), "dsprites"), zoo.LatentSpec((3,))

        def encode(self, x):
            grid = torch.arange(64.0)
            mass = x.sum(dim=(1, 2, 3)).clamp_min(1)
            return torch.stack([(x.sum(2)[:, 0] * grid).sum(1) / mass, (x.sum(3)[:, 0] * grid).sum(1) / mass,
                                mass], 1)

    out = compute_mig(Oracle(), get_dataset("dsprites"), num_train=2000)
    names = out["factor_names"]
    assert out["per_factor"][names.index("posX")] > 0.5 and out["per_factor"][names.index("posY")] > 0.5
    again = compute_mig(Oracle(), get_dataset("dsprites"), num_train=2000)
    assert again["discrete_mig"] == out["discrete_mig"]
