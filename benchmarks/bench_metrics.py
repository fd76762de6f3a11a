"""Metric speed, each against a peer measured in the same run (one thread; every time the median of --repeats runs,
with the process's CPU time beside the wall time, since the machine may be shared):
- MIG on arrays: ``mig_from_codes`` vs disentanglement_lib's ``mig._compute_mig`` (when installed:
  ``pip install --no-deps disentanglement-lib==1.5``; its gin/absl imports come from benchmarks/peers/) and vs a
  straightforward per-(latent, factor) loop of the same algorithm;
- PPL: paths per second on a tiny VAE decoder;
- Jacobian: torch.func forward mode (vmap over jvp) vs torch.autograd.functional.jacobian, one code at a time; and
  ``jacobian_geometry`` of the shipped betavae.dsprites decoder against d plain decoder passes over the same codes,
  with its codes chunked (batch_size // d codes, batch_size decoder inputs per pass) and unchunked.

    python benchmarks/bench_metrics.py          # writes benchmarks/results/metrics.txt
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

import zoo
from zoo import batching
from zoo.metrics import jacobian
from zoo.metrics.mig import mig_from_codes
from zoo.metrics.ppl import perceptual_path_length

HERE = Path(__file__).parent


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


def dlib_mig():
    """disentanglement_lib's ``_compute_mig`` with its study's discretiser, or None when it is not installed."""
    sys.path.insert(0, str(HERE / "peers"))
    try:
        import gin
        from disentanglement_lib.evaluation.metrics import mig, utils
    except ImportError:
        return None
    gin.bind_parameter("discretizer.discretizer_fn", utils._histogram_discretize)
    gin.bind_parameter("discretizer.num_bins", 20)
    return lambda codes, factors: mig._compute_mig(codes.T, factors.T)["discrete_mig"]


class Timer:
    def __init__(self, repeats: int) -> None:
        self.repeats = repeats

    def __call__(self, fn) -> tuple[object, float, float]:
        """``fn()``'s value, and its median wall and CPU seconds over the repeats (after one warm-up call)."""
        out = fn()
        walls, cpus = [], []
        for _ in range(self.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            out = fn()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        return out, statistics.median(walls), statistics.median(cpus)


def mig_lines(timed: Timer) -> list[str]:
    lines, rng, dlib = [], np.random.default_rng(0), dlib_mig()
    if dlib is None:
        lines.append("MIG vs disentanglement_lib: not installed (pip install --no-deps disentanglement-lib==1.5)")
    for n, d in ((10000, 10), (10000, 64), (100000, 10)):
        factors = rng.integers(0, [3, 6, 40, 32, 32], size=(n, 5))
        codes = factors[:, rng.integers(0, 5, size=d)] + rng.normal(size=(n, d))
        fast, t_fast, c_fast = timed(lambda c=codes, f=factors: mig_from_codes(c, f)["discrete_mig"])
        line = f"MIG N={n} D={d}: zoo {t_fast * 1e3:.1f} ms ({c_fast * 1e3:.1f} ms CPU)"
        if dlib is not None:
            ref, t_ref, c_ref = timed(lambda c=codes, f=factors: dlib(c, f))
            line += (f"; dlib _compute_mig {t_ref * 1e3:.1f} ms ({c_ref * 1e3:.1f} ms CPU), speed-up "
                     f"{t_ref / t_fast:.1f}x ({c_ref / c_fast:.1f}x CPU), |difference| {abs(fast - ref):.1e}")
        if n * d <= 100_000:
            slow, t_slow, c_slow = timed(lambda c=codes, f=factors: loop_mig(c, f))
            line += (f"; per-pair loop {t_slow * 1e3:.0f} ms, speed-up {t_slow / t_fast:.1f}x "
                     f"({c_slow / c_fast:.1f}x CPU), |difference| {abs(fast - slow):.1e}")
        lines.append(line)
    return lines


def jacobian_lines(timed: Timer) -> list[str]:
    vae = zoo.create_model("vae", pretrained=False, latent_dim=10)
    _, t, _ = timed(lambda: perceptual_path_length(vae, n=1000, batch_size=100))
    lines = [f"PPL (dSprites-size VAE, 2 decodes per path): {1000 / t:,.0f} paths/s"]
    z = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    _, t_fwd, _ = timed(lambda: jacobian.decoder_jacobian(vae, z))
    t_ag = time.perf_counter()  # one run: it takes tens of seconds
    for zi in z:
        torch.autograd.functional.jacobian(lambda v: vae.decode(v[None]).flatten(), zi)
    t_ag = time.perf_counter() - t_ag
    lines.append(f"Jacobian of a 64x64 decoder, latent 10, 16 codes: forward-mode vmap {t_fwd:.3f} s, "
                 f"autograd.functional.jacobian {t_ag:.3f} s, speed-up {t_ag / t_fwd:.1f}x")

    model, n = zoo.create_model("betavae.dsprites"), 64
    batch = batching.default_batch_size(model.device)
    codes = model.sample_latent(n, generator=torch.Generator().manual_seed(0)).flatten(1)
    d = codes.shape[1]

    @torch.no_grad()
    def passes():  # what the Jacobian costs at best: d decoder passes over every code, batch_size codes at a time
        for lo in range(0, n, batch):
            for _ in range(d):
                model.decode(codes[lo:lo + batch])

    _, t_passes, c_passes = timed(passes)
    chunked, t_chunked, c_chunked = timed(lambda: jacobian.jacobian_geometry(model, n=n, batch_size=batch))
    whole, t_whole, c_whole = timed(lambda: jacobian.jacobian_geometry(model, n=n, batch_size=batch * d))
    spectra = np.array(chunked["spectrum_mean"]), np.array(whole["spectrum_mean"])
    lines.append(
        f"jacobian_geometry of betavae.dsprites, {n} codes, d={d}, batch size {batch}: {batch // d} codes "
        f"({batch // d * d} decoder inputs) per pass {t_chunked:.3f} s ({c_chunked:.3f} s CPU) = "
        f"{t_chunked / t_passes:.2f}x ({c_chunked / c_passes:.2f}x CPU) the time of d={d} plain decoder passes "
        f"({t_passes:.3f} s, {c_passes:.3f} s CPU); all {batch} codes of a batch per pass ({batch * d} inputs) "
        f"{t_whole:.3f} s ({c_whole:.3f} s CPU) = {t_whole / t_passes:.2f}x ({c_whole / c_passes:.2f}x CPU); "
        f"largest relative difference of the mean spectra {np.max(np.abs(spectra[0] / spectra[1] - 1)):.1e}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    timed = Timer(args.repeats)
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), median of {args.repeats} runs, "
             f"mallopt {'on' if batching.MALLOPT_APPLIED else 'off'}; load average at the start "
             + ", ".join(f"{x:.1f}" for x in os.getloadavg())]
    lines += mig_lines(timed)
    lines += jacobian_lines(timed)
    text = "\n".join(lines)
    print(text)
    (HERE / "results" / "metrics.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
