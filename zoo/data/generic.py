"""Your own data: any image folder (``folder:PATH``) or array file (``npz:PATH``, ``npy:PATH``), optionally with
labels that act as ground-truth factors, so training, every tool and the disentanglement scores run on it.

- Images are read recursively (``.png .jpg .jpeg .bmp .webp``, sorted by path), converted to RGB (or grey with
  ``channels=1``), cropped (``crop="center"``: the largest centred square; ``"none"``: the whole image, squashed;
  ``"TOP,LEFT,HEIGHT,WIDTH"``: a box) and resized to ``size``×``size``.
- A damaged file is refused, not skipped: it is decoded when read and a DataError names it (skipping would change
  which file an index means, so a seed could pick different images from one run to the next).
- Labels (``factors=PATH``): a CSV with a header whose first column names the file (relative to the folder) and whose
  other columns are factors, or a CelebA attribute file (``list_attr_celeba.txt``: a count line, a line of attribute
  names, then ``FILE v1 v2 …`` with ±1). Each factor's distinct values become its classes. For arrays: a ``factors``
  (or ``labels``) array of shape (N, F) in the ``.npz``, or a CSV/attribute file with one row per image in order.

A labelled dataset is observational: its factor combinations are the rows it has, not a full grid. Metrics that draw
factors and render them (MIG, SAP, DCI, modularity, …) use those rows; scores that intervene on one factor and need
every combination (β-VAE and FactorVAE scores) are refused in one line when a combination is missing.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zoo.data.base import RNG, GroundTruthDataset, ImageDataset, draw_integers
from zoo.errors import DataError
from zoo.spec import ImageSpec

FOLDER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _why(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _crop_box(crop: str | tuple[int, ...] | None) -> str | tuple[int, int, int, int]:
    if crop in (None, "center", "none"):
        return crop or "center"
    try:
        box = tuple(int(v) for v in (crop.split(",") if isinstance(crop, str) else crop))
    except ValueError:
        box = ()
    if len(box) != 4 or min(box) < 0 or box[2] == 0 or box[3] == 0:
        raise DataError(f"crop {crop!r}: expected center, none, or TOP,LEFT,HEIGHT,WIDTH in pixels")
    return box  # type: ignore[return-value]


def read_labels(path: str | Path, files: list[str] | None = None) -> tuple[list[str], np.ndarray, list[str] | None]:
    """(factor names, (N, F) label values, the file each row names or None) from a CSV or a CelebA attribute file."""
    p = Path(path).expanduser()
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"labels: cannot read {p} ({_why(exc)}); expected a CSV or a CelebA attribute file") from None
    rows: list[list[str]]
    if len(lines) > 2 and lines[0].strip().isdigit():  # CelebA: count, names, then "file v1 v2 ..."
        names = lines[1].split()
        rows = [ln.split() for ln in lines[2:] if ln.strip()]
        if any(len(r) != len(names) + 1 for r in rows):
            raise DataError(f"labels: {p} looks like a CelebA attribute file but a row does not have "
                            f"{len(names) + 1} fields (file + {len(names)} attributes)")
        with_files = True
    else:
        table = list(csv.reader(lines))
        if len(table) < 2:
            raise DataError(f"labels: {p} has no rows; expected a CSV with a header (file,factor1,...) and one row "
                            f"per image")
        header, rows = table[0], [r for r in table[1:] if r]
        with_files = header[0].strip().lower() in ("file", "filename", "path", "image")
        names = header[1:] if with_files else header
        if any(len(r) != len(header) for r in rows):
            raise DataError(f"labels: {p}: every row must have {len(header)} fields like its header")
    keys = [r[0] for r in rows] if with_files else None
    values = np.asarray([r[1:] if with_files else r for r in rows], dtype=object)
    return [n.strip() for n in names], values, keys


def _as_classes(values: np.ndarray) -> tuple[np.ndarray, tuple[int, ...], tuple[np.ndarray, ...]]:
    """Label values (any type) → integer class rows, class counts and each factor's values."""
    cols, sizes, kept = [], [], []
    for j in range(values.shape[1]):
        col = values[:, j]
        try:
            col = col.astype(np.float64)
        except (ValueError, TypeError):
            col = col.astype(str)
        uniq, inverse = np.unique(col, return_inverse=True)
        cols.append(inverse)
        sizes.append(len(uniq))
        kept.append(uniq)
    return np.stack(cols, axis=1).astype(np.int64), tuple(sizes), tuple(kept)


