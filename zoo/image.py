"""Image-space utilities: adapting images between models, and PNG grids for people to look at."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.errors import InputError
from zoo.protocol import check_image_dtype, check_image_values
from zoo.spec import ImageSpec


def adapt(x: Tensor, target: ImageSpec) -> Tensor:
    """Bring [0, 1] NCHW images to ``target``'s channels and size.

    Channels: grey → RGB repeats, RGB → grey takes the ITU-R 601 luma. Size: centre-crop to the target's aspect
    ratio, then area-downsample (or bilinear-upsample), so no model sees aliasing another model did not train on.
    The input is checked as a model checks it (float, finite, in [0, 1] up to float error), so 0…255 or −1…1 images
    fail with one line instead of being clamped into nonsense; the output is clamped to exactly [0, 1], so the float
    error of resampling never trips a model's check.
    """
    where = "zoo.image.adapt()"
    check_image_dtype(x, where)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise InputError(f"{where}: expected a batch of images (N, C, H, W) with 1 or 3 channels, got "
                         f"({', '.join(map(str, x.shape))})")
    value_range = check_image_values(x, where)  # None where values cannot be read (torch.compile, vmap)
    untouched = x.shape[1] == target.channels and tuple(x.shape[-2:]) == target.size
    x = _resample(x, target)
    # clamp away the float error of the luma weights and of resampling, and input within tolerance of [0, 1]
    exact = untouched and value_range is not None and value_range[0] >= 0 and value_range[1] <= 1
    return x if exact else x.clamp(0, 1)


def _resample(x: Tensor, target: ImageSpec) -> Tensor:
    if x.shape[1] != target.channels:
        if target.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:
            x = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    h, w = x.shape[-2:]
    th, tw = target.size
    if (h, w) == (th, tw):
        return x.contiguous()
    if h * tw != w * th:  # centre-crop to the target aspect ratio
        ch, cw = (h, h * tw // th) if w * th > h * tw else (w * th // tw, w)
        top, left = (h - ch) // 2, (w - cw) // 2
        x = x[..., top:top + ch, left:left + cw]
        h, w = ch, cw
    mode = "area" if th <= h else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x, size=(th, tw), mode=mode, **kwargs)


def make_grid(images: Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> Tensor:
    """NCHW in [0, 1] → one CHW image with ``nrow`` images per row."""
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    nrows = (n + ncol - 1) // ncol
    grid = torch.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value)
    for i, img in enumerate(images.detach().float().cpu()):
        r, col = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = img
    return grid


PNG_SOFTWARE = "latent-zoo"


def written_by_zoo(path: Path) -> bool:
    """Whether the PNG at ``path`` carries zoo's mark (so a later run may replace it)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.format == "PNG" and img.text.get("Software") == PNG_SOFTWARE
    except (OSError, UnidentifiedImageError, SyntaxError):
        return False


