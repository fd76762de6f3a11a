"""Relocation: the maps against independent solvers, the support set on a known latent space, the tool end to end."""

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner
from zoo_cli.main import make_cli

import zoo
from zoo.relocate.api import relocate
from zoo.relocate.maps import fit_map, load_map, ridge_loo, save_map
from zoo.relocate.support import reconstruction_gain, sector_support, select


@pytest.fixture
def pairs():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 12, generator=g, dtype=torch.float64)
    A = torch.randn(12, 9, generator=g, dtype=torch.float64)
    Y = X @ A + 0.1 * torch.randn(200, 9, generator=g, dtype=torch.float64)
    return X, Y


def test_linear_equals_scipy_lstsq(pairs):
    X, Y = pairs
    m = fit_map(X, Y, "linear")
    ref = scipy.linalg.lstsq(X.numpy(), Y.numpy())[0]
    np.testing.assert_allclose(m.A.numpy(), ref, atol=1e-6)
    np.testing.assert_allclose(m(X).numpy(), X.numpy() @ ref, atol=1e-6)


def test_ridge_approaches_linear_as_lambda_vanishes(pairs):
    X, Y = pairs
    A0 = fit_map(X, Y, "linear").A
    A_small, _ = ridge_loo(X, Y, lambdas=torch.tensor([1e-10], dtype=torch.float64))
    torch.testing.assert_close(A_small, A0, atol=1e-8, rtol=0)
    A_big, _ = ridge_loo(X, Y, lambdas=torch.tensor([1e4], dtype=torch.float64))
    assert A_big.norm() < A0.norm()
    m = fit_map(X, Y, "ridge")
    assert m.config["lambda"] >= 0 and (m(X) - Y).pow(2).mean() < Y.var()


def test_affine_recovers_a_bias(pairs):
    X, Y = pairs
    m = fit_map(X, Y + 5.0, "affine")
    assert (m(X) - (Y + 5.0)).pow(2).mean() < 0.02


