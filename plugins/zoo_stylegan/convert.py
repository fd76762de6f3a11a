"""Official StyleGAN2 weights → zoo weights, without running code from the pickle.

An NVlabs stylegan2-ada-pytorch network pickle (``network-snapshot-*.pkl``, ``ffhq.pkl``) is a dict with ``G``,
``D``, ``G_ema`` (and training metadata); each network is a ``persistent_class`` object whose pickle carries the
source of NVlabs' ``networks.py``. :mod:`zoo.safe_pickle` reads the tensors only. Our generator uses NVlabs'
parameter names (``mapping.fc0.weight``, ``synthesis.b8.conv0.affine.weight``, ``…noise_const``, ``w_avg``), so the
state dict loads key for key; the constructor arguments (z/w size, mapping depth, resolution, channels, feature maps
per resolution, activation clamp) are read off the tensors' shapes and the modules' attributes. Official pickles carry
no W recoder, so converted models have no ``encode`` (invert with :func:`zoo.invert.refine_codes`).

A hostile pickle is refused in one line before anything large is built. :mod:`zoo.safe_pickle` bounds the reading
(file size, opcodes, storages, nesting; the state dict's tensors may not hold more bytes than the file). Then the
constructor arguments read off the tensors must be in range — the resolution a power of two from 4 to
``MAX_RESOLUTION`` (2048), every synthesis block b4 … b<resolution> present, at most ``MAX_MAP_LAYERS`` (32) mapping
layers — and every tensor's name and shape must be the model's, which is built for the comparison on the ``meta``
device (no memory). Only then is the real model built, whose size is now bounded by the file's.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

import zoo
from zoo import safe_pickle
from zoo.errors import WeightsError
from zoo.hub import sha256_file
from zoo.safe_pickle import shorten
from zoo_stylegan.model import channel_widths

NETWORKS = ("G_ema", "G")
MAX_RESOLUTION = 2048
MAX_MAP_LAYERS = 32


def _attr(state: dict, path: str, name: str, default: Any = None) -> Any:
    """Attribute ``name`` of the sub-module at dotted ``path`` of a pickled module state (``default`` if absent)."""
    for part in filter(None, path.split(".")):
        modules = state.get("_modules") if isinstance(state, dict) else None
        state = modules.get(part) if isinstance(modules, dict) else None
    return state.get(name, default) if isinstance(state, dict) else default


def _number(value: Any, what: str, where: str) -> float:
    """A module attribute that must be a plain number (NVlabs stores Python or numpy scalars)."""
    if isinstance(value, (bool, int, float, np.number)) or (isinstance(value, torch.Tensor) and value.numel() == 1):
        return float(value)
    raise WeightsError(f"{where}: {what} is a {type(value).__name__}, not a number")


def generator_args(sd: dict[str, torch.Tensor], state: dict, where: str) -> dict[str, Any]:
    """StyleGAN constructor arguments that reproduce the NVlabs generator whose state dict is ``sd``, checked against
    the module's limits (the shapes of the other tensors are checked against the model by the caller)."""
    if "mapping.embed.weight" in sd or _number(_attr(state, "", "c_dim", 0), "c_dim", where):
        raise WeightsError(f"{where} is a class-conditional StyleGAN2 (c_dim > 0); zoo's stylegan is unconditional")
    fcs = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"mapping\.fc(\d{1,6})\.weight", k)))
    blocks = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"synthesis\.b(\d{1,6})\.conv1\.weight", k)))
    if not fcs or not blocks or blocks[0] != 4:
        raise WeightsError(f"{where} does not hold an NVlabs StyleGAN2 generator (no mapping.fc*/synthesis.b4 tensors)")
    resolution = blocks[-1]
    if resolution > MAX_RESOLUTION or resolution & (resolution - 1):
        raise WeightsError(f"{where}: resolution {resolution} (its last synthesis block) is not a power of two from 4 "
                           f"to {MAX_RESOLUTION} (zoo_stylegan.convert.MAX_RESOLUTION)")
    if blocks != [2**i for i in range(2, resolution.bit_length())]:
        raise WeightsError(f"{where}: synthesis blocks {shorten(blocks)} are not b4, b8, … b{resolution}, one "
                           f"each")
    if fcs != list(range(len(fcs))) or len(fcs) > MAX_MAP_LAYERS:
        raise WeightsError(f"{where}: mapping layers {shorten(fcs)} are not fc0 … fc<n-1> with at most "
                           f"{MAX_MAP_LAYERS} layers (zoo_stylegan.convert.MAX_MAP_LAYERS)")
    ranks = {"mapping.fc0.weight": 2, "synthesis.b4.torgb.weight": 4,
             **{f"synthesis.b{r}.conv1.weight": 4 for r in blocks}}
    for key, rank in ranks.items():
        if key not in sd or sd[key].dim() != rank or 0 in sd[key].shape:
            raise WeightsError(f"{where}: {key} is missing, or not a non-empty {rank}-d tensor")
    lr_mul = _number(_attr(state, "mapping.fc0", "bias_gain", 0.01), "mapping.fc0.bias_gain", where)
    if not math.isclose(lr_mul, 0.01):  # NVlabs stores the lr multiplier as bias_gain
        raise WeightsError(f"{where}: mapping lr multiplier {lr_mul} is not StyleGAN2's 0.01, which zoo's stylegan "
                           f"assumes")
    for r in blocks:
        arch = _attr(state, f"synthesis.b{r}", "architecture", "skip")
        if not (isinstance(arch, str) and arch == "skip"):
            raise WeightsError(f"{where}: synthesis block b{r} uses the {shorten(arch)} architecture; only 'skip' "
                               f"(the StyleGAN2 generator default) is supported")
    widths = {r: int(sd[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in blocks}
    channel_max = widths[4]
    channel_base = widths[resolution] * resolution
    if channel_widths(resolution, channel_base, channel_max) != widths:
        raise WeightsError(f"{where}: feature maps per resolution {widths} do not follow min(base / r, max)")
    clamp = _attr(state, "synthesis.b4.conv1", "conv_clamp", None)
    return {"z_dim": int(sd["mapping.fc0.weight"].shape[1]), "w_dim": int(sd["mapping.fc0.weight"].shape[0]),
            "resolution": resolution, "channels": int(sd["synthesis.b4.torgb.weight"].shape[0]),
            "map_layers": len(fcs), "channel_base": channel_base, "channel_max": channel_max,
            "conv_clamp": None if clamp is None else _number(clamp, "conv_clamp", where), "up_conv": "nvlabs",
            "recoder_width": 0, "discriminator": False, "dataset": None}


def check_shapes(sd: dict[str, torch.Tensor], args: dict[str, Any], where: str) -> None:
    """The state dict holds exactly the floating-point tensors, of exactly the shapes, of the generator ``args``
    describe — compared with that generator built on the meta device, which allocates nothing."""
    with torch.device("meta"):
        own = {k: v.shape for k, v in zoo.build_model("stylegan", args).generator.state_dict().items()}
    unexpected, missing = sorted(set(sd) - set(own)), sorted(set(own) - set(sd))
    if unexpected or missing:
        raise WeightsError(f"{where}: generator tensors do not match zoo's stylegan ({len(missing)} missing, e.g. "
                           f"{shorten(missing[:1])}; {len(unexpected)} unexpected, e.g. {shorten(unexpected[:1])})")
    for key, shape in own.items():
        if sd[key].shape != shape or not sd[key].is_floating_point():
            raise WeightsError(f"{where}: {key} is a {sd[key].dtype} tensor of shape {tuple(sd[key].shape)}; the "
                               f"generator its other tensors describe needs float of shape {tuple(shape)}")


def convert_nvlabs_pickle(src: Path, out: Path, *, network: str = "G_ema", tag: str | None = None) -> Path:
    """Convert network ``network`` of the NVlabs pickle ``src`` into a zoo weights folder ``out``."""
    if network not in NETWORKS:
        raise WeightsError(f"--network must be one of {', '.join(NETWORKS)}, got {network!r}")
    data = safe_pickle.load(src)
    if not isinstance(data, dict) or not isinstance(data.get(network), dict):
        raise WeightsError(f"{src} has no {network!r} network; is it an NVlabs stylegan2-ada-pytorch pickle?")
    state = data[network]
    try:
        sd = safe_pickle.module_state_dict(state, max_bytes=Path(src).stat().st_size)
    except WeightsError as exc:
        raise WeightsError(f"{src}: {exc}") from None
    args = generator_args(sd, state, str(src))
    check_shapes(sd, args, str(src))
    model = zoo.build_model("stylegan", args)  # bounded now: every tensor it allocates is one the file holds
    model.generator.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    digest = sha256_file(src)
    card = (f"# stylegan.{tag or Path(src).stem}\n\nConverted by `zoo convert stylegan2 {Path(src).name} OUT` from "
            f"the `{network}` network of an NVlabs stylegan2-ada-pytorch pickle (sha256 `{digest}`), reading tensors "
            f"only. No W recoder: this model decodes and samples but does not encode.\n")
    return zoo.save_pretrained(model, out, tag=tag or Path(src).stem, card=card,
                               provenance={"converted_from": Path(src).name, "source_sha256": digest,
                                           "format": "NVlabs stylegan2-ada-pytorch pickle", "network": network})
