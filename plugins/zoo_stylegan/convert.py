"""Official StyleGAN2 weights → zoo weights, without running code from the pickle.

An NVlabs stylegan2-ada-pytorch network pickle (``network-snapshot-*.pkl``, ``ffhq.pkl``) is a dict with ``G``,
``D``, ``G_ema`` (and training metadata); each network is a ``persistent_class`` object whose pickle carries the
source of NVlabs' ``networks.py``. :mod:`zoo.safe_pickle` reads the tensors only. Our generator uses NVlabs'
parameter names (``mapping.fc0.weight``, ``synthesis.b8.conv0.affine.weight``, ``…noise_const``, ``w_avg``), so the
state dict loads key for key; the constructor arguments (z/w size, mapping depth, resolution, channels, feature maps
per resolution, activation clamp) are read off the tensors' shapes and the modules' attributes. Official pickles carry
no W recoder, so converted models have no ``encode`` (invert with :func:`zoo.invert.refine_codes`).
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import torch

import zoo
from zoo import safe_pickle
from zoo.errors import WeightsError

from zoo_stylegan.model import channel_widths

NETWORKS = ("G_ema", "G")


def _attr(state: dict, path: str, name: str, default: Any = None) -> Any:
    """Attribute ``name`` of the sub-module at dotted ``path`` of a pickled module state."""
    for part in filter(None, path.split(".")):
        state = (state.get("_modules") or {}).get(part) or {}
    return state.get(name, default)


def generator_args(sd: dict[str, torch.Tensor], state: dict, where: str) -> dict[str, Any]:
    """StyleGAN constructor arguments that reproduce the NVlabs generator whose state dict is ``sd``."""
    if "mapping.embed.weight" in sd or _attr(state, "", "c_dim", 0):
        raise WeightsError(f"{where} is a class-conditional StyleGAN2 (c_dim > 0); zoo's stylegan is unconditional")
    fcs = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"mapping\.fc(\d+)\.weight", k)))
    blocks = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", k)))
    if not fcs or not blocks or blocks[0] != 4:
        raise WeightsError(f"{where} does not hold an NVlabs StyleGAN2 generator (no mapping.fc*/synthesis.b4 tensors)")
    lr_mul = _attr(state, "mapping.fc0", "bias_gain", 0.01)  # NVlabs stores the lr multiplier as bias_gain
    if not math.isclose(float(lr_mul), 0.01):
        raise WeightsError(f"{where}: mapping lr multiplier {lr_mul} is not StyleGAN2's 0.01, which zoo's stylegan "
                           f"assumes")
    resolution = blocks[-1]
    for r in blocks:
        arch = _attr(state, f"synthesis.b{r}", "architecture", "skip")
        if arch != "skip":
            raise WeightsError(f"{where}: synthesis block b{r} uses the {arch!r} architecture; only 'skip' (the "
                               f"StyleGAN2 generator default) is supported")
    widths = {r: int(sd[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in blocks}
    channel_max = widths[4]
    channel_base = widths[resolution] * resolution
    if channel_widths(resolution, channel_base, channel_max) != widths:
        raise WeightsError(f"{where}: feature maps per resolution {widths} do not follow min(base / r, max)")
    clamp = _attr(state, "synthesis.b4.conv1", "conv_clamp", None)
    return {"z_dim": int(sd["mapping.fc0.weight"].shape[1]), "w_dim": int(sd["mapping.fc0.weight"].shape[0]),
            "resolution": resolution, "channels": int(sd["synthesis.b4.torgb.weight"].shape[0]),
            "map_layers": len(fcs), "channel_base": channel_base, "channel_max": channel_max,
            "conv_clamp": None if clamp is None else float(clamp), "up_conv": "nvlabs", "recoder_width": 0,
            "discriminator": False,
            "dataset": None}


def convert_nvlabs_pickle(src: Path, out: Path, *, network: str = "G_ema", tag: str | None = None) -> Path:
    """Convert network ``network`` of the NVlabs pickle ``src`` into a zoo weights folder ``out``."""
    if network not in NETWORKS:
        raise WeightsError(f"--network must be one of {', '.join(NETWORKS)}, got {network!r}")
    data = safe_pickle.load(src)
    if not isinstance(data, dict) or not isinstance(data.get(network), dict):
        raise WeightsError(f"{src} has no {network!r} network; is it an NVlabs stylegan2-ada-pytorch pickle?")
    state = data[network]
    sd = safe_pickle.module_state_dict(state)
    args = generator_args(sd, state, str(src))
    model = zoo.build_model("stylegan", args)
    own = model.generator.state_dict()
    unexpected, missing = sorted(set(sd) - set(own)), sorted(set(own) - set(sd))
    if unexpected or missing:
        raise WeightsError(f"{src}: generator tensors do not match zoo's stylegan "
                           f"({len(missing)} missing, e.g. {missing[:1]}; {len(unexpected)} unexpected, e.g. "
                           f"{unexpected[:1]})")
    model.generator.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()
    card = (f"# stylegan.{tag or Path(src).stem}\n\nConverted by `zoo convert stylegan2 {Path(src).name} OUT` from "
            f"the `{network}` network of an NVlabs stylegan2-ada-pytorch pickle (sha256 `{digest}`), reading tensors "
            f"only. No W recoder: this model decodes and samples but does not encode.\n")
    return zoo.save_pretrained(model, out, tag=tag or Path(src).stem, card=card,
                               provenance={"converted_from": Path(src).name, "source_sha256": digest,
                                           "format": "NVlabs stylegan2-ada-pytorch pickle", "network": network})
