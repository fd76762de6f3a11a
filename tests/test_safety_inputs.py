"""Inputs are checked at the protocol boundary, for every ZooModel, third-party subclasses included.

``encode``, ``encode_dist``, ``decode``, ``map_prior`` and ``train_step`` refuse, with one ``InputError`` line naming
what was expected, images that are not float NCHW of the model's channels and size in [0, 1] (0…255, −1…1, uint8,
NaN/Inf, wrong size or channels, a missing batch dimension) and latents that are not finite floats of shape
``(N, *latent_spec.shape)``. Decided: floating inputs of another precision (numpy's default float64, half) are cast to
the model's dtype and work; numpy arrays work (moved to the model's device); integer dtypes are refused.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_cli_core import assert_one_line_error
from torch import nn

import zoo
import zoo.plugins
import zoo.protocol
from zoo.image import adapt
from zoo.protocol import InputError
from zoo.testing import make_fake_dist

SHIPPED = ("vae", "vae.dsprites", "betavae.dsprites", "factorvae.dsprites", "gan", "svae", "stylegan")
_models: dict[str, zoo.ZooModel] = {}


def shipped(name: str) -> zoo.ZooModel:
    """Shipped models with their embedded weights, built once for the module."""
    if name not in _models:
        _models[name] = zoo.create_model(name)
    return _models[name]


def images(model: zoo.ZooModel, n: int = 4, seed: int = 0) -> torch.Tensor:
    c, (h, w) = model.image_spec.channels, model.image_spec.size
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def latents(model: zoo.ZooModel, n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, *model.latent_spec.shape, generator=torch.Generator().manual_seed(seed))


def with_value(value: float):
    def put(t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        t.view(-1)[7] = value
        return t
    return put


def assert_input_error(call, *needles: str) -> str:
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, zoo.ZooError) and "\n" not in message and message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


# name → (what turns good (4, 3, 64, 64) images into the bad input, words the message must hold); for svae
BAD_IMAGES = {
    "float-0-255": (lambda x: x * 255, ["[0, 1]", "0…255", "divide by 255"]),
    "uint8": (lambda x: (x * 255).to(torch.uint8), ["floating point", "uint8", "x.float() / 255"]),
    "numpy-uint8": (lambda x: (x * 255).to(torch.uint8).numpy(), ["uint8", "x.float() / 255"]),
    "int64": (lambda x: (x * 255).long(), ["floating point", "int64"]),
    "minus-one-to-one": (lambda x: x * 2 - 1, ["[0, 1]", "[-1, 1]", "−1…1", "(x + 1) / 2"]),
    "bicubic-overshoot": (lambda x: F.interpolate(x[..., :48, :48], size=(64, 64), mode="bicubic"),
                          ["[0, 1]", "bicubic", "x.clamp(0, 1)"]),
    "nan-pixel": (with_value(math.nan), ["NaN"]),
    "inf-pixel": (with_value(math.inf), ["Inf"]),
    "one-channel": (lambda x: x[:, :1], ["3×64×64", "got 1×64×64", "zoo.image.adapt"]),
    "32x32": (lambda x: x[..., :32, :32], ["3×64×64", "got 3×32×32", "zoo.image.adapt"]),
    "128x128": (lambda x: x.repeat_interleave(2, -1).repeat_interleave(2, -2), ["3×64×64", "got 3×128×128",
                                                                             "zoo.image.adapt"]),
    "3-d-tensor": (lambda x: x[0], ["(N, 3, 64, 64)", "got (3, 64, 64)", "x[None]"]),
    "5-d-tensor": (lambda x: x[:, None], ["(N, 3, 64, 64)", "got (4, 1, 3, 64, 64)"]),
    "python-list": (lambda x: x[:1, :1, :2, :2].tolist(), ["torch.Tensor or a numpy array", "list"]),
}


@pytest.mark.parametrize("method", ["encode", "encode_dist"])
@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_svae_refuses_bad_images(case, method):
    svae = shipped("svae")
    make_bad, needles = BAD_IMAGES[case]
    bad = make_bad(images(svae))
    message = assert_input_error(lambda: getattr(svae, method)(bad), *needles)
    assert message.startswith(f"splitvae.faces64.{method}(): ")


# name → (what turns good (4, D) latents into the bad input, words the message must hold; {d} is D)
BAD_LATENTS = {
    "wrong-size": (lambda z: z[:, :10], ["(N, {d})", "got (4, 10)"]),
    "extra-dim": (lambda z: z[:, None], ["(N, {d})", "got (4, 1, {d})"]),
    "no-batch-dim": (lambda z: z[0], ["(N, {d})", "z[None]"]),
    "nan": (with_value(math.nan), ["NaN"]),
    "inf": (with_value(-math.inf), ["Inf"]),
    "int64": (lambda z: z.long(), ["floating point", "int64"]),
}


@pytest.mark.parametrize("case", list(BAD_LATENTS))
def test_svae_refuses_bad_latents(case):
    svae = shipped("svae")
    make_bad, needles = BAD_LATENTS[case]
    d = svae.latent_spec.shape[0]
    message = assert_input_error(lambda: svae.decode(make_bad(latents(svae))), *(n.format(d=d) for n in needles))
    assert message.startswith("splitvae.faces64.decode(): ")


# name → what turns good float32 images into an input that must give the same codes
ACCEPTED_IMAGES = {
    "float64": lambda x: x.double(),
    "numpy-float32": lambda x: x.numpy(),
    "numpy-float64": lambda x: x.double().numpy(),
    "within-float-error": lambda x: with_value(1 + 5e-4)(with_value(-5e-4)(x).flip(0)).flip(0),
    "non-contiguous-numpy": lambda x: x.numpy()[..., ::-1].copy()[..., ::-1],
}


@pytest.mark.parametrize("case", list(ACCEPTED_IMAGES))
def test_svae_accepts_other_float_inputs(case):
    svae = shipped("svae")
    given = ACCEPTED_IMAGES[case](images(svae))
    as_float32 = torch.as_tensor(np.ascontiguousarray(given, dtype=np.float32))
    with torch.inference_mode():
        z = svae.encode(given)
        assert isinstance(z, torch.Tensor) and z.dtype == torch.float32
        torch.testing.assert_close(z, svae.encode(as_float32.clamp(0, 1)), atol=2e-3, rtol=1e-3)


def test_numpy_latents_decode_to_images_in_range():
    svae = shipped("svae")
    z = latents(svae)
    with torch.inference_mode():
        x = svae.decode(z.double().numpy())
        torch.testing.assert_close(x, svae.decode(z))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_checks_its_boundary(name):
    model = shipped(name)
    c, (h, w) = model.image_spec.channels, model.image_spec.size
    x, z = images(model), latents(model)
    with torch.inference_mode():
        out = model.decode(z)
        assert out.shape == (4, c, h, w) and 0 <= out.min() and out.max() <= 1
        assert model.encode(out).shape == z.shape  # a decoder's output is a valid input
    assert_input_error(lambda: model.decode(z[:, :-1]), f"({', '.join(map(str, ('N', *model.latent_spec.shape)))})")
    assert_input_error(lambda: model.decode(with_value(math.nan)(z)), "NaN")
    assert_input_error(lambda: model.encode(x * 255), "0…255")
    assert_input_error(lambda: model.encode(x.repeat_interleave(2, -1).repeat_interleave(2, -2)),
                       f"{c}×{h}×{w}", f"got {c}×{2 * h}×{2 * w}", "zoo.image.adapt")
    if model.has("encode_dist"):
        assert_input_error(lambda: model.encode_dist(x * 2 - 1), "(x + 1) / 2")


def test_stylegan_prior_codes_and_keyword_arguments():
    sg = shipped("stylegan")
    z = torch.randn(3, *sg.prior_spec.shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        w = sg.map_prior(z)
        assert sg.decode(w=w, noise_mode="const").shape[0] == 3  # keyword input and extra arguments pass through
    assert_input_error(lambda: sg.map_prior(z[:, :5]), "stylegan.faces64.map_prior()", "prior codes",
                       f"(N, {sg.prior_spec.shape[0]})")
    assert_input_error(lambda: sg.map_prior(with_value(math.inf)(z)), "Inf")
    assert_input_error(lambda: sg.decode(w=w[:, :5], noise_mode="const"), "stylegan.faces64.decode()")


# --- a third-party model gets the checks without doing anything ------------------------------------------------
class PluginAE(zoo.ZooModel):
    """What a plugin author writes: an encoder whose ``encode`` calls its own ``encode_dist``, a decoder and a
    training step calling both; no checks anywhere."""

    def __init__(self):
        super().__init__()
        self.image_spec = zoo.ImageSpec(1, (8, 8))
        self.latent_spec = zoo.LatentSpec((3,))
        self.enc, self.dec = nn.Linear(64, 6), nn.Linear(3, 64)

    def encode_dist(self, x):
        mean, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        return zoo.LatentDist(mean, logvar)

    def encode(self, x):
        return self.encode_dist(x).mean

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)

    def configure_optimizers(self, lr=None):
        return {"ae": torch.optim.SGD(self.parameters(), lr=lr or 0.1)}

    def train_step(self, x, step, update):
        loss = (self.decode(self.encode_dist(x).mean) - x).square().mean()
        update("ae", loss)
        return {"loss": float(loss.detach())}


class PluginAEChild(PluginAE):
    def decode(self, z):
        return super().decode(z).flip(-1)


class PluginDecoderOnly(zoo.ZooModel):
    def __init__(self):
        super().__init__()
        self.image_spec, self.latent_spec = zoo.ImageSpec(1, (8, 8)), zoo.LatentSpec((3,))
        self.dec = nn.Linear(3, 64)

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)


def build(cls: type[zoo.ZooModel]) -> zoo.ZooModel:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return cls().eval()


# name → (call on the plugin model, words the message must hold)
PLUGIN_CASES = {
    "encode-0-255": (lambda m: m.encode(torch.full((2, 1, 8, 8), 200.0)), ["PluginAE.encode()", "0…255"]),
    "encode_dist-16x16": (lambda m: m.encode_dist(torch.rand(2, 1, 16, 16, generator=torch.Generator()
                                                             .manual_seed(0))),
                          ["PluginAE.encode_dist()", "1×8×8", "got 1×16×16", "zoo.image.adapt"]),
    "decode-nan": (lambda m: m.decode(torch.full((2, 3), math.nan)), ["PluginAE.decode()", "NaN"]),
    "decode-shape": (lambda m: m.decode(torch.zeros(2, 4)), ["PluginAE.decode()", "(N, 3)", "got (2, 4)"]),
    "train_step-minus-one-to-one": (lambda m: m.train_step(torch.full((2, 1, 8, 8), -0.9), 0, None),
                                    ["PluginAE.train_step()", "(x + 1) / 2"]),
}


@pytest.mark.parametrize("case", list(PLUGIN_CASES))
def test_third_party_subclass_is_checked(case):
    call, needles = PLUGIN_CASES[case]
    assert_input_error(lambda: call(build(PluginAE)), *needles)


def test_wrapping_keeps_capabilities_and_refuses_nothing_it_cannot_do():
    assert build(PluginAE).capabilities() == {"encode", "encode_dist", "decode", "sample", "train"}
    only = build(PluginDecoderOnly)
    assert only.capabilities() == {"decode", "sample"}
    with pytest.raises(zoo.CapabilityError, match="has no encoder"):  # not an InputError about the garbage
        only.encode("not even a tensor")


@pytest.fixture
def value_reads(monkeypatch):
    """Counts the protocol's reads of input values (each is one aminmax pass and one host sync)."""
    reads = []
    real = zoo.protocol.value_range

    def counting(t):
        reads.append(tuple(t.shape))
        return real(t)

    monkeypatch.setattr(zoo.protocol, "value_range", counting)
    return reads


