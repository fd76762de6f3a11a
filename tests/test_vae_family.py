"""The VAE family on tiny configurations: protocol conformance plus the parts each paper is about."""

import pytest
import torch

import zoo
from zoo.testing import EncoderDecoderConformance
from zoo_vae.factorvae import permute_dims

TINY = {"latent_dim": 4, "image_size": 16, "widths": [8, 8], "hidden": 16}


class TestVAE(EncoderDecoderConformance):
    arch = "vae"
    tiny_args = TINY


class TestBetaVAE(EncoderDecoderConformance):
    arch = "betavae"
    tiny_args = {**TINY, "preset": "b6"}


class TestFactorVAE(EncoderDecoderConformance):
    arch = "factorvae"
    tiny_args = {**TINY, "disc_width": 16, "disc_depth": 2, "channels": 3}


def _update(model):
    opts = model.configure_optimizers()

    def update(name, loss):
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    return update


def test_gamma_is_a_detached_running_minimum():
    model = zoo.create_model("vae", pretrained=False, **TINY).train()
    update = _update(model)
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    seen = []
    for step in range(5):
        torch.manual_seed(step)
        logs = model.train_step(x, step, update)
        seen.append(logs["rec"])
        assert model.gamma_sq.item() == pytest.approx(min(seen), rel=1e-6)
        assert not model.gamma_sq.requires_grad
    torch.manual_seed(0)
    terms = model.loss_terms(x)
    assert terms["gamma_sq"].grad_fn is None  # no gradient flows into γ²


def test_beta_presets_and_kl_weight():
    assert zoo.create_model("betavae", pretrained=False, preset="b16", **TINY).beta == 16.0
    with pytest.raises(zoo.ZooError, match="unknown β preset"):
        zoo.create_model("betavae", pretrained=False, preset="b3", **TINY)
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    m1 = zoo.create_model("betavae", pretrained=False, beta=1.0, **TINY)
    m4 = zoo.create_model("betavae", pretrained=False, beta=4.0, **TINY)
    torch.manual_seed(0)
    t1 = m1.loss_terms(x)
    torch.manual_seed(0)
    t4 = m4.loss_terms(x)
    torch.testing.assert_close(t4["loss"] - t1["loss"], 3.0 * t1["kl"])


def test_permute_dims_shuffles_each_column_independently():
    z = torch.arange(200.0).view(50, 4)
    torch.manual_seed(0)
    p = permute_dims(z)
    for j in range(4):
        assert sorted(p[:, j].tolist()) == z[:, j].tolist()  # each column is a permutation of itself
    assert not torch.equal(p, z)
    rows_kept = (p == z[p[:, 0].long() // 4]).all(1).float().mean()
    assert rows_kept < 0.5  # rows are broken up: dimensions are shuffled independently


def test_factorvae_step_has_no_inplace_error_and_leaks_nothing_into_encoder():
    model = zoo.create_model("factorvae", pretrained=False, **TINY, disc_width=16, disc_depth=2).train()
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    z = model.loss_terms(x)["z"]
    model.zero_grad()
    model.discriminator_loss(z).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert any(p.grad is not None for p in model.discriminator.parameters())
    update = _update(model)
    for step in range(3):
        logs = model.train_step(x, step, update)
    assert {"tc", "d_real", "d_perm", "d_loss"} <= set(logs)
