"""faces64: procedural colour 64×64 faces with ten independent factors on a grid.

The seed papers compare latent spaces on CelebA faces; no face data can be downloaded here, so zoo renders its own:
every factor is a parameter of an analytic drawing (ellipses, arcs, rings), every image is anti-aliased by turning a
signed distance into coverage, and the images are composited back to front, a chunk at a time.

Every layer depends on a few factors only (the nose on the tilt, an eye on the tilt, the eye spacing and the eye
size, ...), so its coverage is computed once per combination of those factors, on the first render, and cropped to the
box where any of them is non-zero; outside it the layer leaves every pixel as it is. Rendering is then, per layer and
image, a table look-up and ``img * (1 - alpha) + colour * alpha`` on that box: the same float32 operations on the
same values as drawing each image from scratch, so the images are bit-identical to that
(``tests/test_speed_paths.py`` holds hashes of images rendered that way).
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from zoo.data.base import GroundTruthDataset
from zoo.spec import ImageSpec

SIZE = 64
CHUNK = 32  # images composited at a time: faster than 16, 64 or 128 (in-place layers on boxes in cache)
HEIGHT = 23.0  # face half-height, px

SKIN = np.array([[0.98, 0.84, 0.72], [0.91, 0.72, 0.56], [0.72, 0.52, 0.36], [0.48, 0.33, 0.22]])
HAIR = np.array([[0.12, 0.09, 0.07], [0.45, 0.27, 0.12], [0.85, 0.70, 0.38], [0.62, 0.22, 0.10]])
WHITE, IRIS, FRAME, LIPS = (0.97, 0.97, 0.97), (0.15, 0.25, 0.45), (0.05, 0.05, 0.05), (0.55, 0.12, 0.15)
# factor columns
F_SKIN, F_WIDTH, F_EYE_R, F_EYE_DX, F_MOUTH, F_HAIR, F_HAIR_LEN, F_BG, F_TILT, F_GLASSES = range(10)


def _hues(n: int) -> np.ndarray:
    return np.array([colorsys.hsv_to_rgb(h, 0.35, 0.85) for h in np.arange(n) / n])


def _cover(sd: torch.Tensor) -> torch.Tensor:
    """Signed distance in pixels (negative inside) → coverage in [0, 1]: a one-pixel anti-aliased edge."""
    return (0.5 - sd).clamp(0.0, 1.0)


def _ellipse_sd(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    """Approximate signed distance (pixels) to an axis-aligned ellipse with half-axes a, b (pixels)."""
    r = torch.sqrt((x / a) ** 2 + (y / b) ** 2 + 1e-12)
    return (r - 1.0) * torch.minimum(torch.as_tensor(a), torch.as_tensor(b))


def _head_frame(tilt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pixel grid rotated about the neck so the whole head tilts: x, and y relative to the face centre (33 px
    down the image)."""
    c = torch.arange(SIZE, dtype=torch.float32) + 0.5
    ys, xs = torch.meshgrid(c, c, indexing="ij")
    px, py = xs - 32.0, ys - 44.0
    cos, sin = torch.cos(tilt), torch.sin(tilt)
    return cos * px + sin * py, -sin * px + cos * py + 44.0 - 33.0


# The layers, back to front: each a coverage function of the head frame (x, y) and the values of the factors it
# depends on, each value a (k, 1, 1) tensor.

def _hair_back(x, y, width, hair_len):
    """Hair behind the head: a cap plus a curtain whose bottom edge depends on hair length."""
    hair_bottom = 2.0 + 11.0 * hair_len
    curtain = torch.maximum(x.abs() - (width + 4.0), torch.maximum(-6.0 - y, y - hair_bottom))
    back = torch.minimum(_ellipse_sd(x, y + 2.0, width + 4.0, HEIGHT + 4.0),
                         torch.where(hair_len > 0, curtain, torch.full_like(curtain, 99.0)))
    return _cover(back)


def _neck(x, y):
    return _cover(torch.maximum((x.abs() - 7.0), -y))


def _face(x, y, width):
    return _cover(_ellipse_sd(x, y, width, HEIGHT))


def _fringe(x, y, width):
    """The top of the hair ellipse, above a line that rises towards the sides."""
    return _cover(torch.maximum(_ellipse_sd(x, y + 2.0, width + 4.0, HEIGHT + 4.0), y + 11.0 - 0.012 * x * x))