class _Images(ImageDataset):
    """Shared loading: a list of sources (files or array rows) → float32 CHW images of one spec."""

    def __init__(self, name: str, size: int, channels: int) -> None:
        if channels not in (1, 3):
            raise DataError(f"{name}: channels must be 1 or 3, got {channels}")
        if size < 4:
            raise DataError(f"{name}: size must be at least 4 pixels, got {size}")
        self.name = name
        self.image_spec = ImageSpec(channels, (size, size), dataset=name)

    def _square(self, x: torch.Tensor, crop: Any) -> torch.Tensor:
        """CHW float → cropped and resized to the spec (area for shrinking, bilinear for growing)."""
        _, h, w = x.shape
        if crop == "center":
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            x = x[:, top:top + side, left:left + side]
        elif crop != "none":
            top, left, ch, cw = crop
            if top + ch > h or left + cw > w:
                raise DataError(f"{self.name}: crop box {crop} does not fit a {w}x{h} image")
            x = x[:, top:top + ch, left:left + cw]
        size = self.image_spec.size
        if tuple(x.shape[1:]) != size:
            shrink = x.shape[1] >= size[0]
            x = F.interpolate(x[None], size=size, mode="area" if shrink else "bilinear",
                              **({} if shrink else {"align_corners": False}))[0]
        return x.clamp(0, 1)


class ImageFolder(_Images):
    """``folder:PATH`` — every image below a folder (see the module docstring)."""

    def __init__(self, path: str | None = None, size: int = 64, crop: str | None = "center", channels: int = 3,
                 factors: str | None = None):
        if path is None:
            raise DataError("folder: needs a folder, e.g. --data folder:photos/ (Python: path=...)")
        self.root = Path(path).expanduser()
        super().__init__(f"folder:{self.root}", int(size), int(channels))
        if not self.root.is_dir():
            raise DataError(f"folder: {self.root} is not a folder of images")
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in FOLDER_SUFFIXES and p.is_file())
        if not self.files:
            raise DataError(f"folder: {self.root} holds no {'/'.join(FOLDER_SUFFIXES)} images")
        self.crop = _crop_box(crop)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        file = self.files[index]
        try:
            with Image.open(file) as im:
                im = im.convert("L" if self.image_spec.channels == 1 else "RGB")  # decodes the whole file
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"folder: {file} is not a readable image ({_why(exc)}); remove or replace it") from None
        arr = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)
        return self._square(arr[None] if arr.dim() == 2 else arr.permute(2, 0, 1), self.crop)


class ArrayImages(_Images):
    """``npz:PATH`` / ``npy:PATH`` — images in an array: (N, H, W), (N, H, W, C) or (N, C, H, W), uint8 0…255 or
    float 0…1; in an ``.npz`` under ``images``, ``imgs`` or ``x`` (with optional ``factors``/``labels``)."""

    KEYS = ("images", "imgs", "x")

    def __init__(self, path: str | None = None, size: int | None = None, crop: str | None = "center",
                 channels: int | None = None, factors: str | None = None):
        if path is None:
            raise DataError("npz:/npy: needs a file, e.g. --data npz:faces.npz (Python: path=...)")
        p = Path(path).expanduser()
        self.labels = None
        try:
            if p.suffix == ".npy":
                arr = np.load(p, mmap_mode="r", allow_pickle=False)
            else:
                with np.load(p, allow_pickle=False) as npz:
                    key = next((k for k in self.KEYS if k in npz.files), None)
                    if key is None:
                        raise DataError(f"npz: {p} has no images array; expected one of {', '.join(self.KEYS)} "
                                        f"(it holds {', '.join(npz.files) or 'nothing'})")
                    arr = npz[key]
                    lab = next((k for k in ("factors", "labels") if k in npz.files), None)
                    self.labels = npz[lab] if lab else None
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - numpy raises many kinds on a damaged file: one line for all
            raise DataError(f"{p.suffix.lstrip('.') or 'npz'}: cannot read {p} ({_why(exc)}); expected an .npy or "
                            f".npz image array") from None
        if arr.ndim == 3:
            arr = arr[:, None]
        elif arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
            arr = arr.transpose(0, 3, 1, 2)  # NHWC → NCHW (a view: nothing is copied)
        if arr.ndim != 4 or arr.shape[1] not in (1, 3) or len(arr) == 0:
            raise DataError(f"{p}: images have shape {arr.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) "
                            f"with C 1 or 3")
        if not (arr.dtype == np.uint8 or np.issubdtype(arr.dtype, np.floating)):
            raise DataError(f"{p}: images are {arr.dtype}; expected uint8 (0…255) or float (0…1)")
        self.arr = arr
        super().__init__(f"{p.suffix.lstrip('.')}:{p}", int(size or arr.shape[-1]), int(channels or arr.shape[1]))
        self.crop = _crop_box(crop)

    def __len__(self) -> int:
        return len(self.arr)

    def __getitem__(self, index: int) -> torch.Tensor:
        a = np.asarray(self.arr[index])
        x = torch.from_numpy(a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0))
        if not bool(torch.isfinite(x).all()) or float(x.min()) < 0 or float(x.max()) > 1:
            raise DataError(f"{self.name}: image {index} has values outside [0, 1] (or NaN); store uint8 0…255 or "
                            f"float 0…1")
        c = self.image_spec.channels
        if x.shape[0] != c:
            x = x.mean(0, keepdim=True) if c == 1 else x.expand(3, -1, -1)
        return self._square(x, self.crop)


