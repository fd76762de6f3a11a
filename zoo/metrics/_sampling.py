"""Shared sampling for metrics: factors drawn with an explicit RNG, rendered and encoded through :mod:`zoo.batching`."""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo import batching


def sample_factors_stream(dataset, n: int, rng, batch_size: int = 16) -> np.ndarray:
    """``n`` factor rows drawn ``batch_size`` at a time, as disentanglement_lib's ``generate_batch_factor_code``
    does — with ``np.random.RandomState(0)`` this reproduces dlib's sampling stream exactly."""
    out, left = [], n
    while left > 0:
        k = min(batch_size, left)
        out.append(dataset.sample_factors(k, rng))
        left -= k
    return np.concatenate(out)


def encode_factors(model, dataset, factors: np.ndarray, batch_size: int | None = None,
                   label: str | None = "encoding") -> np.ndarray:
    """Mean representation of the images of ``factors`` (rows), as float64 (n, d). Images are rendered one batch at
    a time (a procedural grid never materialises); a progress bar unless ``label`` is None (for callers that show
    their own)."""
    codes = batching.encode(model, lambda lo, hi: dataset.images_from_factors(factors[lo:hi]), n=len(factors),
                            batch_size=batch_size, label=label)
    return codes.flatten(1).double().numpy()


def dataset_of(model, data: Any) -> Any:
    """``data`` when it is a dataset already; else the dataset named ``data`` (default: the model's own)."""
    if data is not None and not isinstance(data, str):
        return data
    from zoo.data import dataset_for

    return dataset_for(model, data=data)