def test_only_the_outermost_call_reads_the_values(value_reads):
    model, child = build(PluginAE), build(PluginAEChild)
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    model.encode(x)  # encode → encode_dist: one read
    assert value_reads == [(5, 1, 8, 8)]
    child.decode(torch.zeros(5, 3))  # PluginAEChild.decode → PluginAE.decode: one read
    assert value_reads[1:] == [(5, 3)]
    opt = model.configure_optimizers()

    def update(name, loss):
        opt[name].zero_grad()
        loss.backward()
        opt[name].step()

    model.train_step(x, 0, update)  # its encode_dist and decode calls are the model's own
    assert value_reads[2:] == [(5, 1, 8, 8)]
    with pytest.raises(InputError):
        model.encode(x * 255)
    model.decode(torch.zeros(1, 3))  # the nesting depth was restored after the error
    assert len(value_reads) == 5


def test_function_transforms_and_compile_still_work():
    model = build(PluginAE)
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    jac = torch.func.vmap(torch.func.jacfwd(lambda zi: model.decode(zi[None]).flatten()))(z)
    assert jac.shape == (4, 64, 3)  # vmap cannot read values: shapes are still checked, values are not
    compiled = torch.compile(model.decode, backend="eager")
    torch.testing.assert_close(compiled(z), model.decode(z))
    assert_input_error(lambda: compiled(torch.zeros(4, 5)), "(N, 3)", "got (4, 5)")