def save_png(img: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a PIL image as a PNG marked as zoo's, atomically; an existing file is replaced only if zoo wrote it
    (or with ``overwrite``)."""
    from PIL.PngImagePlugin import PngInfo

    from zoo._util import atomic_file

    info = PngInfo()
    info.add_text("Software", PNG_SOFTWARE)
    with atomic_file(path, overwrite=overwrite, owned=written_by_zoo) as tmp:
        img.save(tmp, format="PNG", pnginfo=info)
    return Path(path)


def _font(size: int = 12) -> Any:
    from PIL import ImageFont, features

    # Pillow's built-in font at its default 10 px squeezes some spaces to nothing; 12 px keeps them.
    return ImageFont.load_default(size=size) if features.check_module("freetype2") else ImageFont.load_default()


def to_pil(image: Tensor, scale: int = 1) -> Any:
    """A CHW (or HW) [0, 1] tensor → a PIL image, optionally upscaled by an integer factor (nearest)."""
    from PIL import Image

    img = image.detach().float().cpu().clamp(0, 1)
    if img.dim() == 3 and img.shape[0] == 1:
        img = img[0]
    if scale > 1:
        img = img.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    arr = (img * 255 + 0.5).to(torch.uint8)
    arr = arr.permute(1, 2, 0) if arr.dim() == 3 else arr
    return Image.fromarray(arr.numpy())


def label_rows(img: Any, labels: Sequence[str], row_height: int, top: int = 0) -> Any:
    """The picture with a white margin on the left naming each row (rows of ``row_height`` pixels from ``top``)."""
    from PIL import Image, ImageDraw

    font = _font()
    width = 12 + max(int(ImageDraw.Draw(img).textlength(t, font=font)) for t in labels)
    out = Image.new("RGB", (img.width + width, img.height), "white")
    out.paste(img.convert("RGB"), (width, 0))
    draw = ImageDraw.Draw(out)
    for i, text in enumerate(labels):
        draw.text((6, top + i * row_height + row_height // 2), text, fill="black", font=font, anchor="lm")
    return out


def save_image(image: Tensor, path: str | os.PathLike[str], scale: int = 1, *, overwrite: bool = False) -> Path:
    """Write a CHW (or HW) [0, 1] tensor as a PNG, optionally upscaled by an integer factor (nearest)."""
    return save_png(to_pil(image, scale), path, overwrite=overwrite)


def save_grid(images: Tensor, path: str | os.PathLike[str], nrow: int = 8, scale: int = 1, *,
              row_labels: Sequence[str] | None = None, overwrite: bool = False) -> Path:
    """A grid of ``nrow`` images per row as a PNG; ``row_labels`` names each row in a left margin."""
    padding = 2
    img = to_pil(make_grid(images, nrow=nrow, padding=padding), scale)
    if row_labels:
        h = images.shape[-2]
        img = label_rows(img, row_labels, (h + padding) * scale, top=padding * scale // 2)
    return save_png(img, path, overwrite=overwrite)


def save_rows(rows: Sequence[Tensor], path: str | os.PathLike[str], scale: int = 1, *,
              labels: Sequence[str] | None = None, overwrite: bool = False) -> Path:
    """Rows of equally many images (e.g. original / reconstruction) → one PNG, one row each, named by ``labels``.

    Rows with different channel counts or sizes are adapted to the first row's. Rows are often decoder outputs, which
    the protocol does not check: a picture shows them clamped to [0, 1], NaN as black."""
    spec = ImageSpec(channels=max(r.shape[1] for r in rows), size=tuple(rows[0].shape[-2:]))
    rows = [adapt(torch.nan_to_num(r.detach().float().cpu(), nan=0.0).clamp(0, 1), spec) for r in rows]
    return save_grid(torch.cat(rows), path, nrow=rows[0].shape[0], scale=scale, row_labels=labels,
                     overwrite=overwrite)


def save_bar_chart(labels: list[str], values: list[float], path: str | os.PathLike[str], *, vmax: float = 1.0,
                   title: str = "", overwrite: bool = False) -> Path:
    """A labelled horizontal bar chart of values in [0, vmax] as a PNG (PIL's default font; no plotting library)."""
    from PIL import Image, ImageDraw

    font = _font()
    row, left, width = 22, 12 + 7 * max((len(s) for s in labels), default=4), 300
    top = 26 if title else 6
    img = Image.new("RGB", (left + width + 70, top + row * len(labels) + 6), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((6, 6), title, fill="black", font=font)
    for i, (label, value) in enumerate(zip(labels, values)):
        y = top + i * row
        draw.text((6, y + 4), label, fill="black", font=font)
        length = int(round(width * min(max(value / vmax, 0.0), 1.0)))
        draw.rectangle([left, y + 3, left + max(length, 1), y + row - 4], fill=(51, 102, 204))
        draw.text((left + length + 6, y + 4), f"{value:.3f}", fill="black", font=font)
    return save_png(img, path, overwrite=overwrite)
