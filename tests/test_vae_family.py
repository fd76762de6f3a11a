"""The VAE family on tiny configurations: protocol conformance plus the parts each paper is about."""

import json
import math

import pytest
import torch
from zoo_vae.factorvae import permute_dims

import zoo
from zoo.testing import EncoderDecoderConformance

TINY = {"latent_dim": 4, "image_size": 16, "widths": [8, 8], "hidden": 16}


class TestVAE(EncoderDecoderConformance):
    arch = "vae"
    tiny_args = TINY


class TestBetaVAE(EncoderDecoderConformance):
    arch = "betavae"
    tiny_args = {**TINY, "preset": "b6"}


class TestFactorVAE(EncoderDecoderConformance):
    arch = "factorvae"
    tiny_args = {**TINY, "disc_width": 16, "disc_depth": 2, "channels": 3, "decoder_dist": "gaussian"}


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


def test_gamma_ema_follows_asperti_trentin_recurrence():
    """γ² = min(γ², 0.99·γ² + 0.01·mse), started at the first batch's MSE; checked against a float recurrence."""
    model = zoo.create_model("vae", pretrained=False, gamma_ema=0.99, **TINY).train()
    update = _update(model)
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    expected = math.inf
    for step in range(6):
        torch.manual_seed(step)
        rec = model.train_step(x, step, update)["rec"]
        expected = rec if math.isinf(expected) else min(expected, 0.99 * expected + 0.01 * rec)
        assert model.gamma_sq.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(zoo.ZooError, match="gamma_ema"):
        zoo.create_model("vae", pretrained=False, gamma_ema=1.0, **TINY)


def test_gamma_balanced_loss_value():
    """loss = H·W·mse / (2γ²) + KL with γ² the running minimum including this batch."""
    model = zoo.create_model("vae", pretrained=False, **TINY)
    model.gamma_sq.fill_(0.01)
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(0)
    t = model.loss_terms(x)
    g2 = min(0.01, t["rec"].item())
    assert t["loss"].item() == pytest.approx(16 * 16 * t["rec"].item() / (2 * g2) + t["kl"].item(), rel=1e-5)


def test_reconstruction_terms_match_independent_formulas():
    x = (torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(5)) > 0.5).float()
    for dist in ("bernoulli", "gaussian"):
        model = zoo.create_model("betavae", pretrained=False, beta=0.0, decoder_dist=dist, **TINY).double()
        torch.manual_seed(0)
        terms = model.loss_terms(x.double())
        torch.manual_seed(0)
        d = model.encode_dist(x.double())
        z = d.mean + torch.randn_like(d.mean) * torch.exp(0.5 * d.logvar)  # the same draw loss_terms makes
        p, xd = model.decode(z), x.double()
        if dist == "bernoulli":
            nll = -(xd * p.log() + (1 - xd) * (1 - p).log()).sum((1, 2, 3)).mean()
        else:
            nll = (xd - p).pow(2).sum((1, 2, 3)).mean()
        kl = (0.5 * (d.mean ** 2 + d.logvar.exp() - 1 - d.logvar)).sum(1).mean()
        torch.testing.assert_close(terms["rec"], nll)
        torch.testing.assert_close(terms["kl"], kl)
        torch.testing.assert_close(terms["loss"], nll)  # β = 0


@pytest.mark.parametrize("arch, args, match", [
    ("betavae", {"decoder_dist": "poisson"}, "decoder_dist"),
    ("factorvae", {"decoder_dist": "laplace"}, "decoder_dist"),
    ("vae", {"image_size": 18}, "divisible"),
    ("betavae", {"beta": -1.0}, "beta"),
    ("factorvae", {"gamma": -2.0}, "gamma"),
    ("factorvae", {"disc_width": 0}, "disc_width"),
])
def test_bad_arguments_raise_one_line_zoo_errors(arch, args, match):
    with pytest.raises(zoo.ZooError, match=match) as info:
        zoo.create_model(arch, pretrained=False, **{**TINY, **args})
    assert "\n" not in str(info.value)


def test_tc_estimate_is_the_discriminator_log_odds():
    model = zoo.create_model("factorvae", pretrained=False, **TINY, disc_width=16, disc_depth=2)
    x = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(6))
    torch.manual_seed(0)
    terms = model.loss_terms(x)
    with torch.no_grad():
        d = torch.softmax(model.discriminator(terms["z"]), 1)[:, 0].double()
    torch.testing.assert_close(terms["tc"].double(), torch.log(d / (1 - d)).mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms["d_real"].double(), d.mean(), rtol=1e-5, atol=1e-6)
    assert terms["loss"].item() == pytest.approx((terms["rec"] + terms["kl"] + 10.0 * terms["tc"]).item(), rel=1e-6)


def test_discriminator_learns_to_tell_correlated_codes_from_permuted_ones():
    """Codes with duplicated dimensions have a large TC: D must learn D(z) → 1, D(permuted z) → 0, TC > 0."""
    model = zoo.create_model("factorvae", pretrained=False, **TINY, disc_width=32, disc_depth=2, disc_lr=3e-3)
    opt = model.configure_optimizers()["disc"]
    g = torch.Generator().manual_seed(7)
    torch.manual_seed(0)
    for _ in range(150):
        a, b = torch.randn(128, 1, generator=g), torch.randn(128, 1, generator=g)
        z = torch.cat([a, a, b, -b], 1)
        opt.zero_grad(set_to_none=True)
        model.discriminator_loss(z).backward()
        opt.step()
    with torch.no_grad():
        a, b = torch.randn(512, 1, generator=g), torch.randn(512, 1, generator=g)
        z = torch.cat([a, a, b, -b], 1)
        logits = model.discriminator(z)
        d_real = torch.softmax(logits, 1)[:, 0].mean().item()
        d_perm = torch.softmax(model.discriminator(permute_dims(z)), 1)[:, 0].mean().item()
        tc = (logits[:, 0] - logits[:, 1]).mean().item()
    assert d_real > 0.75 and d_perm < 0.25 and tc > 1.0, (d_real, d_perm, tc)


