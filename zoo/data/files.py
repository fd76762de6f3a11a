"""Loaders for dataset files a user already has (zoo never downloads them). Each checks the layout up front and
fails with one line naming the expected layout."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from zoo.data.base import GroundTruthDataset, ImageDataset
from zoo.errors import DataError
from zoo.spec import ImageSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _need(path: str | os.PathLike[str] | None, name: str, what: str) -> Path:
    if path is None:
        raise DataError(f"{name} reads {what} you already have: pass path=... (CLI: --path FILE)")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{name}: {p} does not exist; expected {what}")
    return p


def _load_npz(p: Path, name: str, keys: tuple[str, ...], layout: str) -> np.lib.npyio.NpzFile:
    try:
        npz = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{name}: {p} is not a readable .npz ({exc}); expected {layout}") from None
    missing = [k for k in keys if k not in npz.files]
    if missing:
        raise DataError(f"{name}: {p} lacks {', '.join(missing)}; expected {layout}")
    return npz


class DSpritesNpz(GroundTruthDataset):
    """DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``: ``imgs`` (N, 64, 64) uint8,
    ``latents_classes`` (N, 6), ``latents_sizes`` [1, 3, 6, 40, 32, 32]. The size-1 colour factor is dropped
    (dlib's ``dsprites_full``); files holding a subset of the grid are looked up by their factor rows."""

    name = "dsprites_npz"
    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    LAYOUT = "keys imgs (N,64,64), latents_classes (N,6), latents_sizes [1,3,6,40,32,32]"

    def __init__(self, path: str | None = None):
        p = _need(path, self.name, "DeepMind's dsprites .npz")
        npz = _load_npz(p, self.name, ("imgs", "latents_classes", "latents_sizes"), self.LAYOUT)
        sizes = np.asarray(npz["latents_sizes"]).astype(np.int64)
        self.imgs, classes = npz["imgs"], np.asarray(npz["latents_classes"]).astype(np.int64)
        if sizes.shape != (6,) or self.imgs.ndim != 3 or classes.shape != (len(self.imgs), 6):
            raise DataError(f"{self.name}: {p} has the wrong shapes; expected {self.LAYOUT}")
        self.factor_sizes = tuple(int(s) for s in sizes[1:])
        self.factor_values = tuple(np.arange(s, dtype=np.float64) for s in self.factor_sizes)
        self.image_spec = ImageSpec(1, tuple(self.imgs.shape[1:]), dataset="dsprites")
        flat = np.ravel_multi_index(tuple(classes[:, 1:].T), self.factor_sizes)
        self._row = np.full(int(np.prod(self.factor_sizes)), -1, dtype=np.int64)
        self._row[flat] = np.arange(len(flat))

    def _render(self, factors: np.ndarray) -> torch.Tensor:
        rows = self._row[np.ravel_multi_index(tuple(factors.T), self.factor_sizes)]
        if (rows < 0).any():
            raise DataError(f"{self.name}: the file does not hold every factor combination asked for")
        return torch.from_numpy(self.imgs[rows].astype(np.float32)).unsqueeze(1).clamp(0, 1)


class MPI3DNpz(GroundTruthDataset):
    """MPI3D (toy/realistic/real) ``.npz``: ``images`` (1,036,800, 64, 64, 3) uint8 in factor order
    [6, 6, 2, 3, 3, 40, 40] (object colour, shape, size, camera height, background colour, horizontal and vertical
    axis); a smaller file must hold a leading block of that order."""

    name = "mpi3d_npz"
    factor_names = ("object_color", "object_shape", "object_size", "camera_height", "background_color",
                    "horizontal_axis", "vertical_axis")
    factor_sizes = (6, 6, 2, 3, 3, 40, 40)
    LAYOUT = "key images (N,64,64,3) uint8 in factor order [6,6,2,3,3,40,40]"

    def __init__(self, path: str | None = None, factor_sizes: tuple[int, ...] | None = None):
        p = _need(path, self.name, "an MPI3D .npz")
        npz = _load_npz(p, self.name, ("images",), self.LAYOUT)
        self.images = npz["images"]
        if factor_sizes is not None:
            self.factor_sizes = tuple(int(s) for s in factor_sizes)
        if self.images.ndim != 4 or self.images.shape[1:] != (64, 64, 3) or len(self.images) != len(self):
            raise DataError(f"{self.name}: {p} holds {self.images.shape}, not {len(self)} images; expected "
                            f"{self.LAYOUT}")
        self.factor_values = tuple(np.arange(s, dtype=np.float64) for s in self.factor_sizes)
        self.image_spec = ImageSpec(3, (64, 64), dataset="mpi3d")

    def _render(self, factors: np.ndarray) -> torch.Tensor:
        idx = np.ravel_multi_index(tuple(factors.T), self.factor_sizes)
        return torch.from_numpy(self.images[idx].astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()


class CelebAFolder(ImageDataset):
    """Aligned CelebA images (``img_align_celeba/*.jpg``, 178×218) with the seed papers' preprocessing: crop
    128×128 at row 45, column 25, then bilinear resize to 64×64. Files are read in sorted order."""

    name = "celeba"
    CROP = (45, 25, 128)  # top, left, side

    def __init__(self, path: str | None = None, size: int = 64):
        folder = _need(path, self.name, "a folder of aligned CelebA images")
        if not folder.is_dir():
            raise DataError(f"{self.name}: {folder} is not a folder; expected a folder of aligned CelebA images")
        self.files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise DataError(f"{self.name}: {folder} holds no .jpg/.png images")
        self.size = size
        self.image_spec = ImageSpec(3, (size, size), dataset=self.name)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        top, left, side = self.CROP
        with Image.open(self.files[index]) as im:
            im = im.convert("RGB")
            if im.width < left + side or im.height < top + side:
                raise DataError(f"{self.name}: {self.files[index].name} is {im.width}x{im.height}, too small for "
                                f"the {side}x{side} crop at ({top}, {left})")
            im = im.crop((left, top, left + side, top + side)).resize((self.size, self.size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class CelebAHQFolder(CelebAFolder):
    """CelebA-HQ images (1024×1024): crop 880×880 at row 20, column 60, then bilinear resize to 64×64."""

    name = "celebahq"
    CROP = (20, 60, 880)
