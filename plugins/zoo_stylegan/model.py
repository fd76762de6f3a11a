"""A StyleGAN2 generator whose zoo latent space is W (Karras et al. 2020, "Analyzing and Improving the Image Quality
of StyleGAN"), small enough to train on a CPU, with NVlabs' parameter names (``mapping.fc0.weight``,
``synthesis.b8.conv0.affine.weight``, ...) so official checkpoints convert key for key (see ``convert.py``).

- Mapping Z → W: pixel norm, ``map_layers`` equalised-lr FC layers with lr multiplier 0.01 and lrelu·√2; ``w_avg``
  tracked during training (β = 0.995) for truncation.
- Synthesis: a learned 4×4 constant, per block an up-sampling modulated/demodulated 3×3 conv and a plain one, each
  with per-pixel noise (a fixed ``noise_const`` buffer when decoding, so decoding is deterministic), bias and lrelu·√2;
  ToRGB 1×1 modulated convs (no demodulation) summed through FIR-[1,3,3,1]-up-sampled skips.
- W recoder: a conv encoder trained on generated samples to predict w (``encode``); ``zoo.invert.refine_codes``
  optimises w further for a pixel loss.
- Discriminator (training only): conv blocks with average-pool down-sampling and a minibatch-stddev feature.
Training: non-saturating logistic loss, lazy R1 every 16 steps, Adam(β = (0, 0.99)) — the generator at NVlabs' lr
(its layers are equalised), the plain-parameterised discriminator at a lower ``disc_lr`` (at 0.0025 it diverged
within 200 steps); no path-length regulariser,
no style mixing and no G EMA (as NVlabs' small ``cifar`` config, except the EMA, which we leave out for simplicity).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo

SQRT2 = math.sqrt(2.0)


def channel_widths(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """Feature maps per resolution 4 … ``resolution``: min(channel_base / r, channel_max), NVlabs' rule."""
    return {r: min(channel_base // r, channel_max) for r in (2 ** i for i in range(2, int(math.log2(resolution)) + 1))}


def lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2) * SQRT2


class FullyConnected(nn.Module):
    """Equalised learning rate: weights stored as N(0, 1)/lr_mul, scaled by lr_mul/√fan_in at run time."""

    def __init__(self, cin: int, cout: int, lr_mul: float = 1.0, bias_init: float = 0.0, act: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.weight_gain, self.bias_gain, self.act = lr_mul / math.sqrt(cin), lr_mul, act

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return lrelu(x) if self.act else x


class Mapping(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float = 0.01):
        super().__init__()
        self.num_layers = num_layers
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnected(z_dim if i == 0 else w_dim, w_dim, lr_mul, act=True))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, track: bool = False) -> Tensor:
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if track:
            self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, 0.995))
        return x


def fir_filter() -> Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = f[:, None] * f[None, :]
    return f / f.sum()


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """Zero-insertion ×2 then the FIR low-pass (gain 4), as one depthwise transposed conv."""
    c = x.shape[1]
    return F.conv_transpose2d(x, (f * 4).expand(c, 1, 4, 4), stride=2, padding=1, groups=c)


def up_conv_nvlabs(x: Tensor, weight: Tensor, f: Tensor) -> Tensor:
    """NVlabs' up-sampling 3×3 conv: a stride-2 transposed conv (true convolution with the kernel), then the FIR
    low-pass (gain 4) with one pixel of zero padding — the official networks' arithmetic."""
    x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    c = x.shape[1]
    return F.conv2d(F.pad(x, [1, 1, 1, 1]), (f * 4).expand(c, 1, 4, 4), groups=c)


UP_CONVS = ("fir_first", "nvlabs")


