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
    """Unbiased estimates of tr(JᵀJ) per code, from ``samples`` JVPs with Rademacher directions."""
    from torch.func import jvp

    g = torch.Generator().manual_seed(seed)
    total = torch.zeros(len(z))
    for _ in range(samples):
        v = torch.randint(0, 2, z.shape, generator=g).float() * 2 - 1
        _, jv = jvp(model.decode, (z,), (v,))
        total += jv.flatten(1).pow(2).sum(1).detach()
    return total / samples


def geometry_of(J: Tensor) -> dict[str, np.ndarray]:
    M = J.transpose(-1, -2) @ J
    eig = torch.linalg.eigvalsh(M.double()).flip(-1).clamp_min(0)  # descending
    cols = J / J.norm(dim=-2, keepdim=True).clamp_min(1e-12)
    cos = (cols.transpose(-1, -2) @ cols).abs()
    d = J.shape[-1]
    off = (cos.sum((-1, -2)) - cos.diagonal(dim1=-2, dim2=-1).sum(-1)) / max(d * (d - 1), 1)
    return {"eigenvalues": eig.numpy(), "condition": (eig[..., 0] / eig[..., -1].clamp_min(1e-30)).numpy(),
            "anisotropy": (eig[..., 0] / eig.mean(-1).clamp_min(1e-30)).numpy(),
            "orthogonality": (1 - off).double().numpy(), "trace": eig.sum(-1).numpy()}


def jacobian_geometry(model, *, n: int = 64, seed: int = 0, batch_size: int = 16) -> dict[str, Any]:
    """Spectrum and shape of the pullback metric at ``n`` codes sampled from the model's latent distribution."""
    require(model, "decode", "sample", purpose="Jacobian geometry")
    g = torch.Generator().manual_seed(seed)
    z = model.sample_latent(n, generator=g).flatten(1)
    parts = [geometry_of(decoder_jacobian(model, z[i:i + batch_size]).detach()) for i in range(0, n, batch_size)]
    geo = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    spectrum = geo["eigenvalues"].mean(0)
    return {"n": n, "spectrum_mean": spectrum.tolist(),
            "log10_condition_median": float(np.median(np.log10(geo["condition"]))),
            "anisotropy_median": float(np.median(geo["anisotropy"])),
            "orthogonality_mean": float(geo["orthogonality"].mean()),
            "trace_mean": float(geo["trace"].mean())}
