"""Loaders for dataset files a user already has (zoo never downloads them).

Each loader checks the layout up front and fails with one :class:`~zoo.errors.DataError` line naming the file, what
is wrong and the layout it expects. ``.npz`` members are read (and decompressed) when the dataset is built, not on
first use: ``np.load`` only reads an archive's directory, so a damaged member would otherwise fail deep inside a
metric.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.data.base import RNG, GroundTruthDataset, ImageDataset, draw_integers
from zoo.errors import DataError
from zoo.spec import ImageSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# what numpy and zipfile raise on a damaged archive or member (bad CRC, cut-off deflate stream, bad .npy header)
NPZ_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _why(exc: BaseException) -> str:
    """An exception as one line, for a message that quotes it."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _need(path: str | os.PathLike[str] | None, name: str, what: str) -> Path:
    if path is None:
        raise DataError(f"{name} reads {what} you already have: pass path=... (CLI: --path FILE)")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{name}: {p} does not exist; expected {what}")
    return p


def _describe(arrays: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {tuple(a.shape)} {a.dtype}" for k, a in arrays.items())


def _read_npz(p: Path, name: str, keys: tuple[str, ...], layout: str) -> dict[str, np.ndarray]:
    """The members ``keys`` of the archive ``p``, every one read in full now."""
    if not p.is_file():
        raise DataError(f"{name}: {p} is not a file; expected an .npz with {layout}")
    if not zipfile.is_zipfile(p):  # also what a truncated archive looks like: its directory is at the end
        raise DataError(f"{name}: {p} is not an .npz archive (not a zip file, or truncated); expected {layout}")
    try:
        npz = np.load(p, allow_pickle=False)
    except NPZ_READ_ERRORS as exc:
        raise DataError(f"{name}: {p} is not a readable .npz ({_why(exc)}); expected {layout}") from None
    with npz:
        missing = [k for k in keys if k not in npz.files]
        if missing:
            raise DataError(f"{name}: {p} lacks {', '.join(missing)} (it holds {', '.join(npz.files) or 'nothing'}); "
                            f"expected {layout}")
        arrays = {}
        for k in keys:
            try:
                arrays[k] = npz[k]
            except NPZ_READ_ERRORS as exc:
                raise DataError(f"{name}: {p}: member {k!r} is damaged or unreadable ({_why(exc)}); expected {layout}") \
                    from None
    return arrays


def _is_int(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.integer)


def _is_numeric(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_


class DSpritesNpz(GroundTruthDataset):
    """DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``: ``imgs`` (N, 64, 64) uint8,
    ``latents_classes`` (N, 6), ``latents_sizes`` [1, 3, 6, 40, 32, 32]. The size-1 colour factor is dropped
    (dlib's ``dsprites_full``).

    A file may hold any subset of the grid, each factor combination at most once. ``len()`` is the number of rows
    the file holds and index ``i`` is its row ``i`` (on the full file, in DeepMind's order, that is the grid index);
    ``sample_factors`` draws only combinations the file holds (on the full grid, disentanglement_lib's stream), and
    asking for any other combination — as metrics that fix one factor and vary the others do — raises a DataError."""

    name = "dsprites_npz"
    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    LAYOUT = "keys imgs (N,64,64), latents_classes (N,6) integers, latents_sizes [1,3,6,40,32,32]"

    def __init__(self, path: str | None = None):
        p = _need(path, self.name, "DeepMind's dsprites .npz")
        arrays = _read_npz(p, self.name, ("imgs", "latents_classes", "latents_sizes"), self.LAYOUT)
        imgs, classes, sizes = arrays["imgs"], arrays["latents_classes"], arrays["latents_sizes"]
        if (imgs.ndim != 3 or not len(imgs) or not _is_numeric(imgs) or not _is_int(classes) or not _is_int(sizes)
                or sizes.shape != (6,) or (sizes < 1).any() or classes.shape != (len(imgs), 6)):
            raise DataError(f"{self.name}: {p} holds {_describe(arrays)}; expected {self.LAYOUT}")
        classes, sizes = classes[:, 1:].astype(np.int64), sizes[1:].astype(np.int64)
        bad = np.flatnonzero(((classes < 0) | (classes >= sizes)).any(1))
        if len(bad):
            raise DataError(f"{self.name}: {p} row {bad[0]} has latents_classes {classes[bad[0]].tolist()}, outside "
                            f"latents_sizes {sizes.tolist()}; expected {self.LAYOUT}")
        self.path, self.imgs, self._factors = p, imgs, classes
        self.factor_sizes = tuple(int(s) for s in sizes)
        self.grid_size = int(np.prod(self.factor_sizes, dtype=object))
        if self.grid_size >= 2 ** 62:
            raise DataError(f"{self.name}: {p} has latents_sizes {sizes.tolist()}, a grid too large to index; "
                            f"expected {self.LAYOUT}")
        self.factor_values = tuple(np.arange(s, dtype=np.float64) for s in self.factor_sizes)
        self.image_spec = ImageSpec(1, tuple(imgs.shape[1:]), dataset="dsprites")
        # grid index → row: the grid indices the file holds, sorted, and the row each one is in
        flat = self._grid_index(classes)
        self._row_order = np.argsort(flat, kind="stable")
        self._sorted_flat = flat[self._row_order]
        twice = np.flatnonzero(np.diff(self._sorted_flat) == 0)
        if len(twice):
            rows = sorted(self._row_order[twice[0]:twice[0] + 2].tolist())
            raise DataError(f"{self.name}: {p} holds the factor combination {classes[rows[0]].tolist()} twice (rows "
                            f"{rows[0]} and {rows[1]}); expected each combination at most once")
        self.full_grid = len(imgs) == self.grid_size

    def _grid_index(self, factors: np.ndarray) -> np.ndarray:
        return np.ravel_multi_index(tuple(factors.T), self.factor_sizes)

    def __len__(self) -> int:
        return len(self.imgs)

    def _rows(self, factors: np.ndarray) -> np.ndarray:
        """File rows of factor combinations; a DataError if the file lacks one."""
        flat = self._grid_index(factors)
        pos = np.searchsorted(self._sorted_flat, flat).clip(max=len(self._sorted_flat) - 1)
        missing = np.flatnonzero(self._sorted_flat[pos] != flat)
        if len(missing):
            raise DataError(f"{self.name}: {self.path} does not hold every factor combination asked for: "
                            f"{factors[missing[0]].tolist()} is not among its {len(self):,} of the "
                            f"{self.grid_size:,}; this needs the file with the full grid")
        return self._row_order[pos]

    def sample_factors(self, n: int, rng: RNG) -> np.ndarray:
        if self.full_grid:
            return super().sample_factors(n, rng)
        return self._factors[draw_integers(rng, len(self), n)]

    def index_to_factors(self, index: Any) -> np.ndarray:
        idx = np.asarray(index, dtype=np.int64)
        if (idx < 0).any() or (idx >= len(self)).any():
            raise DataError(f"{self.name}: index out of range [0, {len(self)})")
        return self._factors[idx]

    def factors_to_index(self, factors: Any) -> np.ndarray:
        return self._rows(self.check_factors(np.atleast_2d(factors)))

    def traversal(self, base: Any = None, steps: int = 8) -> tuple[torch.Tensor, list[str]]:
        if not self.full_grid:
            raise DataError(f"{self.name}: {self.path} holds {len(self):,} of the {self.grid_size:,} factor "
                            f"combinations; a traversal (one factor swept, the others fixed) needs the full grid")
        return super().traversal(base, steps)

    def _render(self, factors: np.ndarray) -> torch.Tensor:
        rows = self._rows(factors)
        return torch.from_numpy(self.imgs[rows].astype(np.float32)).unsqueeze(1).clamp(0, 1)


class MPI3DNpz(GroundTruthDataset):
    """MPI3D (toy/realistic/real) ``.npz``: ``images`` (1,036,800, 64, 64, 3) uint8 in factor order
    [6, 6, 2, 3, 3, 40, 40] (object colour, shape, size, camera height, background colour, horizontal and vertical
    axis); a smaller file must hold a leading block of that order and be given its ``factor_sizes``."""

    name = "mpi3d_npz"
    factor_names = ("object_color", "object_shape", "object_size", "camera_height", "background_color",
                    "horizontal_axis", "vertical_axis")
    factor_sizes = (6, 6, 2, 3, 3, 40, 40)
    LAYOUT = "key images (N,64,64,3) uint8 in factor order [6,6,2,3,3,40,40]"

    def __init__(self, path: str | None = None, factor_sizes: tuple[int, ...] | None = None):
        if factor_sizes is not None:
            if len(factor_sizes) != len(self.factor_names) or any(int(s) < 1 for s in factor_sizes):
                raise DataError(f"{self.name}: factor_sizes must be {len(self.factor_names)} positive sizes (one per "
                                f"factor: {', '.join(self.factor_names)}), got {tuple(factor_sizes)}")
            self.factor_sizes = tuple(int(s) for s in factor_sizes)
        p = _need(path, self.name, "an MPI3D .npz")
        arrays = _read_npz(p, self.name, ("images",), self.LAYOUT)
        self.images = arrays["images"]
        if self.images.ndim != 4 or self.images.shape[1:] != (64, 64, 3) or self.images.dtype != np.uint8:
            raise DataError(f"{self.name}: {p} holds {_describe(arrays)}; expected {self.LAYOUT}")
        if len(self.images) != len(self):
            raise DataError(f"{self.name}: {p} holds {len(self.images)} images, not {len(self)} images (the grid "
                            f"{list(self.factor_sizes)}); expected {self.LAYOUT}, or (from Python) factor_sizes=... "
                            f"naming the leading block it holds")
        self.factor_values = tuple(np.arange(s, dtype=np.float64) for s in self.factor_sizes)
        self.image_spec = ImageSpec(3, (64, 64), dataset="mpi3d")

    def _render(self, factors: np.ndarray) -> torch.Tensor:
        idx = np.ravel_multi_index(tuple(factors.T), self.factor_sizes)
        return torch.from_numpy(self.images[idx].astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()


class CelebAFolder(ImageDataset):
    """Aligned CelebA images (``img_align_celeba/*.jpg``, 178×218) with the seed papers' preprocessing: crop
    128×128 at row 45, column 25, then bilinear resize to 64×64. Files are read in sorted order.

    A damaged file is refused, not skipped: each image is decoded in full when it is read, and a file that is not an
    image, is truncated or is too small for the crop raises a DataError naming it (remove or replace it). Skipping
    would shift which file an index means, so the same seed could pick different images, and a held-out image could
    silently stand in for another."""

    name = "celeba"
    CROP = (45, 25, 128)  # top, left, side

    def __init__(self, path: str | None = None, size: int = 64):
        folder = _need(path, self.name, "a folder of aligned CelebA images")
        if not folder.is_dir():
            raise DataError(f"{self.name}: {folder} is not a folder; expected a folder of aligned CelebA images")
        self.files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not self.files:
            raise DataError(f"{self.name}: {folder} holds no .jpg/.png images")
        self.size = size
        self.image_spec = ImageSpec(3, (size, size), dataset=self.name)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        file = self.files[index]
        top, left, side = self.CROP
        try:
            with Image.open(file) as im:
                im = im.convert("RGB")  # decodes the whole file: a truncated one fails here, not as a grey block
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"{self.name}: {file} is not a readable image ({_why(exc)}); remove or replace it") \
                from None
        if im.width < left + side or im.height < top + side:
            raise DataError(f"{self.name}: {file} is {im.width}x{im.height}, too small for the {side}x{side} crop at "
                            f"({top}, {left}); remove or replace it")
        im = im.crop((left, top, left + side, top + side)).resize((self.size, self.size), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class CelebAHQFolder(CelebAFolder):
    """CelebA-HQ images (1024×1024): crop 880×880 at row 20, column 60, then bilinear resize to 64×64 (damaged files
    are refused, as for :class:`CelebAFolder`)."""

    name = "celebahq"
    CROP = (20, 60, 880)