class Labelled(GroundTruthDataset):
    """An image dataset with labels as factors (observational: the combinations it has; see module docstring)."""

    one_image_per_row = False  # images sharing a label row take turns

    def __init__(self, images: ImageDataset, names: list[str], values: np.ndarray):
        if len(values) != len(images):
            raise DataError(f"{images.name}: {len(values)} label rows for {len(images)} images")
        self.base, self.name, self.image_spec = images, images.name, images.image_spec
        self.factor_names = tuple(names)
        self.classes, self.factor_sizes, self.factor_values = _as_classes(values)
        self._rows: dict[tuple[int, ...], list[int]] = {}
        for i, row in enumerate(map(tuple, self.classes)):
            self._rows.setdefault(row, []).append(i)
        self._next: dict[tuple[int, ...], int] = {}

    def __len__(self) -> int:
        return len(self.base)

    def sample_factors(self, n: int, rng: RNG) -> np.ndarray:
        return self.classes[draw_integers(rng, len(self), n)]

    def sample(self, n: int, rng: RNG) -> tuple[torch.Tensor, np.ndarray]:  # type: ignore[override]
        idx = draw_integers(rng, len(self), n)
        return self.base.images(idx), self.classes[idx]

    def index_to_factors(self, index: Any) -> np.ndarray:
        return self.classes[np.asarray(index, dtype=np.int64)]

    def images(self, indices: Any) -> torch.Tensor:
        return self.base.images(indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.base[index], torch.from_numpy(self.classes[index])

    def _render(self, factors: np.ndarray) -> torch.Tensor:
        """Images whose labels are these rows (cycling through the images that share a row)."""
        picks = []
        for row in map(tuple, factors):
            have = self._rows.get(row)
            if not have:
                raise DataError(f"{self.name} has no image labelled {dict(zip(self.factor_names, row))}; scores "
                                f"that intervene on one factor (β-VAE, FactorVAE) need a dataset that has every "
                                f"combination — use MIG, SAP, DCI or modularity here")
            k = self._next.get(row, 0)
            picks.append(have[k % len(have)])
            self._next[row] = k + 1
        return self.base.images(picks)

    def traversal(self, base: Any = None, steps: int = 8) -> tuple[torch.Tensor, list[str]]:
        raise DataError(f"{self.name} is a labelled collection, not a factor grid: it has no traversals")


def _with_labels(images: ImageDataset, factors: str | None, embedded: np.ndarray | None = None) -> ImageDataset:
    if factors is None and embedded is None:
        return images
    if factors is None:
        values = np.asarray(embedded)
        if values.ndim == 1:
            values = values[:, None]
        names = [f"factor{j}" for j in range(values.shape[1])]
        return Labelled(images, names, values)
    names, values, keys = read_labels(factors)
    if keys is not None and isinstance(images, ImageFolder):
        by_name = {k.strip(): i for i, k in enumerate(keys)}
        rel = [str(f.relative_to(images.root)) for f in images.files]
        missing = [r for r in rel if r not in by_name and Path(r).name not in by_name]
        if missing:
            raise DataError(f"labels: {factors} has no row for {missing[0]!r} ({len(missing)} images unlabelled)")
        values = values[[by_name.get(r, by_name.get(Path(r).name)) for r in rel]]
    return Labelled(images, names, values)


def image_folder(path: str | None = None, size: int = 64, crop: str | None = "center", channels: int = 3,
                 factors: str | None = None) -> ImageDataset:
    """``folder:PATH`` (labels from ``factors=CSV_OR_ATTR_FILE``)."""
    return _with_labels(ImageFolder(path, size, crop, channels), factors)


def image_array(path: str | None = None, size: int | None = None, crop: str | None = "center",
                channels: int | None = None, factors: str | None = None) -> ImageDataset:
    """``npz:PATH`` / ``npy:PATH`` (labels from the file's ``factors`` array or ``factors=CSV``)."""
    images = ArrayImages(path, size, crop, channels)
    return _with_labels(images, factors, images.labels if factors is None else None)