def test_procrustes_is_orthogonal_and_recovers_a_rotation():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(300, 6, generator=g, dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    m = fit_map(X, 3.0 * X @ Q + 1.0, "procrustes")
    torch.testing.assert_close(m.A.T @ m.A, torch.eye(6, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(m.A, Q, atol=1e-6, rtol=0)
    rect = fit_map(X, X[:, :4], "procrustes").A  # 6 → 4: semi-orthogonal
    torch.testing.assert_close(rect.T @ rect, torch.eye(4, dtype=torch.float64), atol=1e-10, rtol=0)


def test_mlp_never_worse_than_linear_on_fit_set(pairs):
    X, Y = pairs
    Yn = Y + 0.5 * torch.tanh(X[:, :9]) ** 2  # something non-linear to learn
    lin = (fit_map(X, Yn, "linear")(X) - Yn).pow(2).mean()
    m = fit_map(X, Yn, "mlp", steps=200, hidden=32)
    mlp = (m(X) - Yn).pow(2).mean()
    assert mlp <= lin + 1e-12 and m.config["fit_mse_mlp"] <= m.config["fit_mse_linear"]


def test_map_save_load_roundtrip(pairs, tmp_path):
    X, Y = pairs
    m = fit_map(X, Y, "mlp", steps=5, hidden=8)
    save_map(m, tmp_path / "map", {"source": "a", "target": "b"})
    loaded = load_map(tmp_path / "map")
    torch.testing.assert_close(loaded(X), m(X))
    assert loaded.config["source"] == "a" and loaded.config["method"] == "mlp"


def test_support_set_finds_informative_variables_and_covers_sectors():
    """A decoder that uses only latents 2, 5 and 7: reconstruction gain must rank them first, and the support set
    must visit all 2³ sign sectors of those variables."""
    informative = [2, 5, 7]

    class Known(zoo.ZooModel):
        def __init__(self):
            super().__init__()
            self.image_spec, self.latent_spec = zoo.ImageSpec(1, (4, 4)), zoo.LatentSpec((10,))
            self.w = torch.zeros(10, 16)
            self.w[informative, :] = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))

        def encode(self, x):
            return self.z  # codes are set by the test

        def decode(self, z):
            return torch.sigmoid(z @ self.w).view(-1, 1, 4, 4)

    m = Known()
    m.z = torch.randn(400, 10, generator=torch.Generator().manual_seed(1))
    gains = reconstruction_gain(m, m.decode(m.z), batch_size=400)
    assert set(torch.argsort(gains, descending=True)[:3].tolist()) == set(informative)
    chosen = sector_support(m.z, gains, n_vars=3, size=40, seed=0)
    assert len(chosen) == 40 and len(set(chosen.tolist())) == 40
    signs = {tuple((m.z[i, informative] > 0).tolist()) for i in chosen[:8]}
    assert len(signs) == 8  # the first round takes one point from each of the 2³ sectors
    for method in ("random", "kmeans", "fps"):
        idx = select(method, m.z, 25, seed=0)
        assert len(set(idx.tolist())) == 25


TINY_VAE = {"latent_dim": 6, "image_size": 16, "widths": [8, 8], "hidden": 16, "channels": 3, "dataset": "faces64"}


def test_relocate_end_to_end_on_trained_tiny_models(tmp_path):
    """Two tiny VAEs trained briefly on faces64 (16x16): relocation beats the inter-image baseline."""
    from zoo.train import train

    a = train("vae", "faces64", steps=150, out=tmp_path / "a", batch_size=32, lr=2e-3, model_args=TINY_VAE, seed=0)
    b = train("vae", "faces64", steps=150, out=tmp_path / "b", batch_size=32, lr=2e-3, model_args=TINY_VAE, seed=1)
    r = relocate(a, b, n_fit=60, n_pool=300, n_test=200, out=tmp_path / "out", save_map_to=tmp_path / "map")
    assert r.m_mse[0] < 0.75 * r.baseline and r.fit == "support" and r.n_fit == 60
    assert r.m_mse[0] >= 0.9 * r.target_r_mse[0]  # relocation cannot beat the target's own reconstruction by much
    assert (tmp_path / "out" / "relocation.png").is_file() and load_map(tmp_path / "map").config["target"] == "vae"
    d = r.to_dict()
    assert set(d["m_mse"]) == {"mean", "std"} and json.dumps(d)


@pytest.mark.parametrize("args, needle", [
    (["relocate", "nosuch", "toyae"], "unknown model 'nosuch'"),
    (["relocate", "toyae", "tae"], "toyae.bars has no weights yet"),
    (["relocate", "toyae"], "takes SRC and TGT"),
])
def test_bad_pairs_are_one_line(toy_plugin, args, needle):
    result = CliRunner().invoke(make_cli(), args)
    assert result.exit_code == 1 and result.stderr.strip().count("\n") == 0 and needle in result.stderr


def test_model_without_encoder_and_mismatched_data(tmp_path):
    gan = zoo.create_model("gan", pretrained=False, latent_dim=4, image_size=16, gen_widths=[8, 8],
                           disc_widths=[8, 8], recoder_widths=[8, 8], seed_channels=4)
    vae = zoo.create_model("vae", pretrained=False, **{**TINY_VAE, "dataset": "dsprites", "channels": 1})
    with pytest.raises(zoo.ZooError, match="no common training dataset .*'faces64'.*'dsprites'.*pass --data"):
        relocate(gan, vae)

    class DecoderOnly(zoo.ZooModel):
        def __init__(self):
            super().__init__()
            self.image_spec, self.latent_spec = zoo.ImageSpec(1, (4, 4), "dsprites"), zoo.LatentSpec((2,))

        def decode(self, z):
            return torch.zeros(len(z), 1, 4, 4)

    with pytest.raises(zoo.CapabilityError, match="has no encoder \\(relocation needs it\\)"):
        relocate(DecoderOnly(), vae)


def test_refined_targets_decode_closer_to_the_fit_images():
    from zoo.data import get_dataset
    from zoo.image import adapt
    from zoo.relocate.api import correspondence

    src = zoo.create_model("vae", pretrained=False, **TINY_VAE)
    tgt = zoo.create_model("vae", pretrained=False, **{**TINY_VAE, "latent_dim": 5})
    pool, _ = get_dataset("faces64").sample(120, 0)
    zs0, zt0, chosen0 = correspondence(src, tgt, "support", pool, 20, seed=0)
    zs, zt, chosen = correspondence(src, tgt, "support", pool, 20, seed=0, refine_targets=30)
    assert torch.equal(zs, zs0) and np.array_equal(chosen, chosen0) and zt.shape == zt0.shape == (20, 5)
    xt = adapt(pool[chosen], tgt.image_spec)
    with torch.no_grad():
        before, after = ((tgt.decode(z) - xt).pow(2).mean().item() for z in (zt0, zt))
    assert after < before
