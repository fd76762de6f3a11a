"""Procedural dSprites: DeepMind's 737,280-image grid, rendered on the fly from the factor values.

Matthey, Higgins, Hassabis & Lerchner (2017), "dSprites: Disentanglement testing Sprites dataset". Factors, in the
original order: shape {square, ellipse, heart} (3), scale linspace(0.5, 1, 6), orientation linspace(0, 2π, 40),
posX and posY linspace(0, 1, 32). Images are binary 64×64: a pixel is on when its centre lies inside the shape, so
rendering is a few vectorised comparisons per pixel and the whole batch is done at once (no image array is stored).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from zoo.data.base import GroundTruthDataset
from zoo.spec import ImageSpec

SIZE = 64
SHAPES = ("square", "ellipse", "heart")
# Geometry chosen to match the original in kind: a scale-1 square is ~20 px wide, shape centres span pixels ~10..54.
HALF_EXTENT = 0.155  # half side of a scale-1 square, in image widths
POS_LO, POS_HI = 0.16, 0.84  # where posX/posY = 0 and 1 put the shape centre, in image widths
CHUNK = 128


class ProceduralDSprites(GroundTruthDataset):
    name = "dsprites"
    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)

    def __init__(self) -> None:
        self.factor_values = (np.arange(1, 4, dtype=np.float64), np.linspace(0.5, 1.0, 6),
                              np.linspace(0.0, 2 * math.pi, 40), np.linspace(0.0, 1.0, 32), np.linspace(0.0, 1.0, 32))
        self.image_spec = ImageSpec(channels=1, size=(SIZE, SIZE), dataset=self.name)
        c = (torch.arange(SIZE, dtype=torch.float32) + 0.5) / SIZE
        self._ys, self._xs = torch.meshgrid(c, c, indexing="ij")  # pixel centres in [0, 1]

    def _render(self, factors: np.ndarray) -> torch.Tensor:
        out = torch.empty(len(factors), 1, SIZE, SIZE)
        for lo in range(0, len(factors), CHUNK):  # chunks keep the temporaries in cache: ~5x faster than one batch
            out[lo:lo + CHUNK, 0] = self._render_chunk(factors[lo:lo + CHUNK])
        return out

    def _render_chunk(self, factors: np.ndarray) -> torch.Tensor:
        def value(i: int) -> torch.Tensor:
            return torch.from_numpy(self.factor_values[i][factors[:, i]]).float().view(-1, 1, 1)

        size = HALF_EXTENT * value(1)
        theta = value(2)
        cx = POS_LO + (POS_HI - POS_LO) * value(3)
        cy = POS_LO + (POS_HI - POS_LO) * value(4)
        # shape-frame coordinates: translate, rotate by -θ, divide by the size so the shape lives in about [-1, 1]²
        cos, sin = torch.cos(theta) / size, torch.sin(theta) / size
        dx, dy = self._xs - cx, self._ys - cy
        u = cos * dx + sin * dy
        v = cos * dy - sin * dx
        on = torch.empty(u.shape, dtype=torch.bool)
        for k, inside in enumerate((_square, _ellipse, _heart)):
            rows = torch.from_numpy(np.flatnonzero(factors[:, 0] == k))
            if len(rows):
                on[rows] = inside(u[rows], v[rows])
        return on.float()


def _square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.maximum(u.abs(), v.abs()) <= 1.0


def _ellipse(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u * (1 / 1.25)) ** 2 + (v * (1 / 0.62)) ** 2 <= 1.0  # an oval twice as long as wide


def _heart(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(x² + y² − 1)³ ≤ x² y³, pointing up in image coordinates (y grows downwards)."""
    x, y = u * (1 / 1.05), 0.1 - v * (1 / 1.05)
    x2 = x * x
    return (x2 + y * y - 1) ** 3 <= x2 * y ** 3