def _eye(side: float, part: str) -> Callable[..., torch.Tensor]:
    """The white, the iris or the glasses ring of the eye on ``side`` (-1 left, +1 right)."""
    def white(x, y, eye_dx, eye_r):
        return _cover(_ellipse_sd(x - side * eye_dx, y + 3.0, eye_r * 1.5, eye_r))

    def iris(x, y, eye_dx, eye_r):
        return _cover(_ellipse_sd(x - side * eye_dx, y + 3.0, eye_r * 0.7, eye_r * 0.7))

    def ring(x, y, eye_dx, glasses):
        return _cover(_ellipse_sd(x - side * eye_dx, y + 3.0, 5.0, 4.2).abs() - 0.6) * glasses

    return {"white": white, "iris": iris, "ring": ring}[part]


def _bridge(x, y, eye_dx, glasses):
    return _cover(torch.maximum((y + 3.5).abs() - 0.6, x.abs() - (eye_dx - 4.5))) * glasses


def _nose(x, y):
    """A short vertical stroke."""
    return _cover(torch.maximum(x.abs() - 0.8, (y - 4.5).abs() - 2.5))


def _mouth(x, y, smile):
    """A parabolic arc whose curvature is the mouth factor."""
    mouth_y = 12.0 - smile * (1.0 - (x / 7.0) ** 2) * 2.5
    return _cover(torch.maximum((y - mouth_y).abs() - 0.9, x.abs() - 7.0))