# --- zoo.image.adapt: the fix the messages suggest ---------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 3, 32, 32), (4, 3, 128, 128), (4, 1, 64, 64), (4, 3, 80, 64)])
def test_adapt_makes_any_size_acceptable(shape):
    svae = shipped("svae")
    x = adapt(torch.rand(*shape, generator=torch.Generator().manual_seed(0)), svae.image_spec)
    assert x.shape == (4, 3, 64, 64) and 0 <= x.min() and x.max() <= 1
    with torch.inference_mode():
        assert svae.encode(x).shape == (4, *svae.latent_spec.shape)


# name → (bad input to adapt, words the message must hold)
ADAPT_REFUSES = {
    "float-0-255": (torch.full((2, 3, 32, 32), 128.0), ["zoo.image.adapt()", "0…255"]),
    "minus-one-to-one": (torch.linspace(-1, 1, 2 * 3 * 32 * 32).view(2, 3, 32, 32), ["(x + 1) / 2"]),
    "nan": (torch.full((2, 3, 32, 32), math.nan), ["NaN"]),
    "uint8": (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), ["x.float() / 255"]),
    "two-channels": (torch.zeros(2, 2, 32, 32), ["1 or 3 channels"]),
}


@pytest.mark.parametrize("case", list(ADAPT_REFUSES))
def test_adapt_refuses_instead_of_clamping_into_nonsense(case):
    bad, needles = ADAPT_REFUSES[case]
    assert_input_error(lambda: adapt(bad, zoo.ImageSpec(3, (64, 64))), *needles)


