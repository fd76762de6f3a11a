"""`zoo convert stylegan2`: a synthetic pickle in NVlabs' persistent-object layout, read without executing its code."""

import collections
import os
import pickle
import sys
import types

import pytest
import torch

import zoo
from zoo import safe_pickle

TINY = {"z_dim": 8, "w_dim": 8, "resolution": 16, "channel_base": 64, "channel_max": 16, "recoder_width": 8,
        "map_layers": 2}


class Persistent:
    """Pickles as NVlabs' ``persistent_class`` instances do: ``_reconstruct_persistent_obj(meta)``."""

    def __init__(self, class_name, state, module_src):
        self.meta = {"type": "class", "version": 4, "module_src": module_src, "class_name": class_name,
                     "state": state}

    def __reduce__(self):
        return (sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (self.meta,))


def as_persistent(module, module_src, attrs=None):
    """A torch module as NVlabs would pickle it: its __dict__ with children as persistent objects."""
    attrs = attrs or {}
    state = {"training": False, "_parameters": collections.OrderedDict(module._parameters),
             "_buffers": collections.OrderedDict(module._buffers), "_non_persistent_buffers_set": set(),
             "_modules": collections.OrderedDict()}
    for name, child in module._modules.items():
        state["_modules"][name] = as_persistent(child, module_src, attrs.get(name, {}))
    state.update({k: v for k, v in attrs.items() if not isinstance(v, dict)})
    return Persistent(f"training.networks.{type(module).__name__}", state, module_src)


def write_nvlabs_pickle(path, generator, marker, conv_clamp=None, extra=None):
    """Write ``generator`` (our NVlabs-named module) in the layout of a stylegan2-ada-pytorch snapshot."""
    src = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('executed')\n"
    blocks = {name: {"architecture": "skip", "conv0": {"conv_clamp": conv_clamp}, "conv1": {"conv_clamp": conv_clamp}}
              for name in generator.synthesis._modules}
    attrs = {"z_dim": TINY["z_dim"], "c_dim": 0, "w_dim": TINY["w_dim"], "mapping": {"fc0": {"bias_gain": 0.01}},
             "synthesis": blocks}
    fake = types.ModuleType("torch_utils.persistence")
    fake._reconstruct_persistent_obj = lambda meta: None
    fake._reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    fake._reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    sys.modules["torch_utils"] = types.ModuleType("torch_utils")
    sys.modules["torch_utils.persistence"] = fake
    try:
        g = as_persistent(generator, src, attrs)
        data = {"G": g, "D": None, "G_ema": g, "training_set_kwargs": None, "augment_pipe": None, **(extra or {})}
        path.write_bytes(pickle.dumps(data, protocol=4))
    finally:  # the reader must never be able to import the real thing
        del sys.modules["torch_utils.persistence"], sys.modules["torch_utils"]


def tiny_stylegan(**kw):
    """A tiny generator with NVlabs' arithmetic (``up_conv="nvlabs"``), as the networks in official pickles."""
    model = zoo.create_model("stylegan", pretrained=False, **{**TINY, "up_conv": "nvlabs", **kw})
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial values everywhere (biases and noise strengths start at 0)
        for p in model.generator.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


@pytest.mark.parametrize("conv_clamp", [None, 0.3])
def test_converted_generator_equals_original(tmp_path, conv_clamp):
    model = tiny_stylegan(conv_clamp=conv_clamp)
    marker = tmp_path / "code-ran"
    write_nvlabs_pickle(tmp_path / "net.pkl", model.generator, marker, conv_clamp)
    out = zoo.convert("stylegan2", tmp_path / "net.pkl", tmp_path / "out")
    assert not marker.exists()  # module_src was never executed
    converted = zoo.create_model(f"local-dir:{out}")
    assert converted.model_args["conv_clamp"] == conv_clamp
    assert "encode" not in converted.capabilities() and "decode" in converted.capabilities()
    ref, got = model.generator.state_dict(), converted.generator.state_dict()
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
    w = model.sample_latent(4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.decode(w), converted.decode(w))
        z = torch.randn(3, TINY["z_dim"], generator=torch.Generator().manual_seed(2))
        assert torch.equal(model.map_prior(z), converted.map_prior(z))
    with pytest.raises(zoo.CapabilityError, match="no encoder"):
        converted.encode(torch.zeros(1, 3, 16, 16))


