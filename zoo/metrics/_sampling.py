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
    their own). Under torchrun each rank encodes its shard of the rows and every rank gets all the codes."""
    from zoo import distributed

    part = factors[distributed.shard(len(factors), block=batch_size or batching.default_batch_size(model.device))]
    codes = batching.encode(model, lambda lo, hi: dataset.images_from_factors(part[lo:hi]), n=len(part),
                            batch_size=batch_size, label=label if distributed.is_main() else None)
    return distributed.gather_rows(codes.flatten(1), device=model.device).double().numpy()


DENSE_BYTES = 256 << 20  # largest grid of float32 codes a CodeCache keeps; beyond it, repeats are shared per call only


class CodeCache:
    """``represent`` for the scores: mean codes of ``model`` for factor rows of ``dataset`` (float64 (n, D)), every
    distinct grid point encoded once.

    Why: disentanglement_lib's metrics each restart ``RandomState(seed)``, so MIG, SAP, DCI, modularity and the
    unsupervised scores draw the very same rows, and at dlib's sizes the β-VAE and FactorVAE scores draw 1.92M and
    0.97M rows of dSprites' 737,280 grid points. The encoder is deterministic, so a repeated row gets the code it got
    before: ``zoo scores`` encodes at most the grid (737,280 images) where dlib's pipelines encode 2.96M. Every batch
    is a whole one (see ``_encode``), so a code is what the row gets in any full batch of that size — on the shipped
    models the very code dlib's pipelines compute. Datasets whose rows are not one image each (``one_image_per_row`` False: labelled
    collections) are encoded as drawn. ``encoded`` counts the images encoded, ``drawn`` the rows asked for."""

    def __init__(self, model, dataset, batch_size: int | None = None, label: str | None = None):
        self.model, self.dataset, self.batch_size, self.label = model, dataset, batch_size, label
        self.sizes = tuple(int(s) for s in dataset.factor_sizes)
        self.codes: np.ndarray | None = None  # (grid points, D) float32, rows valid where ``known``
        self.known: np.ndarray | None = None
        self.encoded = self.drawn = 0

    def _encode(self, factors: np.ndarray) -> np.ndarray:
        """Codes of ``factors``, encoded in whole batches: the last row is repeated to fill the last batch, because a
        convolution may round a row differently in a batch of another size — so a code depends only on the batch
        size, not on how many new rows a call happened to bring (nor on which scores ran before)."""
        n = len(factors)
        batch = self.batch_size or batching.default_batch_size(self.model.device)
        padded = np.concatenate([factors, np.repeat(factors[-1:], -n % batch, axis=0)])
        self.encoded += len(padded)
        return encode_factors(self.model, self.dataset, padded, self.batch_size, self.label)[:n]

    def __call__(self, factors: np.ndarray) -> np.ndarray:
        factors = np.asarray(factors, dtype=np.int64)
        self.drawn += len(factors)
        if not getattr(self.dataset, "one_image_per_row", False):
            return self._encode(factors)
        keys = np.ravel_multi_index(tuple(self.dataset.check_factors(factors).T), self.sizes)
        if self.known is None:
            unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            codes = self._encode(factors[first])
            grid = int(np.prod(self.sizes, dtype=np.float64))
            if grid * codes.shape[1] * 4 <= DENSE_BYTES:
                self.codes = np.empty((grid, codes.shape[1]), dtype=np.float32)
                self.known = np.zeros(grid, dtype=bool)
                self.codes[unique], self.known[unique] = codes, True
            return codes[inverse]
        unique, first = np.unique(keys, return_index=True)
        new = ~self.known[unique]
        if new.any():
            self.codes[unique[new]] = self._encode(factors[first[new]])
            self.known[unique[new]] = True
        return self.codes[keys].astype(np.float64)


def dataset_of(model, data: Any) -> Any:
    """``data`` when it is a dataset already; else the dataset named ``data`` (default: the model's own)."""
    if data is not None and not isinstance(data, str):
        return data
    from zoo.data import dataset_for

    return dataset_for(model, data=data)