@dataclass(frozen=True)
class _Layer:
    """One layer at every combination of the factors it depends on (row-major, like the dataset's index), cropped
    to the box ``rows`` × ``cols`` outside which every combination's coverage is 0. ``table[combination]`` holds the
    coverage and 1 − coverage; the colour is ``colours[factors[:, colour_by]]``, or the one row of ``colours`` when
    ``colour_by`` is None."""
    factors: tuple[int, ...]
    sizes: tuple[int, ...]
    table: torch.Tensor  # (combinations, 2, 1, h, w)
    rows: slice
    cols: slice
    colours: torch.Tensor  # (values, 3)
    colour_by: int | None

    def combination(self, factors: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ravel_multi_index(tuple(factors[:, self.factors].T), self.sizes))

    def colour(self, factors: np.ndarray) -> torch.Tensor:
        """(n, 3, 1, 1) colour of each image."""
        pick = factors[:, self.colour_by] if self.colour_by is not None else np.zeros(len(factors), dtype=np.int64)
        return self.colours[pick].view(-1, 3, 1, 1)

    def views(self, rows: torch.Tensor, paint: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of flat scratch memory as ``n`` table rows (n, 2, 1, h, w) and ``n`` painted boxes (n, 3, h, w)."""
        h, w = self.table.shape[3:]
        return rows[:n * 2 * h * w].view(n, 2, 1, h, w), paint[:n * 3 * h * w].view(n, 3, h, w)


class ProceduralFaces(GroundTruthDataset):
    name = "faces64"
    factor_names = ("skin", "face_width", "eye_size", "eye_spacing", "mouth", "hair_colour", "hair_length",
                    "background", "tilt", "glasses")
    factor_sizes = (4, 4, 4, 4, 5, 4, 3, 6, 5, 2)

    def __init__(self) -> None:
        self.factor_values = (
            np.arange(4.0),                      # skin tone index into SKIN
            np.linspace(15.0, 21.0, 4),          # face half-width, px
            np.linspace(2.2, 4.0, 4),            # eye radius, px
            np.linspace(6.5, 10.0, 4),           # half distance between the eyes, px
            np.linspace(-1.0, 1.0, 5),           # mouth curvature: frown … smile
            np.arange(4.0),                      # hair colour index into HAIR
            np.array([0.0, 1.0, 2.0]),           # hair length: short, chin, shoulder
            np.arange(6.0),                      # background hue index
            np.linspace(-0.35, 0.35, 5),         # head tilt, radians
            np.array([0.0, 1.0]),                # glasses off / on
        )
        self.image_spec = ImageSpec(channels=3, size=(SIZE, SIZE), dataset=self.name)
        self._bg = torch.from_numpy(_hues(6)).float()
        self._skin, self._hair = torch.from_numpy(SKIN).float(), torch.from_numpy(HAIR).float()
        self._layers: list[_Layer] | None = None  # built on the first render

    def _layer_list(self) -> list[_Layer]:
        if self._layers is None:
            hair, skin = (self._hair, F_HAIR), (self._skin, F_SKIN)
            eyes = [(factors, colour, _eye(side, part)) for side in (-1.0, 1.0) for part, factors, colour in (
                ("white", (F_EYE_DX, F_EYE_R), WHITE), ("iris", (F_EYE_DX, F_EYE_R), IRIS),
                ("ring", (F_EYE_DX, F_GLASSES), FRAME))]
            frames = _head_frame(torch.from_numpy(self.factor_values[F_TILT]).float().view(-1, 1, 1))
            self._layers = [self._build_layer(frames, *spec) for spec in [
                ((F_WIDTH, F_HAIR_LEN), hair, _hair_back), ((), (self._skin * 0.9, F_SKIN), _neck),
                ((F_WIDTH,), skin, _face), ((F_WIDTH,), hair, _fringe), *eyes,
                ((F_EYE_DX, F_GLASSES), FRAME, _bridge), ((), (self._skin * 0.7, F_SKIN), _nose),
                ((F_MOUTH,), LIPS, _mouth)]]
        return self._layers

    def _build_layer(self, frames: tuple[torch.Tensor, torch.Tensor], factors: tuple[int, ...], colour,
                     coverage_of: Callable[..., torch.Tensor]) -> _Layer:
        """Evaluate ``coverage_of`` at every combination of the tilt and ``factors``, in float32 exactly as one
        image's drawing would (``frames``: the head frame of each tilt), and crop it to where it is non-zero."""
        factors = (F_TILT, *factors)
        sizes = tuple(self.factor_sizes[i] for i in factors)
        grid = np.indices(sizes).reshape(len(factors), -1)
        values = [torch.from_numpy(self.factor_values[i][g]).float().view(-1, 1, 1) for i, g in zip(factors[1:],
                                                                                                   grid[1:])]
        x, y = (frame[grid[0]] for frame in frames)
        alpha = coverage_of(x, y, *values)
        rows, cols = (torch.nonzero((alpha > 0).any(0).any(dim)).flatten() for dim in (1, 0))
        rows, cols = slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)
        alpha = alpha[:, None, None, rows, cols]
        colours, colour_by = colour if isinstance(colour[0], torch.Tensor) else (torch.tensor([colour]), None)
        return _Layer(factors, sizes, torch.cat([alpha, 1 - alpha], 1).contiguous(), rows, cols, colours, colour_by)

    def _render(self, factors: np.ndarray) -> torch.Tensor:
        layers, n = self._layer_list(), len(factors)
        out = torch.empty(n, 3, SIZE, SIZE)
        background = self._bg[factors[:, F_BG]].view(n, 3, 1, 1)
        picks = [(layer.combination(factors), layer.colour(factors)) for layer in layers]
        # one chunk's table rows and paint, for every layer in turn: the same memory, kept in cache
        largest = max(layer.table[0, 0].numel() for layer in layers)
        scratch = torch.empty(CHUNK * 2 * largest), torch.empty(CHUNK * 3 * largest)
        views = [layer.views(*scratch, CHUNK) for layer in layers]
        for lo in range(0, n, CHUNK):
            img = out[lo:lo + CHUNK]
            img.copy_(background[lo:lo + CHUNK].expand_as(img))
            for layer, (combination, colour), (rows, paint) in zip(layers, picks, views):
                if len(img) < CHUNK:
                    rows, paint = rows[:len(img)], paint[:len(img)]
                alpha, keep = torch.index_select(layer.table, 0, combination[lo:lo + CHUNK], out=rows).unbind(1)
                torch.mul(colour[lo:lo + CHUNK], alpha, out=paint)
                # img * (1 - alpha) + colour * alpha, as two roundings (a fused multiply-add would change the bits)
                box = img[:, :, layer.rows, layer.cols]
                box.mul_(keep)
                box.add_(paint)
        # no clamp: every value is a rounded convex combination of colours in [0, 0.98], so it stays in [0, 1]
        return out
