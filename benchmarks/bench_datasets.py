"""Rendering speed of the procedural datasets, against a per-image PIL drawing peer measured in the same run.

One thread by default; every rate is the median of --repeats runs, from wall time and from the process's CPU time
(the machine may be shared). Two ways of asking: 4,096 images in one call (a fresh 200 MB result whose pages the
kernel must first hand out) and the same images in calls of 256, as ``zoo.batching`` asks for them.

    python benchmarks/bench_datasets.py          # writes benchmarks/results/datasets.txt
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from zoo import batching
from zoo.data import get_dataset


def rates(fn, n: int, repeats: int) -> tuple[float, float]:
    """Median images per second of ``fn`` (which makes ``n`` images), by wall time and by CPU time."""
    fn()  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(n / (time.perf_counter() - wall))
        cpus.append(n / (time.process_time() - cpu))
    return statistics.median(walls), statistics.median(cpus)


def pil_dsprites(factors: np.ndarray, ds) -> np.ndarray:
    """The obvious peer: draw each sprite with PIL, one image at a time (squares and ellipses as polygons)."""
    out = np.zeros((len(factors), 64, 64), dtype=np.float32)
    for i, (shape, scale, orient, px, py) in enumerate(factors):
        img = Image.new("L", (64, 64))
        draw = ImageDraw.Draw(img)
        s, th = 10 * ds.factor_values[1][scale], ds.factor_values[2][orient]
        cx, cy = 10 + 44 * ds.factor_values[3][px], 10 + 44 * ds.factor_values[4][py]
        k = 4 if shape == 0 else 24
        pts = [(cx + s * math.cos(th + 2 * math.pi * j / k) * (1.4 if shape else 1),
                cy + s * math.sin(th + 2 * math.pi * j / k) * (0.7 if shape else 1)) for j in range(k)]
        draw.polygon(pts, fill=255)
        out[i] = np.asarray(img, dtype=np.float32) / 255
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), median of {args.repeats} runs, "
             f"mallopt {'on' if batching.MALLOPT_APPLIED else 'off'}; load average at the start "
             + ", ".join(f"{x:.1f}" for x in os.getloadavg())]
    n, call = 4096, 256
    for name in ("dsprites", "faces64"):
        ds = get_dataset(name)
        f = ds.sample_factors(n, 0)
        whole = rates(lambda ds=ds, f=f: ds.images_from_factors(f), n, args.repeats)
        calls = rates(lambda ds=ds, f=f: [ds.images_from_factors(f[lo:lo + call]) for lo in range(0, n, call)], n,
                      args.repeats)
        lines.append(f"{name:9s} zoo renderer: {whole[0]:8,.0f} images/s ({whole[1]:,.0f} by CPU time) in one call "
                     f"of {n}; {calls[0]:8,.0f} images/s ({calls[1]:,.0f} by CPU time) in calls of {call}")
        if name == "dsprites":
            peer = rates(lambda ds=ds, f=f: pil_dsprites(f[:1024], ds), 1024, args.repeats)
            lines.append(f"{name:9s} PIL per-image peer: {peer[0]:8,.0f} images/s ({peer[1]:,.0f} by CPU time)   "
                         f"ratio zoo/peer = {whole[0] / peer[0]:.1f}x ({whole[1] / peer[1]:.1f}x by CPU time)")
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).parent / "results" / "datasets.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
