"""Evaluation on many processes (``torchrun --nproc_per_node=K --no-python -- zoo ppl NAME``): every rank makes the
same draws from the seed, computes its shard of them, and the per-sample values are gathered in their original order,
so that the reduction — and the number — is the one a single process gives.

``world()`` reads the rank and the number of processes from torchrun's environment (``RANK``, ``WORLD_SIZE``);
``shard(n, block)`` is this rank's contiguous run of whole blocks of ``n`` rows; ``gather_rows(values)`` concatenates
every rank's rows in rank order (a collective: every rank must call it), starting the process group on first use —
gloo for CPU tensors, nccl for CUDA ones. Without ``WORLD_SIZE > 1`` there is one process: ``shard`` is everything,
``gather_rows`` returns its argument, and no process group is started.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoo.errors import ZooError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class World:
    """This process's place in a torchrun group: ``rank`` of ``size`` (0 of 1 when not launched by torchrun)."""

    rank: int
    size: int

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """The rank that speaks for the group: it prints and writes files, the others stay quiet."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "")
    try:
        return int(text) if text else default
    except ValueError:
        raise ZooError(f"{name}={text!r} is not a whole number; launch with torchrun or unset {name}") from None


def world() -> World:
    """Rank and size from torchrun's environment (torch-free: nothing is started)."""
    size, rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0)
    if size < 1 or not 0 <= rank < size:
        raise ZooError(f"RANK={rank} with WORLD_SIZE={size} is not a process of the group; launch with torchrun or "
                       f"unset RANK and WORLD_SIZE")
    return World(rank, size)


def is_main() -> bool:
    return world().main


def rank_device(device: torch.device) -> torch.device:
    """Under torchrun (``LOCAL_RANK`` set) a bare ``cuda`` is this rank's own GPU, ``cuda:LOCAL_RANK``, made the
    current one (nccl needs one device per rank); any other device, or any device in a single process, is returned
    as it is."""
    import torch

    if device.type != "cuda" or "LOCAL_RANK" not in os.environ:
        return device
    if device.index is None:
        device = torch.device("cuda", _env_int("LOCAL_RANK", 0))
    torch.cuda.set_device(device)
    return device


def shard(n: int, block: int = 1) -> slice:
    """This rank's rows of ``n``: a contiguous run of whole ``block``s (the last block may be short), as even as
    blocks allow; rank order is row order. A block that is a batch keeps every batch as one process decodes it."""
    w = world()
    blocks = -(-n // block)
    lo, hi = blocks * w.rank // w.size, blocks * (w.rank + 1) // w.size
    return slice(min(lo * block, n), min(hi * block, n))


def _group(device: torch.device):
    """torch.distributed with its process group started (if no one has started it): gloo on CPU, nccl on CUDA."""
    import torch.distributed as dist

    if not dist.is_initialized():
        w = world()
        if device.type == "cuda":
            rank_device(device)  # nccl talks through the current GPU, which must be this rank's own
        try:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        except (ValueError, RuntimeError) as exc:  # e.g. WORLD_SIZE exported by hand, no MASTER_ADDR
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ZooError(f"WORLD_SIZE={w.size} asks for {w.size} processes, but torch.distributed could not start "
                           f"({first}); launch with torchrun --nproc_per_node={w.size} or unset WORLD_SIZE") from None
        # A process that exits with the group alive aborts in gloo's threads ("terminate called without an active
        # exception"): the group zoo started ends with the interpreter, unless its user ended it before.
        atexit.register(lambda: dist.destroy_process_group() if dist.is_initialized() else None)
    return dist


def gather_rows(values: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """Every rank's ``values`` (rows of one trailing shape and dtype; a rank with no rows may pass any empty tensor),
    concatenated in rank order, on ``values``' device. ``device``: where the computation ran (default: where
    ``values`` are); it picks the backend when the group is started here. A collective: every rank calls it, or the
    others wait."""
    import torch

    if not world().active:
        return values
    dist = _group(device or values.device)
    shapes: list = [None] * world().size  # (rows, trailing shape, dtype) of each rank
    dist.all_gather_object(shapes, (len(values), tuple(values.shape[1:]), values.dtype))
    filled = [(tail, dtype) for rows, tail, dtype in shapes if rows]
    if not filled:
        return values
    if len(set(filled)) > 1:
        raise ValueError(f"gather_rows needs rows of one shape and dtype on every rank, got {sorted(set(filled))}")
    tail, dtype = filled[0]
    # all_gather moves tensors of one shape: pad every rank's rows to the longest. nccl moves CUDA tensors (on this
    # rank's own GPU), gloo CPU ones.
    wire = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    counts = [rows for rows, _, _ in shapes]
    padded = torch.zeros(max(counts), *tail, dtype=dtype, device=wire)
    if len(values):
        padded[:len(values)] = values
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([p[:k] for p, k in zip(parts, counts)]).to(values.device)


def map_shards(fn: Callable[[slice], torch.Tensor], n: int, *, block: int = 1,
               device: torch.device | None = None) -> torch.Tensor:
    """``fn(rows)`` for this rank's :func:`shard` of ``n`` rows (whole ``block``s: a block that is a batch keeps
    every batch as one process makes it), every rank's output rows gathered in row order — one process's result, the
    work split between the ranks. Alone: ``fn(slice(0, n))``. A collective: every rank calls it."""
    return gather_rows(fn(shard(n, block)), device=device)