def test_adapt_clamps_float_error_exactly():
    x = torch.full((1, 3, 64, 64), 1 + 5e-4)
    assert adapt(x, zoo.ImageSpec(3, (64, 64))).max() == 1.0
    assert adapt(x, zoo.ImageSpec(1, (16, 16))).max() == 1.0
    y = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert adapt(y, zoo.ImageSpec(3, (64, 64))).data_ptr() == y.data_ptr()  # in range and right size: untouched


# --- through the command line: a plugin dataset in the wrong range -----------------------------------------------
BAD_DATA_PLUGIN = '''
import numpy as np
import torch

import zoo
from zoo.data.base import GroundTruthDataset


@zoo.hookimpl
def zoo_register_datasets(register):
    register(zoo.DatasetSpec(name="bars255", factory="zoo_baddata:Bars255", description="bars in 0..255"))
    register(zoo.DatasetSpec(name="barsnan", factory="zoo_baddata:BarsNaN", description="bars with a NaN pixel"))


class Bars255(GroundTruthDataset):
    """8x8 grey images of one vertical bar (8 positions), rendered in 0..255 instead of [0, 1]."""

    name, factor_names, factor_sizes, factor_values = "bars255", ("position",), (8,), (np.arange(8.0),)
    image_spec = zoo.ImageSpec(1, (8, 8))

    def _render(self, factors):
        x = torch.zeros(len(factors), 1, 8, 8)
        x[torch.arange(len(factors)), 0, :, torch.as_tensor(factors[:, 0])] = 255.0
        return x


class BarsNaN(Bars255):
    name = "barsnan"

    def _render(self, factors):
        x = super()._render(factors) / 255
        x[0, 0, 0, 0] = float("nan")
        return x
'''


@pytest.fixture
def bad_data(toy_plugin, tmp_path, monkeypatch):
    root = make_fake_dist(tmp_path / "baddata-site", "zoo-baddata", {"baddata": "zoo_baddata"},
                          {"zoo_baddata.py": BAD_DATA_PLUGIN})
    monkeypatch.syspath_prepend(str(root))
    zoo.plugins.reset()
    return zoo.save_pretrained(zoo.create_model("toyae", pretrained=False), tmp_path / "toy-weights",
                               provenance={"test": True})


@pytest.mark.parametrize("args, needles", [
    (["mig", "local-dir:{weights}", "--data", "bars255", "--num-train", "100"],
     ["zoo.image.adapt()", "[0, 1]", "0…255", "divide by 255"]),
    (["train", "toyae", "--data", "barsnan", "--steps", "2", "--out", "{tmp}/run"], ["train_step()", "NaN"]),
], ids=["mig-on-0-255-data", "train-on-nan-data"])
def test_cli_reports_bad_data_in_one_line(bad_data, cli, tmp_path, args, needles):
    result = cli(*(a.format(weights=bad_data, tmp=tmp_path) for a in args))
    assert_one_line_error(result, *needles)
    assert "Traceback" not in result.output
