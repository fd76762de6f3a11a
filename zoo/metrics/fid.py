"""Fréchet distance between a model's images and held-out data in a feature space (FID; Heusel et al. 2017).

FID = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½), the Fréchet (2-Wasserstein) distance between the Gaussians fitted to the
features of two image sets. The trace of the square root is computed through the symmetric matrix
Σ₁^½ Σ₂ Σ₁^½, which has the same eigenvalues as Σ₁Σ₂, all real and non-negative: ``tr (Σ₁Σ₂)^½ = Σᵢ √λᵢ``. This is
pytorch-fid's value (``scipy.linalg.sqrtm`` of the product, real part) without its imaginary round-off: eigenvalues a
rounding error below zero count as zero, which is exactly "keep the real part". Singular covariances (constant
features) need nothing special — a zero eigenvalue has root zero — and give pytorch-fid's value where its ``sqrtm``
succeeds (to 2e-9 with 1,719 constant features, ``benchmarks/results/fid_reference.txt``). Should the square root fail
numerically, ε = 1e-6 is added to both diagonals and it is tried again, as pytorch-fid does; the result says so
(``eps_offset``).

Feature spaces (``features``):

- ``auto``: the feature network zoo ships for the dataset (``faces64-features``, ``dsprites-features``: a small CNN
  trained on the dataset's factors, :mod:`zoo.metrics.feature_net`); other datasets need one of the below.
- ``inception``: Inception-v3 pool3 exactly as pytorch-fid computes it (:mod:`zoo.metrics.inception`), from
  pytorch-fid's weights file, which you pass as ``features_weights`` — the only space whose numbers compare with
  published FIDs (at n = 50,000 on the same data).
- ``timm:<model>``: a timm backbone from its weights file; the last feature map, globally averaged, on images
  resized to the model's input size and normalised with its mean and std.
- a folder written by ``benchmarks/train_faces64_features.py`` (a feature net for your own dataset).

What is compared (``mode``): ``samples`` — n images decoded from codes drawn with ``torch.Generator`` seeded by
``seed``; ``reconstruction`` — n held-out images encoded and decoded; ``data`` — n more held-out images (the
estimator's floor at this n: FID is biased upwards by finite samples, so two sets of real images do not give 0).
The reference set is always n held-out images of the model's dataset, drawn with seed 10,000 + ``seed`` (training
never uses it; ``benchmarks/ship_weights.py`` measures on it too); reconstruction inputs and the ``data`` set use
20,000 + ``seed``. Every image is brought to the model's resolution and channels first, so a 32×32 model is not
penalised for its size.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from zoo import batching
from zoo.errors import ZooError
from zoo.image import adapt
from zoo.protocol import require

EPS = 1e-6  # pytorch-fid's offset when the matrix square root fails
REFERENCE_SEED = 10_000  # the repository's held-out convention (benchmarks/ship_weights.py)
SECOND_SET_SEED = 20_000  # reconstruction inputs and the data-vs-data floor: independent of the reference set
MODES = {"samples": ("sample",), "reconstruction": ("encode", "decode"), "data": ()}


# --- the Fréchet distance -----------------------------------------------------------------------------------------
def psd_sqrt(a: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues a rounding error below
    zero count as zero)."""
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr (Σ₁Σ₂)^½ for covariance matrices, via the eigenvalues of Σ₁^½ Σ₂ Σ₁^½ (the same as those of Σ₁Σ₂)."""
    s = psd_sqrt(sigma1)
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(s @ sigma2 @ s), 0, None)).sum())


def _covariance(sigma: Any, d: int, what: str) -> np.ndarray:
    """``sigma`` as float64, checked to be a covariance matrix (symmetric, positive semi-definite)."""
    s = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if s.shape != (d, d) or not np.isfinite(s).all():
        raise ZooError(f"{what} must be a finite {d}×{d} matrix, got shape {s.shape}")
    if not np.allclose(s, s.T, rtol=1e-5, atol=1e-8):
        raise ZooError(f"{what} is not symmetric; pass a covariance matrix (numpy.cov of the features)")
    w = np.linalg.eigvalsh(s)  # ascending
    if w[0] < -1e-9 * float(np.abs(w).max()):  # rounding makes zero eigenvalues ~1e-16 of the largest, not more
        raise ZooError(f"{what} has a negative eigenvalue ({w[0]:.3g}); it is not a covariance matrix")
    return s


def _trace_sqrt_or_nan(s1: np.ndarray, s2: np.ndarray) -> float:
    try:
        return trace_sqrt_product(s1, s2)
    except np.linalg.LinAlgError:  # the eigensolver did not converge
        return math.nan


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = EPS) -> dict[str, float]:
    """Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂): ``fid`` and its two terms, ``mean_term`` ‖μ₁ − μ₂‖² and
    ``cov_term`` tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½); ``eps_offset`` is ``eps`` if the square root failed numerically and was
    computed again with ``eps`` added to both diagonals (pytorch-fid's remedy), else 0."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    if mu1.shape != mu2.shape or mu1.ndim != 1 or not (np.isfinite(mu1).all() and np.isfinite(mu2).all()):
        raise ZooError(f"the means must be finite vectors of one length, got shapes {mu1.shape} and {mu2.shape}")
    d = len(mu1)
    s1, s2 = _covariance(sigma1, d, "the first covariance"), _covariance(sigma2, d, "the second covariance")
    offset, root = 0.0, _trace_sqrt_or_nan(s1, s2)
    if not math.isfinite(root):
        offset = eps
        s1, s2 = s1 + eps * np.eye(d), s2 + eps * np.eye(d)
        root = _trace_sqrt_or_nan(s1, s2)
        if not math.isfinite(root):
            raise ZooError("the covariances have no usable matrix square root even with pytorch-fid's ε offset; "
                           "are the features degenerate?")
    mean_term = float(np.sum((mu1 - mu2) ** 2))
    cov_term = float(np.trace(s1) + np.trace(s2) - 2 * root)
    return {"fid": mean_term + cov_term, "mean_term": mean_term, "cov_term": cov_term, "eps_offset": offset}


def feature_statistics(features: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``numpy.cov``, n − 1 normalised, float64) of features (n, d), as pytorch-fid."""
    f = features.double().cpu().numpy() if isinstance(features, Tensor) else np.asarray(features, np.float64)
    if not np.isfinite(f).all():
        raise ZooError("the features hold NaN or infinite values; the images or the feature network are broken")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


# --- feature spaces -----------------------------------------------------------------------------------------------
class TimmPooled(nn.Module):
    """A timm backbone's last feature map, globally averaged, at the model's own input size (loaded from a weights
    file exactly as the ``timm:`` distance of :mod:`zoo.metrics.distances` loads it)."""

    def __init__(self, model_name: str, weights: Path):
        super().__init__()
        from zoo.metrics.distances import TimmFeatures

        self.backbone = TimmFeatures(model_name, weights)
        self.name = self.backbone.name
        self.dim = int(self.backbone.net.feature_info.channels()[-1])
        self.input_size = tuple(self.backbone.net.pretrained_cfg.get("input_size", (3, 224, 224))[-2:])

    def embed(self, x: Tensor) -> Tensor:
        from zoo.metrics.distances import _rgb

        x = nn.functional.interpolate(_rgb(x), size=self.input_size, mode="bilinear", align_corners=False)
        return self.backbone.net((x - self.backbone.mean) / self.backbone.std)[-1].mean((2, 3))


def _weights_file(name: str, weights: str | None) -> Path:
    if not weights:
        hint = ("pytorch-fid's pt_inception-2015-12-05-6726825d.pth" if name == "inception"
                else f"the weights file of timm's {name[len('timm:'):]}")
        raise ZooError(f"the {name} feature space needs --features-weights PATH ({hint}); zoo never downloads")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ZooError(f"--features-weights {weights}: no such file")
    return path


def get_features(name: str = "auto", weights: str | None = None, dataset: str | None = None) -> nn.Module:
    """The feature space ``name`` (see the module docstring) in eval mode: a module with ``name``, ``dim``,
    ``embed(images in [0, 1]) -> (N, dim)`` and ``files`` ({weights file: sha256}, for the result's provenance)."""
    from zoo.hub import sha256_file
    from zoo.metrics import feature_net

    if name == "auto":
        if dataset is None or not feature_net.shipped_folder(dataset).is_dir():
            raise ZooError(f"zoo ships no feature network for {dataset!r} (only for faces64 and dsprites); pass "
                           f"--features inception --features-weights pt_inception-2015-12-05-6726825d.pth, or "
                           f"--features timm:MODEL --features-weights FILE")
        name = f"{dataset}-features"
    net: nn.Module
    if name.endswith("-features") and feature_net.shipped_folder(name[:-len("-features")]).is_dir():
        if weights:
            raise ZooError(f"{name} ships with zoo; drop --features-weights")
        folder = feature_net.shipped_folder(name[:-len("-features")])
        net, files = feature_net.load_feature_net(folder), [folder / "model.safetensors"]
    elif name == "inception":
        from zoo.metrics.inception import load_fid_inception

        path = _weights_file(name, weights)
        net, files = load_fid_inception(path), [path]
    elif name.startswith("timm:"):
        path = _weights_file(name, weights)
        net, files = TimmPooled(name[len("timm:"):], path), [path]
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
        net, files = feature_net.load_feature_net(folder), [folder / "model.safetensors"]
    else:
        raise ZooError(f"unknown feature space {name!r}; use auto, inception, timm:MODEL, "
                       f"DATASET-features (faces64, dsprites) or a folder written by "
                       f"benchmarks/train_faces64_features.py")
    if not getattr(net, "files", None):  # the Inception loader has hashed its file already
        net.files = {str(p): sha256_file(p) for p in files}
    return net.requires_grad_(False).eval()


# --- the task -----------------------------------------------------------------------------------------------------
def _held_out(run: Any, n: int, seed: int) -> batching.Source:
    """``f(lo, hi)`` rendering held-out images lo…hi (drawn uniformly from the dataset with ``seed``) at the model's
    resolution; images are made a batch at a time, never all n at once."""
    from zoo.data.base import draw_integers

    indices = draw_integers(np.random.default_rng(seed), len(run.data), n)
    return lambda lo, hi: adapt(run.data.images(indices[lo:hi]), run.model.image_spec)


@torch.no_grad()
def fid(run: Any, *, n: int = 5000, seed: int = 0, mode: str = "samples", features: str = "auto",
        features_weights: str | None = None) -> dict[str, Any]:
    """The ``fid`` task: Fréchet distance between the model's images (``mode``) and n held-out images, in the feature
    space ``features``; the result names the feature space and the number of images with the value."""
    model = run.model
    if mode not in MODES:
        raise ZooError(f"fid: mode must be one of {', '.join(MODES)}, got {mode!r}")
    require(model, *MODES[mode], purpose=f"FID of {mode}")
    net = get_features(features, features_weights, run.data.name).to(run.device)
    if n < net.dim + 1:
        raise ZooError(f"FID in the {net.dim}-d {net.name} feature space needs at least {net.dim + 1} images per set "
                       f"for a full-rank covariance, got n = {n}; pass --n {net.dim + 1} or more")

    def features_of(source: batching.Source, what: str) -> Tensor:
        return batching.map_batches(net.embed, source, n=n, batch_size=run.batch_size, device=run.device,
                                    label=f"FID: {net.name} features of {n:,} {what}")

    reference = features_of(_held_out(run, n, REFERENCE_SEED + seed), "held-out images")
    if mode == "samples":
        codes = model.sample_latent(n, generator=torch.Generator(model.device).manual_seed(seed))
        compared = features_of(lambda lo, hi: run.decode(model, codes[lo:hi]), "samples")
    elif mode == "reconstruction":
        inputs = _held_out(run, n, SECOND_SET_SEED + seed)
        compared = features_of(lambda lo, hi: run.decode(model, run.encode(model, inputs(lo, hi))),
                               "reconstructions")
    else:
        compared = features_of(_held_out(run, n, SECOND_SET_SEED + seed), "other held-out images")
    distance = frechet_distance(*feature_statistics(compared), *feature_statistics(reference))
    return {"model": model.display_name, "data": run.data.name, **distance, "n": n, "features": net.name,
            "feature_dim": net.dim, "mode": mode, "seed": seed, "image_size": list(model.image_spec.size),
            "reference_seed": REFERENCE_SEED + seed,
            "compared_seed": seed if mode == "samples" else SECOND_SET_SEED + seed,
            "features_files": net.files,
            # only pytorch-fid's Inception file gives FIDs comparable with papers (at their n and data)
            "published_weights": bool(getattr(net, "published", False))}
