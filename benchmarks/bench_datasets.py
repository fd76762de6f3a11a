"""Rendering speed of the procedural datasets, against a per-image PIL drawing peer measured in the same run.

    python benchmarks/bench_datasets.py          # writes benchmarks/results/datasets.txt
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from zoo.data import get_dataset


def rate(fn, n: int, repeats: int = 3) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return n * repeats / (time.perf_counter() - t)


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
    torch.manual_seed(0)
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads"]
    n = 4096
    for name in ("dsprites", "faces64"):
        ds = get_dataset(name)
        f = ds.sample_factors(n, 0)
        ours = rate(lambda: ds.images_from_factors(f), n)
        lines.append(f"{name:9s} zoo renderer: {ours:10,.0f} images/s")
        if name == "dsprites":
            peer = rate(lambda: pil_dsprites(f[:1024], ds), 1024)
            lines.append(f"{name:9s} PIL per-image peer: {peer:10,.0f} images/s   ratio zoo/peer = {ours / peer:.1f}x")
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).parent / "results" / "datasets.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
