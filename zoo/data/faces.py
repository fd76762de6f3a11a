"""faces64: procedural colour 64×64 faces with ten independent factors on a grid.

The seed papers compare latent spaces on CelebA faces; no face data can be downloaded here, so zoo renders its own:
every factor is a parameter of an analytic drawing (ellipses, arcs, rings), every image is anti-aliased by turning a
signed distance into coverage, and the whole batch is drawn at once on a pixel grid.
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch

from zoo.data.base import GroundTruthDataset
from zoo.spec import ImageSpec

SIZE = 64
CHUNK = 128

SKIN = np.array([[0.98, 0.84, 0.72], [0.91, 0.72, 0.56], [0.72, 0.52, 0.36], [0.48, 0.33, 0.22]])
HAIR = np.array([[0.12, 0.09, 0.07], [0.45, 0.27, 0.12], [0.85, 0.70, 0.38], [0.62, 0.22, 0.10]])


def _hues(n: int) -> np.ndarray:
    return np.array([colorsys.hsv_to_rgb(h, 0.35, 0.85) for h in np.arange(n) / n])


def _cover(sd: torch.Tensor) -> torch.Tensor:
    """Signed distance in pixels (negative inside) → coverage in [0, 1]: a one-pixel anti-aliased edge."""
    return (0.5 - sd).clamp(0.0, 1.0)


def _ellipse_sd(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    """Approximate signed distance (pixels) to an axis-aligned ellipse with half-axes a, b (pixels)."""
    r = torch.sqrt((x / a) ** 2 + (y / b) ** 2 + 1e-12)
    return (r - 1.0) * torch.minimum(torch.as_tensor(a), torch.as_tensor(b))


def _over(img: torch.Tensor, colour: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return img * (1 - alpha.unsqueeze(1)) + colour.view(-1, 3, 1, 1) * alpha.unsqueeze(1)


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
        c = torch.arange(SIZE, dtype=torch.float32) + 0.5
        self._ys, self._xs = torch.meshgrid(c, c, indexing="ij")
        self._bg = torch.from_numpy(_hues(6)).float()
        self._skin, self._hair = torch.from_numpy(SKIN).float(), torch.from_numpy(HAIR).float()

    def _render(self, factors: np.ndarray) -> torch.Tensor:
        return torch.cat([self._render_chunk(factors[i:i + CHUNK]) for i in range(0, len(factors), CHUNK)])

    def _render_chunk(self, f: np.ndarray) -> torch.Tensor:
        n = len(f)

        def v(i: int) -> torch.Tensor:
            return torch.from_numpy(self.factor_values[i][f[:, i]]).float().view(-1, 1, 1)

        width, eye_r, eye_dx, smile, hair_len, tilt, glasses = v(1), v(2), v(3), v(4), v(6), v(8), v(9)
        skin, hair = self._skin[f[:, 0]], self._hair[f[:, 5]]
        # head frame: rotate the pixel grid about the neck so the whole head tilts
        px, py = self._xs - 32.0, self._ys - 44.0
        cos, sin = torch.cos(tilt), torch.sin(tilt)
        x = cos * px + sin * py
        y = -sin * px + cos * py + 44.0 - 33.0  # y relative to the face centre (33 px down the image)
        height = 23.0

        img = self._bg[f[:, 7]].view(n, 3, 1, 1).expand(n, 3, SIZE, SIZE).clone()
        # hair behind the head: a cap plus a curtain whose bottom edge depends on hair length
        hair_bottom = 2.0 + 11.0 * hair_len
        curtain = torch.maximum(x.abs() - (width + 4.0), torch.maximum(-6.0 - y, y - hair_bottom))
        back = torch.minimum(_ellipse_sd(x, y + 2.0, width + 4.0, height + 4.0), torch.where(hair_len > 0, curtain,
                                                                                       torch.full_like(curtain, 99.0)))
        img = _over(img, hair, _cover(back))
        # neck and face
        neck = torch.maximum((x.abs() - 7.0), -y)
        img = _over(img, skin * 0.9, _cover(neck))
        img = _over(img, skin, _cover(_ellipse_sd(x, y, width, height)))
        # fringe: the top of the hair ellipse, above a line that rises towards the sides
        fringe = torch.maximum(_ellipse_sd(x, y + 2.0, width + 4.0, height + 4.0), y + 11.0 - 0.012 * x * x)
        img = _over(img, hair, _cover(fringe))
        # eyes: white, iris, and optional glasses
        for side in (-1.0, 1.0):
            ex, ey = x - side * eye_dx, y + 3.0
            img = _over(img, torch.tensor([0.97, 0.97, 0.97]).expand(n, 3), _cover(_ellipse_sd(ex, ey, eye_r * 1.5,
                                                                                                 eye_r)))
            img = _over(img, torch.tensor([0.15, 0.25, 0.45]).expand(n, 3), _cover(_ellipse_sd(ex, ey, eye_r * 0.7,
                                                                                                 eye_r * 0.7)))
            ring = _ellipse_sd(ex, ey, 5.0, 4.2).abs() - 0.6
            img = _over(img, torch.tensor([0.05, 0.05, 0.05]).expand(n, 3), _cover(ring) * glasses)
        bridge = torch.maximum((y + 3.5).abs() - 0.6, x.abs() - (eye_dx - 4.5))
        img = _over(img, torch.tensor([0.05, 0.05, 0.05]).expand(n, 3), _cover(bridge) * glasses)
        # nose and mouth: a short vertical stroke, and a parabolic arc whose curvature is the mouth factor
        nose = torch.maximum(x.abs() - 0.8, (y - 4.5).abs() - 2.5)
        img = _over(img, skin * 0.7, _cover(nose))
        mouth_y = 12.0 - smile * (1.0 - (x / 7.0) ** 2) * 2.5
        mouth = torch.maximum((y - mouth_y).abs() - 0.9, x.abs() - 7.0)
        img = _over(img, torch.tensor([0.55, 0.12, 0.15]).expand(n, 3), _cover(mouth))
        return img.clamp(0.0, 1.0)
