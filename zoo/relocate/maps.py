"""Maps between latent spaces, fitted on corresponding codes (X: source, Y: target; rows are samples).

- ``linear``: Y ≈ X·A without bias, closed-form least squares — the seed paper's model. Its code fits the same model
  with 2000 full-batch Adam steps and small weight/activity L2 terms, i.e. an approximate ridge solution.
- ``ridge``: the same with an L2 penalty λ chosen by leave-one-out error, in closed form through one SVD.
- ``affine``: Y ≈ X·A + b.
- ``procrustes``: standardise both sides, then the best orthogonal (semi-orthogonal if the dimensions differ) A
  (Maiorca et al. 2023, "Latent space translation via semantic alignment").
- ``mlp``: the linear solution plus a residual MLP whose last layer starts at zero, trained on the fit set and kept
  only where it improves the fit (so it never does worse than its linear start).
Solves run in float64. Each is registered as a relocation map (``zoo.relocate.plugin``); a plugin adds its own through
``zoo_register_relocation_maps``: ``fit(X, Y, *, seed) -> LatentMap`` on float64 codes, ``fit_map`` looks it up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo._util import atomic_folder, import_object
from zoo.errors import ZooError
from zoo.spec import RelocationMapSpec


class LatentMap(nn.Module):
    """y = ((x − μx)/σx)·A·σy + μy + b + mlp(x) — every method is this form with some parts fixed."""

    def __init__(self, d_in: int, d_out: int, hidden: int = 0):
        super().__init__()
        self.register_buffer("A", torch.zeros(d_in, d_out, dtype=torch.float64))
        self.register_buffer("b", torch.zeros(d_out, dtype=torch.float64))
        self.register_buffer("x_mean", torch.zeros(d_in, dtype=torch.float64))
        self.register_buffer("x_scale", torch.ones((), dtype=torch.float64))
        self.register_buffer("y_mean", torch.zeros(d_out, dtype=torch.float64))
        self.register_buffer("y_scale", torch.ones((), dtype=torch.float64))
        self.mlp = (nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, d_out)).double()
                    if hidden else None)
        self.config: dict[str, Any] = {}

    def linear_part(self, x: Tensor) -> Tensor:
        return ((x - self.x_mean) / self.x_scale) @ self.A * self.y_scale + self.y_mean + self.b

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.double().flatten(1)
        y = self.linear_part(x)
        if self.mlp is not None:
            y = y + self.mlp(x)
        return y.to(dtype)


def _lstsq(X: Tensor, Y: Tensor) -> Tensor:
    return torch.linalg.lstsq(X, Y, driver="gelsd").solution


def ridge_loo(X: Tensor, Y: Tensor, lambdas: Tensor | None = None) -> tuple[Tensor, float]:
    """Ridge regression without bias, λ picked by the closed-form leave-one-out error.

    With X = U S Vᵀ, the hat matrix is H = U diag(s²/(s²+λ)) Uᵀ and the LOO residual is (y − ŷ)/(1 − H_ii)."""
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    if lambdas is None:
        top = float(S[0] ** 2) if len(S) else 1.0
        lambdas = top * torch.logspace(-8, 1, 46, dtype=X.dtype)
    UtY = U.T @ Y
    best = (float("inf"), 0.0)
    for lam in lambdas.tolist():
        f = S ** 2 / (S ** 2 + lam)
        Yhat = U @ (f[:, None] * UtY)
        h = (U ** 2) @ f
        loo = ((Y - Yhat) / (1 - h).clamp_min(1e-12)[:, None]).pow(2).mean().item()
        if loo < best[0]:
            best = (loo, lam)
    lam = best[1]
    A = Vh.T @ ((S / (S ** 2 + lam))[:, None] * UtY)
    return A, lam


def fit_linear(X: Tensor, Y: Tensor, *, seed: int = 0) -> LatentMap:
    m = LatentMap(X.shape[1], Y.shape[1])
    m.A.copy_(_lstsq(X, Y))
    return m


def fit_ridge(X: Tensor, Y: Tensor, *, seed: int = 0) -> LatentMap:
    m = LatentMap(X.shape[1], Y.shape[1])
    A, lam = ridge_loo(X, Y)
    m.A.copy_(A)
    m.config["lambda"] = lam
    return m


def fit_affine(X: Tensor, Y: Tensor, *, seed: int = 0) -> LatentMap:
    m = LatentMap(X.shape[1], Y.shape[1])
    m.x_mean.copy_(X.mean(0))
    m.y_mean.copy_(Y.mean(0))
    m.A.copy_(_lstsq(X - m.x_mean, Y - m.y_mean))
    return m


def fit_procrustes(X: Tensor, Y: Tensor, *, seed: int = 0) -> LatentMap:
    m = LatentMap(X.shape[1], Y.shape[1])
    m.x_mean.copy_(X.mean(0))
    m.y_mean.copy_(Y.mean(0))
    Xc, Yc = X - m.x_mean, Y - m.y_mean
    m.x_scale.copy_(Xc.norm() / len(X) ** 0.5)
    m.y_scale.copy_(Yc.norm() / len(Y) ** 0.5)
    U, _, Vh = torch.linalg.svd((Xc / m.x_scale).T @ (Yc / m.y_scale), full_matrices=False)
    m.A.copy_(U @ Vh)
    return m


def fit_mlp(X: Tensor, Y: Tensor, *, seed: int = 0, hidden: int = 256, steps: int = 500) -> LatentMap:
    m = LatentMap(X.shape[1], Y.shape[1], hidden)
    m.A.copy_(_lstsq(X, Y))  # starts from the linear solution
    m.config.update(_fit_residual_mlp(m, X, Y, seed=seed, steps=steps))
    return m


def map_spec(method: str) -> RelocationMapSpec:
    """The registered relocation map ``method`` (any plugin's), or one line with a did-you-mean."""
    from zoo import registry

    return registry.relocation_maps.get(method).spec


def min_fit_points(method: str, d_source: int) -> int:
    """Fewest fit points that determine a ``method`` map from ``d_source``-dimensional codes (its spec's
    ``min_points``, default one per source dimension). With fewer, the solve fits the points exactly and is arbitrary
    elsewhere; no map is fitted on fewer than 2."""
    rule = map_spec(method).min_points
    return max(2, import_object(rule)(d_source) if rule is not None else d_source)


def fit_map(X: Tensor, Y: Tensor, method: str = "linear", *, seed: int = 0, **options: Any) -> LatentMap:
    """Fit the registered ``method`` map from source codes ``X`` (n, d_s) to target codes ``Y`` (n, d_t), in float64;
    ``options`` go to the map's fit function (e.g. ``hidden``, ``steps`` for mlp)."""
    spec = map_spec(method)
    X, Y = X.double().flatten(1), Y.double().flatten(1)
    if len(X) != len(Y):
        raise ZooError(f"need as many source as target codes, got {len(X)} and {len(Y)}")
    m = import_object(spec.fit)(X, Y, seed=seed, **options)
    if not isinstance(m, LatentMap):
        raise ZooError(f"relocation map {method!r} returned a {type(m).__name__}, not a zoo.relocate.maps.LatentMap; "
                       f"fix the plugin that registers it")
    m.config = {"method": method, "n_fit": len(X), **m.config}
    return m


def _fit_residual_mlp(m: LatentMap, X: Tensor, Y: Tensor, *, seed: int, steps: int) -> dict[str, Any]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in m.mlp:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
    nn.init.zeros_(m.mlp[-1].weight)
    nn.init.zeros_(m.mlp[-1].bias)  # starts exactly at the linear solution
    opt = torch.optim.Adam(m.mlp.parameters(), lr=1e-3)

    def loss() -> Tensor:
        return (m(X) - Y).pow(2).mean()

    with torch.no_grad():
        start = best = loss().item()
    best_state = {k: v.clone() for k, v in m.mlp.state_dict().items()}
    for _ in range(steps):
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()
        with torch.no_grad():
            now = loss().item()
        if now < best:
            best, best_state = now, {k: v.clone() for k, v in m.mlp.state_dict().items()}
    m.mlp.load_state_dict(best_state)
    return {"fit_mse_linear": start, "fit_mse_mlp": best}


MAP_FILES = {"config.json", "map.safetensors"}


def map_files(folder: Path) -> set[str] | None:
    """The files of a saved latent map; None if ``folder`` is not one."""
    return MAP_FILES if (folder / "map.safetensors").is_file() else None


def save_map(m: LatentMap, folder: str | os.PathLike[str], config: dict[str, Any] | None = None, *,
             overwrite: bool = False) -> Path:
    """Write ``config.json`` + ``map.safetensors`` (atomically; an earlier map there is replaced, a folder holding
    anything else is refused unless ``overwrite``)."""
    from safetensors.torch import save_file

    with atomic_folder(folder, map_files, "latent map", overwrite=overwrite) as tmp:
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, tmp / "map.safetensors")
        cfg = {"d_in": m.A.shape[0], "d_out": m.A.shape[1],
               "hidden": m.mlp[0].out_features if m.mlp is not None else 0, **m.config, **(config or {})}
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    return Path(folder)


def load_map(folder: str | os.PathLike[str]) -> LatentMap:
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        cfg = json.loads((folder / "config.json").read_text())
        sd = load_file(folder / "map.safetensors")
    except (OSError, ValueError) as exc:
        raise ZooError(f"{folder} is not a saved latent map (config.json + map.safetensors): {exc}") from None
    m = LatentMap(cfg["d_in"], cfg["d_out"], cfg.get("hidden", 0))
    m.load_state_dict(sd, strict=True)
    m.config = cfg
    return m
