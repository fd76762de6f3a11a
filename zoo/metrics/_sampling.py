"""Shared sampling for metrics: factors drawn with an explicit RNG, rendered, encoded in batches."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from zoo.image import adapt
from zoo.progress import progress_bar


def sample_factors_stream(dataset, n: int, rng, batch_size: int = 16) -> np.ndarray:
    """``n`` factor rows drawn ``batch_size`` at a time, as disentanglement_lib's ``generate_batch_factor_code``
    does — with ``np.random.RandomState(0)`` this reproduces dlib's sampling stream exactly."""
    out, left = [], n
    while left > 0:
        k = min(batch_size, left)
        out.append(dataset.sample_factors(k, rng))
        left -= k
    return np.concatenate(out)


@torch.no_grad()
def encode_factors(model, dataset, factors: np.ndarray, batch_size: int = 256,
                   label: str | None = "encoding") -> np.ndarray:
    """Mean representation of the images of ``factors`` (rows), as float64 (n, d); a progress bar unless ``label``
    is None (for callers that show their own)."""
    codes = []
    with progress_bar(label, len(factors)) if label else nullcontext() as bar:
        for lo in range(0, len(factors), batch_size):
            x = adapt(dataset.images_from_factors(factors[lo:lo + batch_size]), model.image_spec)
            codes.append(model.encode(x.to(model.device)).flatten(1).double().cpu().numpy())
            if bar is not None:
                bar.advance(bar.task_ids[0], len(x))
    return np.concatenate(codes)
