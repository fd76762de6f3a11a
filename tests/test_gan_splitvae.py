"""GAN + recoder and Split-VAE on tiny configurations."""

import torch

import zoo
from zoo.testing import EncoderDecoderConformance
from zoo.metrics.stats import inverter_mse


class TestGAN(EncoderDecoderConformance):
    arch = "gan"
    tiny_args = {"latent_dim": 4, "image_size": 16, "gen_widths": [8, 8], "disc_widths": [8, 8],
                 "recoder_widths": [8, 8], "seed_channels": 4}


class TestSplitVAE(EncoderDecoderConformance):
    arch = "splitvae"
    tiny_args = {"latent_dim": 4, "image_size": 16, "widths": [8, 8], "emb_dim": 8, "decoder_widths": [16, 8, 8]}


def test_split_decode_is_a_masked_mix():
    model = zoo.create_model("svae", pretrained=False, **TestSplitVAE.tiny_args)
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x, x1, x2, sigma = model.split_decode(z)
    assert sigma.shape == (3, 1, 16, 16) and x1.shape == x2.shape == x.shape == (3, 3, 16, 16)
    torch.testing.assert_close(x, sigma * x1 + (1 - sigma) * x2)
    torch.testing.assert_close(model.decode(z), x)


def test_recoder_learns_to_invert_the_generator():
    model = zoo.create_model("gan", pretrained=False, **TestGAN.tiny_args).train()
    opts = model.configure_optimizers()

    def update(name, loss):
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    with torch.no_grad():  # an untrained generator barely depends on z; make its images vary with z
        model.generator.fc[0].weight.mul_(10)
        model.generator.net[-1].weight.mul_(10)
    model.eval()
    before = inverter_mse(model, n=200)["imse"]
    torch.manual_seed(0)
    for step in range(150):  # recoder-only steps on a frozen generator
        with torch.no_grad():
            z = torch.randn(32, 4)
            x = model.decode(z)
        update("recoder", (model.recoder(x) - z).pow(2).mean())
    assert inverter_mse(model, n=200)["imse"] < 0.8 * before
