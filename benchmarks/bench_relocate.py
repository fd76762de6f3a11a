"""Closed-form linear fit vs a re-implementation of the seed paper's fit (Keras Dense without bias, Adam lr 5e-4,
2000 full-batch steps, L2(1e-4) on the weights and on the activity), on the same correspondence set: time ratio and
held-out L-MSE of both.

    python benchmarks/bench_relocate.py         # writes benchmarks/results/relocate_fit.txt
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from zoo import registry
from zoo.relocate.maps import fit_map


def paper_fit(X: torch.Tensor, Y: torch.Tensor, steps: int = 2000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    limit = (6 / (X.shape[1] + Y.shape[1])) ** 0.5  # glorot_uniform
    W = ((torch.rand(X.shape[1], Y.shape[1], generator=g) * 2 - 1) * limit).requires_grad_(True)
    opt = torch.optim.Adam([W], lr=5e-4, eps=1e-7)
    for _ in range(steps):
        out = X @ W
        loss = (out - Y).pow(2).mean() + 1e-4 * W.pow(2).sum() + 1e-4 * out.pow(2).sum() / len(X)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return W.detach()


def main() -> None:
    g = torch.Generator().manual_seed(0)
    d_s, d_t, n_fit, n_test = 64, 64, 150, 2000
    A = torch.randn(d_s, d_t, generator=g) / d_s ** 0.5
    X = torch.randn(n_fit + n_test, d_s, generator=g)
    Y = X @ A + 0.1 * torch.randn(n_fit + n_test, d_t, generator=g)
    Xf, Yf, Xt, Yt = X[:n_fit], Y[:n_fit], X[n_fit:], Y[n_fit:]
    registry.relocation_maps.get("linear")  # loads the plugins once, outside the timing
    t = time.perf_counter()
    m = fit_map(Xf, Yf, "linear")
    t_closed = time.perf_counter() - t
    t = time.perf_counter()
    W = paper_fit(Xf, Yf)
    t_adam = time.perf_counter() - t
    l_closed = (m(Xt) - Yt).pow(2).mean().item()
    l_adam = (Xt @ W - Yt).pow(2).mean().item()
    ridge = fit_map(Xf, Yf, "ridge")
    l_ridge = (ridge(Xt) - Yt).pow(2).mean().item()
    text = (f"synthetic pairs: d_s={d_s}, d_t={d_t}, n_fit={n_fit}, n_test={n_test}, noise 0.1\n"
            f"closed-form linear: {t_closed * 1000:.1f} ms, held-out L-MSE {l_closed:.5f}\n"
            f"paper's 2000-step Adam: {t_adam * 1000:.0f} ms, held-out L-MSE {l_adam:.5f}\n"
            f"ridge (LOO lambda={ridge.config['lambda']:.3g}): held-out L-MSE {l_ridge:.5f}\n"
            f"time ratio Adam/closed-form: {t_adam / t_closed:.0f}x")
    print(text)
    (Path(__file__).parent / "results" / "relocate_fit.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
