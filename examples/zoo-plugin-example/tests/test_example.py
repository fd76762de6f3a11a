"""The example plugin's own tests: latent-zoo's conformance kit does the model; the rest runs through zoo's API."""

import torch

import zoo
from zoo.testing import EncoderDecoderConformance


class TestLinearAE(EncoderDecoderConformance):
    arch = "linae"
    tiny_args = {"latent_dim": 3, "image_size": 8}


def test_the_dataset_renders_its_factors():
    ds = zoo.get_dataset("stripes")
    x, f = ds.sample(6, 0)
    assert x.shape == (6, 1, 64, 64) and f.shape == (6, 2) and len(ds) == 48
    assert torch.equal(ds.images_from_factors(f), x)


def test_the_metric_runs_on_a_built_in_model():
    result = zoo.run("code_spread", "betavae.dsprites", n=64)
    assert len(result["spread"]) == 10 and 0 <= result["active_dims"] <= 10


def test_the_relocation_map_runs_between_built_in_models():
    from zoo.relocate.api import relocate

    r = relocate("splitvae.faces64", "vae.faces64", method="rank2", n_fit=40, n_pool=200, n_test=50)
    assert r.method == "rank2" and r.m_mse[0] < r.baseline