class Evil:
    def __init__(self, func, *args):
        self.call = (func, args)

    def __reduce__(self):
        return self.call


@pytest.mark.parametrize("payload", [(os.system, "echo pwned"), (eval, "1+1"), (__import__, "subprocess")])
def test_pickles_importing_anything_else_are_refused(tmp_path, payload):
    model = tiny_stylegan()
    write_nvlabs_pickle(tmp_path / "evil.pkl", model.generator, tmp_path / "code-ran",
                        extra={"augment_pipe": Evil(*payload)})
    with pytest.raises(zoo.WeightsError, match="not on the tensor-only whitelist") as info:
        zoo.convert("stylegan2", tmp_path / "evil.pkl", tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_module_state_dict_matches_torch(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    state = {"_parameters": {}, "_buffers": {}, "_modules": {
        name: {"_parameters": dict(m._parameters), "_buffers": dict(m._buffers), "_modules": {}}
        for name, m in net._modules.items()}}
    got = safe_pickle.module_state_dict(state)
    want = net.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_refuses_conditional_and_foreign_layouts(tmp_path):
    model = tiny_stylegan()
    write_nvlabs_pickle(tmp_path / "g.pkl", model.generator, tmp_path / "m")
    data = safe_pickle.load(tmp_path / "g.pkl")
    from zoo_stylegan.convert import generator_args

    sd = safe_pickle.module_state_dict(data["G_ema"])
    assert generator_args(sd, data["G_ema"], "g.pkl")["resolution"] == 16
    with pytest.raises(zoo.WeightsError, match="class-conditional"):
        generator_args({**sd, "mapping.embed.weight": torch.zeros(8, 4)}, data["G_ema"], "g.pkl")
    with pytest.raises(zoo.WeightsError, match="not hold an NVlabs StyleGAN2 generator"):
        generator_args({"foo.weight": torch.zeros(1)}, {}, "x.pkl")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(zoo.WeightsError, match="no 'G_ema' network"):
        zoo.convert("stylegan2", tmp_path / "list.pkl", tmp_path / "o")


def test_cli_errors_are_one_line(cli, tmp_path):
    for args, needle in [(("stylegan2", tmp_path / "missing.pkl", tmp_path / "o"), "is not a file"),
                         (("onnx", __file__, tmp_path / "o"), "no installed plugin converts 'onnx'")]:
        result = cli("convert", *args)
        assert result.exit_code != 0 and needle in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    model = tiny_stylegan()
    write_nvlabs_pickle(tmp_path / "evil.pkl", model.generator, tmp_path / "m",
                        extra={"x": Evil(os.system, "echo pwned")})
    result = cli("convert", "stylegan2", tmp_path / "evil.pkl", tmp_path / "o")
    assert result.exit_code != 0 and "os" in result.output and "system" in result.output
    assert not (tmp_path / "o").exists()
    write_nvlabs_pickle(tmp_path / "ok.pkl", model.generator, tmp_path / "m")
    result = cli("convert", "stylegan2", tmp_path / "ok.pkl", tmp_path / "o", "--tag", "tiny")
    assert result.exit_code == 0, result.output
    assert zoo.create_model(f"local-dir:{tmp_path / 'o'}").weights_config["tag"] == "tiny"


def test_nvlabs_up_conv_is_the_fir_first_conv_with_a_flipped_kernel():
    """Transposed conv then FIR (NVlabs) = FIR up-sampling then correlation with the flipped kernel, away from the
    border: the two up_conv modes are one operator, so converted weights keep NVlabs' exact arithmetic."""
    from zoo_stylegan.model import fir_filter, up_conv_nvlabs, upsample2d

    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 4, 8, 8, generator=g), torch.randn(5, 4, 3, 3, generator=g)
    a = up_conv_nvlabs(x, w, fir_filter())
    b = torch.nn.functional.conv2d(upsample2d(x, fir_filter()), w.flip([2, 3]), padding=1)
    assert a.shape == b.shape == (2, 5, 16, 16)
    torch.testing.assert_close(a[..., 2:-2, 2:-2], b[..., 2:-2, 2:-2], rtol=1e-5, atol=1e-5)
