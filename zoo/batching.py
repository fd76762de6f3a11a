"""The one place images and codes are pushed through a model in batches: device, batch size and no-grad handled
once, for every tool.

``encode(model, images)`` adapts images to the model (``zoo.image.adapt``), moves each batch to the model's device,
and returns the codes on the CPU (or ``out_device``); ``decode`` the same for codes → images. ``images`` may also be
a callable ``f(lo, hi) -> images`` that renders a slice on demand, so a procedural dataset never materialises all
of its images at once.

Memory: importing this module tells glibc's malloc (Linux) to keep freed memory instead of handing it back to the
operating system: ``mallopt(M_MMAP_THRESHOLD, 1 GiB)`` serves blocks below 1 GiB from the heap rather than from
fresh ``mmap`` pages, and ``mallopt(M_TRIM_THRESHOLD, 1 GiB)`` leaves up to 1 GiB of free heap unreturned. With
glibc's defaults a batch's buffers go back to the system after the batch and the next batch page-faults every 4 KiB
of them in again: 90,000–195,000 faults per 1,000 images encoded in batches of 64 or 256, up to 2.1× the time
(``benchmarks/results/batch_sizes.md``); with the two calls, a few hundred at most. The price: the process's memory
stays at its peak (plus up to 1 GiB of freed memory) until it exits. ``ZOO_NO_MALLOPT=1`` keeps glibc's defaults;
the setting is process-wide and made once, at import (:data:`MALLOPT_APPLIED` says whether it was).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import Tensor

from zoo.image import adapt
from zoo.progress import progress_bar

Source = Tensor | Callable[[int, int], Tensor]

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (<malloc.h>)
KEEP_FREED_BYTES = 1 << 30


def _keep_freed_memory() -> bool:
    """The two ``mallopt`` calls of the module docstring, on Linux with glibc unless ``ZOO_NO_MALLOPT=1``; True when
    glibc accepted both."""
    if os.environ.get("ZOO_NO_MALLOPT") == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (ValueError, OSError, AttributeError):  # not glibc (musl, ...)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_FREED_BYTES)) & bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES))


MALLOPT_APPLIED = _keep_freed_memory()  # once per process: a module body runs once

# From benchmarks/results/batch_sizes.md (the encoders of betavae.dsprites, vae.faces64 and splitvae.faces64, one
# thread): with glibc keeping freed memory, 64 is the fastest CPU batch for all three (32 takes 4–7% longer, 256
# 2–4%, 16 13–20%); without it (ZOO_NO_MALLOPT=1, other platforms) every batch of 64 or more faults its buffers in
# again and takes up to 2.1× as long, and 32 is the fastest. GPUs want large batches to fill their cores.
CPU_BATCH = 64 if MALLOPT_APPLIED else 32
CUDA_BATCH = 256
FLUSH_BYTES = 256 << 20  # outputs held on the device before they are copied out together


def default_device() -> torch.device:
    """CUDA when there is one, else the CPU (``ZOO_DEVICE`` overrides)."""
    name = os.environ.get("ZOO_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` → :func:`default_device`; a CUDA device on a machine without one is one clear error."""
    from zoo.errors import ZooError

    dev = default_device() if device is None else torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ZooError(f"--device {dev} asked for, but torch sees no CUDA device here; use --device cpu")
    return dev


def default_batch_size(device: torch.device) -> int:
    return CUDA_BATCH if device.type == "cuda" else CPU_BATCH


def _length(source: Source, n: int | None) -> int:
    if isinstance(source, Tensor):
        return len(source)
    if n is None:
        raise TypeError("a callable source needs n")
    return n


@torch.no_grad()
def map_batches(fn: Callable[[Tensor], Tensor], source: Source, *, n: int | None = None, batch_size: int | None = None,
                device: torch.device | None = None, out_device: str | torch.device = "cpu",
                label: str | None = None, prepare: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """``fn`` over ``source`` in batches on ``device``; the outputs concatenated on ``out_device``."""
    device = device or torch.device("cpu")
    batch_size = batch_size or default_batch_size(device)
    total = _length(source, n)
    out_device = torch.device(out_device)
    outs, pending, pending_bytes = [], [], 0

    def flush() -> None:
        nonlocal pending, pending_bytes
        if pending:
            outs.append(torch.cat(pending).to(out_device))
            pending, pending_bytes = [], 0

    with progress_bar(label, total) if label else nullcontext() as bar:
        for lo in range(0, total, batch_size):
            hi = min(lo + batch_size, total)
            x = source[lo:hi] if isinstance(source, Tensor) else source(lo, hi)
            x = x.to(device, non_blocking=True)
            if prepare is not None:
                x = prepare(x)
            y = fn(x)
            if y.device == out_device:
                outs.append(y)
            else:  # held on the device until FLUSH_BYTES wait: a copy to the host per batch would make the host wait
                pending.append(y)  # for the GPU every batch instead of preparing the next batch while it computes
                pending_bytes += y.numel() * y.element_size()
                if pending_bytes >= FLUSH_BYTES:
                    flush()
            if bar is not None:
                bar.advance(bar.task_ids[0], hi - lo)
        flush()
    return torch.cat(outs) if outs else torch.empty(0)


def encode(model, images: Source, *, n: int | None = None, batch_size: int | None = None,
           out_device: str | torch.device = "cpu", label: str | None = None, dist: bool = False) -> Tensor:
    """Codes of ``images`` (adapted to the model's image format), ``(N, *latent_shape)``; with ``dist`` the
    posterior mean and log-variance stacked on a new first axis ``(2, N, …)``."""
    fn = (lambda x: torch.stack(tuple(model.encode_dist(x)), dim=1)) if dist else model.encode
    out = map_batches(fn, images, n=n, batch_size=batch_size, device=model.device, out_device=out_device,
                      label=label, prepare=lambda x: adapt(x, model.image_spec))
    return out.transpose(0, 1) if dist else out


def decode(model, codes: Source, *, n: int | None = None, batch_size: int | None = None,
           out_device: str | torch.device = "cpu", label: str | None = None) -> Tensor:
    """Images decoded from ``codes``, in [0, 1]."""
    return map_batches(model.decode, codes, n=n, batch_size=batch_size, device=model.device, out_device=out_device,
                       label=label)