def test_factorvae_updates_touch_only_their_own_parameters():
    """The VAE step's γ·TC gradient stops at D's weights; the discriminator step's gradient stops at the codes."""
    model = zoo.create_model("factorvae", pretrained=False, **TINY, disc_width=16, disc_depth=2, gamma=5.0).train()
    opts = model.configure_optimizers()
    enc, disc = list(model.encoder.parameters()), list(model.discriminator.parameters())
    seen = []

    def update(name, loss):
        opts[name].zero_grad(set_to_none=True)
        before = [None if p.grad is None else p.grad.clone() for p in enc]
        loss.backward()
        if name == "vae":
            assert all(p.grad is None for p in disc), "the VAE loss must not write discriminator gradients"
            assert all(p.grad is not None for p in enc)
        else:
            assert all(p.grad is not None for p in disc)
            assert all((b is None and p.grad is None) or torch.equal(b, p.grad) for b, p in zip(before, enc))
        opts[name].step()
        seen.append(name)

    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(8))
    torch.manual_seed(0)
    model.train_step(x, 0, update)
    assert seen == ["vae", "disc"]
    assert all(p.requires_grad for p in disc), "train_step must leave the discriminator trainable"


@pytest.mark.parametrize("name", ["vae.dsprites", "vae.faces64"])
def test_shipped_weights_still_load(name):
    model = zoo.create_model(name)
    assert 0 < model.gamma_sq.item() < 0.1  # the γ² the run ended with, restored from the weights
    with torch.inference_mode():
        z = model.sample_latent(2, generator=torch.Generator().manual_seed(0))
        x = model.decode(z)
    assert x.shape == (2, model.image_spec.channels, *model.image_spec.size)


def test_factorvae_ships_without_its_discriminator_and_trains_again_from_those_weights(tmp_path):
    """The discriminator only trains (dlib's is 20 MB of 23): `zoo ship` leaves it out, and the shipped weights
    encode, decode and score exactly as the full model; `--init` from them gives training a fresh discriminator."""
    from safetensors import safe_open

    from zoo.publish import ship
    from zoo.train import train

    args = {**TINY, "disc_width": 16, "disc_depth": 2}
    full = train("factorvae", "dsprites", steps=2, out=tmp_path / "run", batch_size=4, tag="dsprites",
                 model_args={**args, "image_size": 64})
    folder = ship(tmp_path / "run" / "weights", tmp_path / "bare", n=8)
    config = json.loads((folder / "config.json").read_text())
    with safe_open(folder / config["files"][""], "pt") as f:
        assert not [k for k in f.keys() if k.startswith("discriminator.")]
    assert config["model_args"]["discriminator"] is False and config["tag"] == "dsprites"
    trained = json.loads((tmp_path / "run" / "weights" / "config.json").read_text())
    assert config["provenance"] == trained["provenance"]  # the training that made them, unchanged
    assert str(tmp_path / "run" / "weights") in config["card"]["command"]  # rerunnable from the run folder
    loaded = zoo.create_model(f"local-dir:{folder}")
    assert loaded.discriminator is None and not loaded.has("train") and loaded.has("encode_dist")
    x = torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), full.encode(x))
        torch.testing.assert_close(loaded.decode(full.encode(x)), full.decode(full.encode(x)))
    assert sum(t.numel() for t in loaded.state_dict().values()) < sum(t.numel() for t in full.state_dict().values())
    with pytest.raises(zoo.CapabilityError, match="without its discriminator"):
        loaded.loss_terms(x)
    again = train("factorvae", "dsprites", steps=1, out=tmp_path / "again", batch_size=4,
                  model_args={**args, "image_size": 64}, init=f"local-dir:{folder}")
    assert again.discriminator is not None


def test_factorvae_at_gamma_0_trains_exactly_as_betavae_at_beta_1(tmp_path):
    """With γ = 0 the TC term is gone and FactorVAE's VAE half is a plain VAE: on the same seed and batches its encoder
    and decoder end bit for bit where β-VAE's at β = 1 do (the 20,000-step sweep runs γ = 0 and β = 1 agree so too),
    although its discriminator trains and draws permutations alongside."""
    from zoo.train import train

    common = {**TINY, "image_size": 64}
    fvae = train("factorvae", "dsprites", steps=3, out=tmp_path / "fvae", batch_size=4, lr=5e-4,
                 model_args={**common, "gamma": 0.0, "disc_width": 16, "disc_depth": 2})
    bvae = train("betavae", "dsprites", steps=3, out=tmp_path / "bvae", batch_size=4, lr=5e-4,
                 model_args={**common, "beta": 1.0})
    f, b = fvae.state_dict(), bvae.state_dict()
    assert set(b) < set(f) and all(k.startswith("discriminator.") for k in set(f) - set(b))
    assert all(torch.equal(f[k], b[k]) for k in b)
    tc = train("factorvae", "dsprites", steps=3, out=tmp_path / "tc", batch_size=4, lr=5e-4,
               model_args={**common, "gamma": 10.0, "disc_width": 16, "disc_depth": 2}).state_dict()
    assert not all(torch.equal(tc[k], b[k]) for k in b)  # control: a TC term does move the encoder
