"""Metric speed, each against a peer measured in the same run:
- MIG: the vectorised joint histogram vs a straightforward per-(latent, factor) loop of the same algorithm;
- PPL: paths per second on a tiny VAE decoder;
- Jacobian: torch.func forward mode (vmap over jvp) vs torch.autograd.functional.jacobian, one code at a time.

    python benchmarks/bench_metrics.py          # writes benchmarks/results/metrics.txt
"""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

import zoo
from zoo.metrics.jacobian import decoder_jacobian
from zoo.metrics.mig import mig_from_codes
from zoo.metrics.ppl import perceptual_path_length


def loop_mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> float:
    def mi(a, b):
        n, joint, ca, cb = len(a), Counter(zip(a, b)), Counter(a), Counter(b)
        return max(sum((nij / n) * math.log(nij * n / (ca[x] * cb[y])) for (x, y), nij in joint.items()), 0.0)

    disc = [np.digitize(c, np.histogram(c, bins)[1][:-1]).tolist() for c in codes.T]
    fs = [f.tolist() for f in factors.T]
    m = np.array([[mi(d, f) for f in fs] for d in disc])
    h = np.array([mi(f, f) for f in fs])
    s = np.sort(m, axis=0)[::-1]
    return float(np.mean((s[0] - s[1]) / h))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads"]
    rng = np.random.default_rng(0)
    for n, d in ((10000, 10), (10000, 64)):
        factors = rng.integers(0, [3, 6, 40, 32, 32], size=(n, 5))
        codes = factors[:, rng.integers(0, 5, size=d)] + rng.normal(size=(n, d))
        fast, t_fast = timed(lambda: mig_from_codes(codes, factors)["discrete_mig"])
        slow, t_slow = timed(lambda: loop_mig(codes, factors))
        lines.append(f"MIG N={n} D={d}: vectorised {t_fast:.3f} s, per-pair loop {t_slow:.3f} s, "
                     f"speed-up {t_slow / t_fast:.1f}x, |difference| {abs(fast - slow):.1e}")
    vae = zoo.create_model("vae", pretrained=False, latent_dim=10)
    _, t = timed(lambda: perceptual_path_length(vae, n=1000, batch_size=100))
    lines.append(f"PPL (dSprites-size VAE, 2 decodes per path): {1000 / t:,.0f} paths/s")
    z = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    _, t_fwd = timed(lambda: decoder_jacobian(vae, z))
    _, t_ag = timed(lambda: [torch.autograd.functional.jacobian(lambda v: vae.decode(v[None]).flatten(), zi)
                             for zi in z])
    lines.append(f"Jacobian of a 64x64 decoder, latent 10, 16 codes: forward-mode vmap {t_fwd:.3f} s, "
                 f"autograd.functional.jacobian {t_ag:.3f} s, speed-up {t_ag / t_fwd:.1f}x")
    text = "\n".join(lines)
    print(text)
    (Path(__file__).parent / "results" / "metrics.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
