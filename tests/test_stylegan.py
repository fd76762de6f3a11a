"""StyleGAN2 (W space) on a tiny configuration, checked against straightforward reference computations."""

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.testing import EncoderDecoderConformance
from zoo.invert import refine_codes as refine
from zoo_stylegan.model import SynthesisLayer, upsample2d

TINY = {"z_dim": 8, "w_dim": 8, "resolution": 16, "channel_base": 64, "channel_max": 16, "recoder_width": 8}


class TestStyleGAN(EncoderDecoderConformance):
    arch = "stylegan"
    tiny_args = TINY


def test_modulated_conv_matches_a_per_sample_reference():
    torch.manual_seed(0)
    layer = SynthesisLayer(4, 5, w_dim=6, resolution=8, up=False)
    with torch.no_grad():
        layer.bias.normal_()
        layer.noise_strength.fill_(0.3)
    x, w = torch.randn(3, 4, 8, 8), torch.randn(3, 6)
    out = layer(x, w, "const")
    for b in range(3):  # the paper's form: modulate the weight, demodulate per output channel, convolve
        s = layer.affine(w[b:b + 1])[0]
        wm = layer.weight * s[None, :, None, None]
        wm = wm / (wm.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        y = F.conv2d(x[b:b + 1], wm, padding=1) + layer.noise_const * 0.3 + layer.bias[None, :, None, None]
        torch.testing.assert_close(out[b:b + 1], F.leaky_relu(y, 0.2) * 2 ** 0.5, atol=1e-5, rtol=1e-5)


def test_demodulation_keeps_unit_variance():
    torch.manual_seed(1)
    layer = SynthesisLayer(64, 64, w_dim=16, resolution=16, up=False)
    x = torch.randn(8, 64, 16, 16)
    styles = layer.affine(torch.randn(8, 16))
    y = F.conv2d(x * styles[:, :, None, None], layer.weight, padding=1)
    d = ((layer.weight[None] * styles[:, None, :, None, None]).square().sum(dim=(2, 3, 4)) + 1e-8).rsqrt()
    std = (y * d[:, :, None, None])[..., 2:-2, 2:-2].std()  # away from the zero-padded border
    assert abs(std.item() - 1.0) < 0.1


def test_fir_upsampling_preserves_constants_and_doubles_size():
    x = torch.full((1, 2, 4, 4), 0.7)
    from zoo_stylegan.model import fir_filter

    y = upsample2d(x, fir_filter())
    assert y.shape == (1, 2, 8, 8)
    torch.testing.assert_close(y[..., 1:-1, 1:-1], torch.full_like(y[..., 1:-1, 1:-1], 0.7))


def test_truncation_and_prior_space():
    model = zoo.create_model("stylegan", pretrained=False, **TINY)
    with torch.no_grad():
        model.generator.mapping.w_avg.normal_()
    w = model.sample_latent(4, generator=torch.Generator().manual_seed(0))
    avg = model.generator.mapping.w_avg.expand(4, -1)
    torch.testing.assert_close(model.truncate(w, 0.0), avg)
    torch.testing.assert_close(model.decode(model.truncate(w, 0.0)), model.decode(avg))
    assert model.prior_spec.space == "z" and model.latent_spec.space == "w" and model.has("mapping")
    z = model.sample_prior(4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model.map_prior(z), w)


def test_refinement_lowers_the_pixel_loss():
    model = zoo.create_model("stylegan", pretrained=False, **TINY)
    with torch.no_grad():
        target = model.decode(model.sample_latent(3, generator=torch.Generator().manual_seed(3)))
        start = model.encode(target)
        before = (model.decode(start) - target).square().mean()
    w = refine(model, target, steps=30, lr=0.05)
    after = (model.decode(w) - target).square().mean()
    assert after < 0.5 * before


def test_a_lower_resolution_stylegan_grows_into_a_higher_one():
    """`--init` from a 8x8 StyleGAN into a 32x32 one: the grown generator first draws the old images up-sampled
    twice (the new ToRGBs start at zero); the discriminator's old blocks are the old ones; shrinking is refused."""
    args = {k: v for k, v in TINY.items() if k != "resolution"}
    torch.manual_seed(0)
    small = zoo.create_model("stylegan", pretrained=False, resolution=8, **args)
    big = zoo.create_model("stylegan", pretrained=False, resolution=32, **args)
    big.load_init(small)
    w = small.sample_latent(3, generator=torch.Generator().manual_seed(1))
    f = big.generator.synthesis.b32.resample_filter
    with torch.no_grad():
        old = small.generator.synthesis(w[:, None].expand(-1, small.generator.synthesis.num_ws, -1))
        new = big.generator.synthesis(w[:, None].expand(-1, big.generator.synthesis.num_ws, -1))
        torch.testing.assert_close(new, upsample2d(upsample2d(old, f), f))
        feats = torch.randn(3, small.discriminator.fromrgb.out_channels, 8, 8)  # what fromrgb hands the 8x8 block
        torch.testing.assert_close(big.discriminator.blocks[10:](feats), small.discriminator.blocks(feats))
    assert big.generator.synthesis.b32.torgb.weight.abs().sum() == 0
    assert big.generator.synthesis.b16.conv0.weight.abs().sum() > 0  # the new blocks themselves are random
    with pytest.raises(RuntimeError, match="can only grow"):
        small.load_init(big)
