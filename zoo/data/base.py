"""The dataset protocol every metric and tool uses: image datasets, and ground-truth datasets with factors.

A dataset is a grid of factors of variation; each grid point renders deterministically to one image. Index order is
row-major with the last factor fastest (as in DeepMind's dSprites), so ``len(ds) == prod(factor_sizes)``; a file
holding only part of a grid (``zoo.data.files.DSpritesNpz``) counts and indexes the rows it holds instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.errors import DataError
from zoo.spec import ImageSpec

RNG = np.random.Generator | np.random.RandomState | int | None


def as_rng(rng: RNG) -> np.random.Generator | np.random.RandomState:
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if rng is None:
        raise DataError("sampling needs an explicit seed or numpy random generator")
    return np.random.default_rng(rng)


def draw_integers(rng: RNG, high: int, n: int) -> np.ndarray:
    """``n`` integers in [0, high); with a ``RandomState``, its ``randint`` (disentanglement_lib's draws)."""
    rng = as_rng(rng)
    return (rng.randint if isinstance(rng, np.random.RandomState) else rng.integers)(high, size=n)


class ImageDataset(Dataset):
    """The dataset protocol every tool reads: ``name``, ``image_spec``, ``len()``, ``images(indices)`` (float32
    NCHW in [0, 1]) and ``sample(n, seed)``. A plain image dataset has no factors (``has_factors`` is False);
    :class:`GroundTruthDataset` extends it with them. Subclasses implement ``__getitem__`` (one CHW image) or
    override ``images``."""

    name: str
    image_spec: ImageSpec
    has_factors = False

    def images(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        return torch.stack([self[int(i)] for i in indices])

    def sample(self, n: int, rng: RNG) -> tuple[torch.Tensor, np.ndarray | None]:
        """``n`` random images (and their factor rows, or None)."""
        return self.images(draw_integers(rng, len(self), n)), None


class GroundTruthDataset(ImageDataset):
    """Images with known factors of variation. Subclasses set the attributes and implement ``_render``."""

    name: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    factor_values: tuple[np.ndarray, ...]
    image_spec: ImageSpec
    has_factors = True
    # One image per factor row: the same row always renders the same image, so a metric may encode a grid point
    # once however often its draws repeat it (zoo.metrics._sampling.CodeCache). False for labelled collections.
    one_image_per_row = True

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes))

    def images(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        return self.images_from_factors(self.index_to_factors(np.asarray(indices, dtype=np.int64)))

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def sample_factors(self, n: int, rng: RNG) -> np.ndarray:
        """``n`` factor index rows ``(n, F)``. With a ``RandomState`` the draws are disentanglement_lib's exactly
        (one ``randint(size, size=n)`` per factor, in order), so dlib's metric streams can be reproduced."""
        rng = as_rng(rng)
        return np.stack([draw_integers(rng, s, n) for s in self.factor_sizes], axis=1).astype(np.int64)

    def check_factors(self, factors: Any) -> np.ndarray:
        f = np.asarray(factors, dtype=np.int64)
        if f.ndim != 2 or f.shape[1] != self.num_factors:
            raise DataError(f"{self.name}: factors must have shape (n, {self.num_factors}), got {f.shape}")
        if (f < 0).any() or (f >= np.asarray(self.factor_sizes)).any():
            raise DataError(f"{self.name}: factor index out of range; sizes are {self.factor_sizes}")
        return f

    def images_from_factors(self, factors: Any) -> torch.Tensor:
        """Factor index rows → float32 NCHW images in [0, 1]."""
        f = self.check_factors(factors)
        if len(f) == 0:
            return torch.zeros(0, self.image_spec.channels, *self.image_spec.size)
        return self._render(f)

    def _render(self, factors: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def index_to_factors(self, index: int | Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(index, dtype=np.int64)
        if (idx < 0).any() or (idx >= len(self)).any():
            raise DataError(f"{self.name}: index out of range [0, {len(self)})")
        return np.stack(np.unravel_index(idx, self.factor_sizes), axis=-1).astype(np.int64)

    def factors_to_index(self, factors: Any) -> np.ndarray:
        return np.ravel_multi_index(tuple(self.check_factors(np.atleast_2d(factors)).T), self.factor_sizes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.index_to_factors([int(index)])
        return self.images_from_factors(f)[0], torch.from_numpy(f[0])

    def sample(self, n: int, rng: RNG) -> tuple[torch.Tensor, np.ndarray]:  # type: ignore[override]
        """``n`` random images and their factor indices."""
        f = self.sample_factors(n, rng)
        return self.images_from_factors(f), f

    def traversal(self, base: Any = None, steps: int = 8) -> tuple[torch.Tensor, list[str]]:
        """One row per factor: that factor swept over (up to ``steps`` of) its values, all others fixed at ``base``
        (default: the middle of each grid). Returns ``(F * steps, C, H, W)`` images and the row labels."""
        base = np.asarray(base if base is not None else [s // 2 for s in self.factor_sizes], dtype=np.int64)
        rows = []
        for i, size in enumerate(self.factor_sizes):
            values = np.unique(np.linspace(0, size - 1, min(steps, size)).round().astype(np.int64))
            f = np.repeat(base[None], steps, axis=0)
            f[:, i] = values[np.arange(steps) % len(values)]  # short factors (glasses on/off) repeat along the row
            rows.append(f)
        return self.images_from_factors(np.concatenate(rows)), list(self.factor_names)