class SynthesisLayer(nn.Module):
    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, up: bool, conv_clamp: float | None = None,
                 up_conv: str = "fir_first"):
        super().__init__()
        self.conv_clamp, self.up_conv = conv_clamp, up_conv
        self.affine = FullyConnected(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("resample_filter", fir_filter())
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.up, self.resolution = up, resolution

    def forward(self, x: Tensor, w: Tensor, noise_mode: str) -> Tensor:
        styles = self.affine(w)  # (B, C_in)
        # non-fused modulation (NVlabs' training path; cheaper on CPU than a grouped conv)
        x = x * styles[:, :, None, None]
        if self.up and self.up_conv == "nvlabs":
            x = up_conv_nvlabs(x, self.weight, self.resample_filter)
        else:
            x = F.conv2d(upsample2d(x, self.resample_filter) if self.up else x, self.weight, padding=1)
        demod = ((self.weight[None] * styles[:, None, :, None, None]).square().sum(dim=(2, 3, 4)) + 1e-8).rsqrt()
        x = x * demod[:, :, None, None]
        if noise_mode == "random":
            x = x + torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        x = lrelu(x + self.bias[None, :, None, None])
        return x if self.conv_clamp is None else x.clamp(-self.conv_clamp, self.conv_clamp)


class ToRGB(nn.Module):
    def __init__(self, cin: int, channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_gain = 1.0 / math.sqrt(cin)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = F.conv2d(x * styles[:, :, None, None], self.weight) + self.bias[None, :, None, None]
        return x if self.conv_clamp is None else x.clamp(-self.conv_clamp, self.conv_clamp)


class SynthesisBlock(nn.Module):
    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, channels: int,
                 conv_clamp: float | None = None, up_conv: str = "fir_first"):
        super().__init__()
        self.resolution = resolution
        if resolution == 4:
            self.const = nn.Parameter(torch.randn(cout, 4, 4))
        else:
            self.conv0 = SynthesisLayer(cin, cout, w_dim, resolution, up=True, conv_clamp=conv_clamp, up_conv=up_conv)
        self.conv1 = SynthesisLayer(cout, cout, w_dim, resolution, up=False, conv_clamp=conv_clamp)
        self.torgb = ToRGB(cout, channels, w_dim, conv_clamp)
        self.register_buffer("resample_filter", fir_filter())
        self.num_ws = 2 if resolution == 4 else 3  # the torgb shares its w with the next block's first conv

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str) -> tuple[Tensor, Tensor]:
        if self.resolution == 4:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0], noise_mode)
            rgb_w = ws[:, 1]
        else:
            x = self.conv0(x, ws[:, 0], noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode)
            rgb_w = ws[:, 2]
        y = self.torgb(x, rgb_w)
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class Synthesis(nn.Module):
    def __init__(self, w_dim: int, resolution: int, channels: int, widths: dict[int, int],
                 conv_clamp: float | None = None, up_conv: str = "fir_first"):
        super().__init__()
        self.resolutions = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
        self.num_ws = 2 * len(self.resolutions)
        for r in self.resolutions:
            setattr(self, f"b{r}", SynthesisBlock(widths.get(r // 2, 0), widths[r], w_dim, r, channels, conv_clamp,
                                                    up_conv))

    def forward(self, ws: Tensor, noise_mode: str = "const") -> Tensor:
        x = img = None
        w_idx = 0
        for r in self.resolutions:
            block = getattr(self, f"b{r}")
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_ws], noise_mode)
            w_idx += block.num_ws - 1
        return img


class Discriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, widths: dict[int, int]):
        super().__init__()
        res = [2 ** i for i in range(int(math.log2(resolution)), 2, -1)]
        self.fromrgb = nn.Conv2d(channels, widths[resolution], 1)
        blocks = []
        for r in res:
            cin, cout = widths[r], widths[r // 2]
            blocks += [nn.Conv2d(cin, cin, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(cin, cout, 3, padding=1),
                       nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
        self.blocks = nn.Sequential(*blocks)
        c4 = widths[4]
        self.out = nn.Sequential(nn.Conv2d(c4 + 1, c4, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(),
                                 nn.Linear(c4 * 16, c4), nn.LeakyReLU(0.2), nn.Linear(c4, 1))

    def forward(self, img: Tensor) -> Tensor:
        x = self.blocks(F.leaky_relu(self.fromrgb(img * 2 - 1), 0.2))
        std = (x.var(dim=0, unbiased=False) + 1e-8).sqrt().mean().expand(x.shape[0], 1, 4, 4)  # minibatch stddev
        return self.out(torch.cat([x, std], dim=1))


class Recoder(nn.Module):
    """Image → w: strided convs, then two dense layers."""

    def __init__(self, channels: int, resolution: int, w_dim: int, width: int):
        super().__init__()
        layers, c, r = [], channels, resolution
        while r > 4:
            layers += [nn.Conv2d(c, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c, r = width, r // 2
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * 16, 4 * w_dim), nn.LeakyReLU(0.2),
                                 nn.Linear(4 * w_dim, w_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x * 2 - 1)


class Generator(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, resolution: int, channels: int, map_layers: int,
                 widths: dict[int, int], conv_clamp: float | None = None, up_conv: str = "fir_first"):
        super().__init__()
        self.mapping = Mapping(z_dim, w_dim, map_layers)
        self.synthesis = Synthesis(w_dim, resolution, channels, widths, conv_clamp, up_conv)


class StyleGAN(zoo.ZooModel):
    """``recoder_width=0`` leaves out the W recoder (no ``encode``) and ``discriminator=False`` the discriminator (no
    training): what a converted official generator has. ``conv_clamp`` is NVlabs' activation clamp (256 in their
    FFHQ configs; None here). ``up_conv`` picks the up-sampling conv: "nvlabs" (transposed conv, then FIR: the
    official arithmetic, used by converted weights) or "fir_first" (FIR up-sampling, then the 3×3 conv: the same
    operator up to a flip of the kernel and the border, which our shipped faces64 weights were trained with)."""

    def __init__(self, z_dim: int = 128, w_dim: int = 128, resolution: int = 32, channels: int = 3,
                 map_layers: int = 2, channel_base: int = 2048, channel_max: int = 128, recoder_width: int = 64,
                 r1_gamma: float = 0.05, lr: float = 0.0025, disc_lr: float = 2e-4, recoder_lr: float = 1e-3,
                 dataset: str | None = "faces64", discriminator: bool = True, conv_clamp: float | None = None,
                 up_conv: str = "fir_first", train_parts: str = "all", recoder_pixel_weight: float = 0.0):
        super().__init__()
        if train_parts not in ("all", "recoder"):
            raise zoo.ZooError(f"train_parts must be all or recoder, got {train_parts!r}")
        if up_conv not in UP_CONVS:
            raise zoo.ZooError(f"up_conv must be one of {', '.join(UP_CONVS)}, got {up_conv!r}")
        widths = channel_widths(resolution, channel_base, channel_max)
        self.image_spec = zoo.ImageSpec(channels, (resolution, resolution), dataset=dataset, native_range=(-1.0, 1.0))
        self.latent_spec = zoo.LatentSpec((w_dim,), space="w", prior=None, interpolation="lerp")
        self.prior_spec = zoo.LatentSpec((z_dim,), space="z", prior="normal", interpolation="slerp")
        self.generator = Generator(z_dim, w_dim, resolution, channels, map_layers, widths, conv_clamp, up_conv)
        self.discriminator = Discriminator(channels, resolution, widths) if discriminator else None
        self.recoder = Recoder(channels, resolution, w_dim, recoder_width) if recoder_width > 0 else None
        self.components = tuple(c for c in ("generator", "discriminator", "recoder") if getattr(self, c) is not None)
        self.r1_gamma, self.lr, self.disc_lr, self.recoder_lr = r1_gamma, lr, disc_lr, recoder_lr
        self.train_parts, self.recoder_pixel_weight = train_parts, recoder_pixel_weight
        # what this instance can do depends on its parts: converted weights carry no recoder (no encoder), and a
        # training step updates all three parts
        has_recoder, trainable = self.recoder is not None, self.recoder is not None and discriminator
        self.declared_capabilities = frozenset({"decode", "sample", "mapping", *(["encode"] * has_recoder),
                                                *(["train"] * trainable)})

    # --- zoo protocol: W is the latent space, Z the prior space ----------------------------------------------
    def map_prior(self, z: Tensor) -> Tensor:
        return self.generator.mapping(z)

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        return self.map_prior(self.sample_prior(n, generator=generator))

    def truncate(self, w: Tensor, psi: float = 0.7) -> Tensor:
        return self.generator.mapping.w_avg.lerp(w, psi)

    def decode(self, w: Tensor, noise_mode: str = "const") -> Tensor:
        ws = w.unsqueeze(1).expand(-1, self.generator.synthesis.num_ws, -1)
        return ((self.generator.synthesis(ws, noise_mode) + 1) / 2).clamp(0, 1)  # synthesis speaks [-1, 1]

    def encode(self, x: Tensor) -> Tensor:
        if self.recoder is None:
            raise zoo.CapabilityError(f"{self.display_name} has no encoder (no W recoder: converted weights carry "
                                      f"none); invert images with zoo.invert.refine_codes from a w you choose")
        return self.recoder(x)

    # --- model card (zoo ship) ------------------------------------------------------------------------------
    def card_numbers(self, images: Tensor) -> dict[str, float]:
        """Inversion with and without refinement, the recoder's W error, PPL in Z and W."""
        from zoo.invert import refine_codes
        from zoo.metrics.ppl import perceptual_path_length
        from zoo.metrics.stats import inverter_mse

        numbers = {}
        if self.recoder is not None:
            x = images[:100]
            with torch.enable_grad():
                w = refine_codes(self, x, steps=200)
            numbers[f"inversion MSE, recoder only ({len(x)} images)"] = float(
                (self.decode(self.encode(x)) - x).pow(2).mean())
            numbers[f"inversion MSE, recoder + 200 refinement steps ({len(x)} images)"] = float(
                (self.decode(w) - x).pow(2).mean())
            numbers[f"recoder W-MSE on {len(images):,} generated samples (I-MSE)"] = inverter_mse(
                self, n=len(images), seed=2)["imse"]
        for space in ("z", "w"):
            numbers[f"PPL_{space.upper()} (pixel squared L2, end, 2000 paths)"] = perceptual_path_length(
                self, space=space, n=2000)["ppl"]
        return numbers

    def card_rows(self, images: Tensor) -> dict[str, Tensor]:
        """The held-out images inverted by the recoder plus 200 refinement steps."""
        if self.recoder is None:
            return {}
        from zoo.invert import refine_codes

        with torch.enable_grad():
            w = refine_codes(self, images, steps=200)
        return {"recoder + 200 steps": self.decode(w)}

    # --- training ------------------------------------------------------------------------------------------
    def load_init(self, start: zoo.ZooModel) -> None:
        """``zoo train --init`` from a StyleGAN of a lower resolution grows it (progressive growing, Karras et al.
        2018, "Progressive Growing of GANs"): the generator's mapping and blocks and the discriminator's blocks at the
        shared resolutions are copied, the new blocks start fresh, and the new blocks' ToRGB weights start at zero, so
        the grown generator first draws the old images up-sampled (the role of the paper's fade-in). The recoder,
        whose input resolution changed, starts fresh. Same resolution: an exact copy."""
        old, new = start.image_spec.size[0], self.image_spec.size[0]
        if old == new:
            return super().load_init(start)
        if old > new or not isinstance(start, StyleGAN):
            raise RuntimeError(f"a {old}x{old} StyleGAN cannot start a {new}x{new} one (it can only grow)")
        missing, unexpected = self.generator.load_state_dict(start.generator.state_dict(), strict=False)
        added = {f"synthesis.b{r}." for r in self.generator.synthesis.resolutions if r > old}
        if unexpected or any(not k.startswith(tuple(added)) for k in missing):
            raise RuntimeError(f"the {old}x{old} generator does not fit this one's lower blocks (same --arg sizes?)")
        with torch.no_grad():
            for r in self.generator.synthesis.resolutions:
                if r > old:
                    getattr(self.generator.synthesis, f"b{r}").torgb.weight.zero_()
        if self.discriminator is not None and start.discriminator is not None:
            # its blocks are one Sequential, highest resolution first: the old blocks sit after the new ones
            shift = 5 * (int(math.log2(new)) - int(math.log2(old)))
            state = {k: v for k, v in start.discriminator.state_dict().items() if not k.startswith("fromrgb.")}
            state = {(f"blocks.{int(k.split('.')[1]) + shift}.{k.split('.', 2)[2]}" if k.startswith("blocks.") else k): v
                     for k, v in state.items()}
            missing, unexpected = self.discriminator.load_state_dict(state, strict=False)
            if unexpected or any(not (k.startswith("fromrgb.") or int(k.split(".")[1]) < shift) for k in missing):
                raise RuntimeError(f"the {old}x{old} discriminator does not fit this one's lower blocks")

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        if self.train_parts == "recoder":  # a second phase: the generator is fixed, only the recoder learns
            self.generator.requires_grad_(False)
            return {"recoder": torch.optim.Adam(self.recoder.parameters(), lr=lr or self.recoder_lr)}
        lr = lr or self.lr
        c = 16 / 17  # lazy R1 every 16 steps: NVlabs' correction of lr and betas
        return {"gen": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.0, 0.99)),
                "disc": torch.optim.Adam(self.discriminator.parameters(), lr=self.disc_lr * c, betas=(0.0, 0.99 ** c)),
                "recoder": torch.optim.Adam(self.recoder.parameters(), lr=self.recoder_lr)}

    def _fake(self, n: int, device: torch.device, track: bool = False) -> tuple[Tensor, Tensor]:
        w = self.generator.mapping(torch.randn(n, *self.prior_spec.shape, device=device), track=track)
        ws = w.unsqueeze(1).expand(-1, self.generator.synthesis.num_ws, -1)
        return w, (self.generator.synthesis(ws, "random") + 1) / 2

    def recoder_step(self, x: Tensor, update) -> dict[str, float]:
        """The recoder's update: regress w of generated images, plus (``recoder_pixel_weight`` > 0) reconstruct the
        real batch ``x`` through the generator — the in-domain encoder objective of Zhu et al. 2020 (pixel term
        only), which teaches it to invert real images rather than only generated ones."""
        with torch.no_grad():  # const noise, as decode
            w = self.generator.mapping(torch.randn(x.shape[0], *self.prior_spec.shape, device=x.device))
            xw = self.decode(w)
        w_mse = (self.recoder(xw) - w).square().mean()
        logs = {"recoder_mse": float(w_mse.detach())}
        loss = w_mse
        if self.recoder_pixel_weight > 0:
            pixel = (self.decode(self.recoder(x)) - x).square().mean()
            loss = loss + self.recoder_pixel_weight * pixel
            logs["recoder_pixel_mse"] = float(pixel.detach())
        update("recoder", loss)
        return logs

    def train_step(self, x: Tensor, step: int, update) -> dict[str, float]:
        if self.train_parts == "recoder":
            return self.recoder_step(x, update)
        n = x.shape[0]
        _, fake = self._fake(n, x.device, track=True)
        g_loss = F.softplus(-self.discriminator(fake)).mean()
        update("gen", g_loss)
        d_loss = F.softplus(self.discriminator(fake.detach())).mean() + F.softplus(-self.discriminator(x)).mean()
        logs = {"g_loss": float(g_loss.detach()), "d_loss": float(d_loss.detach())}
        if step % 16 == 0 and self.r1_gamma > 0:
            real = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.discriminator(real).sum(), real, create_graph=True)
            r1 = grad.square().sum(dim=(1, 2, 3)).mean()
            d_loss = d_loss + r1 * (self.r1_gamma / 2) * 16
            logs["r1"] = float(r1.detach())
        update("disc", d_loss)
        return {**logs, **self.recoder_step(x, update)}  # the recoder learns to invert the current generator
