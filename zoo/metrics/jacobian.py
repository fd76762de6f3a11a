"""Jacobian geometry of a decoder (seed notes 000 and 004): for F = decoder, the pullback metric M(z) = JᵀJ.

J is computed in forward mode (``torch.func.jacfwd``: a vmap over one JVP per latent direction, cheap when the
latent is much smaller than the image). From M: its eigen-spectrum (the squared singular values of J), the condition
number λmax/λmin, the anisotropy (λmax / mean λ), and a column-orthogonality score of J, 1 − mean |cos| between
distinct columns (1: the latent directions move the image in orthogonal ways). For big models,
``hutchinson_trace`` estimates tr(JᵀJ) = E‖Jv‖² with Rademacher v from JVPs only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from zoo.protocol import require


def decoder_jacobian(model, z: Tensor) -> Tensor:
    """(B, P, d) Jacobians of the flattened decoded image w.r.t. each code of the batch ``z`` (B, d)."""
    from torch.func import jacfwd, vmap

    def single(zi: Tensor) -> Tensor:
        return model.decode(zi.unsqueeze(0)).flatten()

    return vmap(jacfwd(single))(z)


def hutchinson_trace(model, z: Tensor, samples: int = 16, seed: int = 0) -> Tensor:
    """Unbiased estimates of tr(JᵀJ) per code, from ``samples`` JVPs with Rademacher directions (drawn on the CPU,
    so every device sees the same ones)."""
    from torch.func import jvp

    g = torch.Generator().manual_seed(seed)
    total = torch.zeros(len(z), device=z.device)
    for _ in range(samples):
        v = (torch.randint(0, 2, z.shape, generator=g).float() * 2 - 1).to(z.device)
        _, jv = jvp(model.decode, (z,), (v,))
        total += jv.flatten(1).pow(2).sum(1).detach()
    return (total / samples).cpu()


GEOMETRY = ("condition", "anisotropy", "orthogonality", "trace")  # per-code scalars, after the d eigenvalues


def _geometry(J: Tensor) -> Tensor:
    """(B, d + 4) float64: the descending eigenvalues of JᵀJ, then the scalars of :data:`GEOMETRY`."""
    M = J.transpose(-1, -2) @ J
    eig = torch.linalg.eigvalsh(M.double()).flip(-1).clamp_min(0)  # descending
    cols = J / J.norm(dim=-2, keepdim=True).clamp_min(1e-12)
    cos = (cols.transpose(-1, -2) @ cols).abs()
    d = J.shape[-1]
    off = (cos.sum((-1, -2)) - cos.diagonal(dim1=-2, dim2=-1).sum(-1)) / max(d * (d - 1), 1)
    scalars = (eig[..., 0] / eig[..., -1].clamp_min(1e-30), eig[..., 0] / eig.mean(-1).clamp_min(1e-30),
               (1 - off).double(), eig.sum(-1))
    return torch.cat([eig, torch.stack(scalars, -1)], -1)


def _split(geometry: Tensor, d: int) -> dict[str, np.ndarray]:
    g = geometry.cpu().numpy()
    columns = {"eigenvalues": g[..., :d], **{k: g[..., d + i] for i, k in enumerate(GEOMETRY)}}
    return {k: np.ascontiguousarray(v) for k, v in columns.items()}  # contiguous, as concatenated: the same sums below


def geometry_of(J: Tensor) -> dict[str, np.ndarray]:
    """Eigenvalues of JᵀJ (descending), condition number, anisotropy, column orthogonality and trace, per Jacobian
    of the batch ``J`` (B, P, d)."""
    return _split(_geometry(J), J.shape[-1])


def jacobian_geometry(model, *, n: int = 64, seed: int = 0, batch_size: int | None = None) -> dict[str, Any]:
    """Spectrum and shape of the pullback metric at ``n`` codes sampled from the model's latent distribution, on the
    model's device (:mod:`zoo.batching`).

    ``batch_size`` counts decoder inputs, as everywhere else (default: :func:`zoo.batching.default_batch_size`):
    one code's Jacobian pushes its d latent directions through the decoder together, so ``batch_size // d`` codes
    (at least one) go at a time. A whole batch of codes at once holds d times the activations (vae.faces64, d = 32,
    64 codes: 1.2 GB at its peak instead of 0.2 GB); the values differ only in float rounding (convolutions round
    differently for other batch sizes)."""
    from zoo import batching

    require(model, "decode", "sample", purpose="Jacobian geometry")
    g = torch.Generator().manual_seed(seed)
    z = model.sample_latent(n, generator=g).flatten(1).cpu()
    d = z.shape[1]
    codes_per_pass = max(1, (batch_size or batching.default_batch_size(model.device)) // d)
    # jacfwd is forward mode, which the helper's no_grad does not switch off
    geo = _split(batching.map_batches(lambda zb: _geometry(decoder_jacobian(model, zb)), z, batch_size=codes_per_pass,
                                      device=model.device, label=f"Jacobians of {n} codes"), d)
    spectrum = geo["eigenvalues"].mean(0)
    return {"n": n, "spectrum_mean": spectrum.tolist(),
            "log10_condition_median": float(np.median(np.log10(geo["condition"]))),
            "anisotropy_median": float(np.median(geo["anisotropy"])),
            "orthogonality_mean": float(geo["orthogonality"].mean()),
            "trace_mean": float(geo["trace"].mean())}


def save_spectrum_chart(values: list[float], path: str, height: int = 120, bar: int = 6) -> None:
    """A log-scale bar chart of a spectrum as a PNG, drawn as a tensor (no plotting library needed)."""
    import math

    from zoo.image import save_image

    logs = [math.log10(max(v, 1e-30)) for v in values]
    lo, hi = min(logs), max(logs)
    img = torch.ones(3, height, len(values) * (bar + 1) + 1)
    for i, v in enumerate(logs):
        h = max(1, int((v - lo) / (hi - lo + 1e-12) * (height - 2)) + 1)
        img[:, height - h:, 1 + i * (bar + 1): 1 + i * (bar + 1) + bar] = torch.tensor([0.2, 0.4, 0.8])[:, None, None]
    save_image(img, path, scale=2)


def jacobian_task(run, *, n: int, seed: int, out: str | None) -> dict[str, Any]:
    """The ``jacobian`` task: :func:`jacobian_geometry` of the run's model; with ``out``, its mean spectrum as a PNG
    bar chart."""
    result = {"model": run.model.display_name, **jacobian_geometry(run.model, n=n, seed=seed,
                                                                    batch_size=run.batch_size)}
    if out:
        save_spectrum_chart(result["spectrum_mean"], out)
        result["png"] = out
    return result
