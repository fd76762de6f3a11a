"""The zoo side of a diffusers ``AutoencoderKL``.

Images cross the zoo boundary in [0, 1] and reach the VAE in [-1, 1]. The latent is kept spatial,
``(latent_channels, H/f, W/f)`` with f = 2^(blocks − 1), and multiplied by the model's ``scaling_factor`` (as diffusion
pipelines do), so that the prior N(0, I) is roughly right and ``sample`` means decoding standard normal codes.
Only safetensors weights are read (``use_safetensors=True``); nothing is unpickled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import zoo
from zoo.errors import WeightsError, ZooError

WEIGHTS = "diffusion_pytorch_model.safetensors"


def _diffusers() -> Any:
    try:
        import diffusers
    except ImportError:
        raise ZooError('diffusers: models need the diffusers package; pip install "latent-zoo[diffusers]"') from None
    return diffusers


class DiffusersVAE(zoo.ZooModel):
    """``config``: the AutoencoderKL's diffusers config (what its ``config.json`` holds)."""

    def __init__(self, config: dict[str, Any] | None = None, dataset: str | None = None, vae: Any = None):
        super().__init__()
        self.vae = vae if vae is not None else _diffusers().AutoencoderKL.from_config(dict(config or {}))
        cfg = self.vae.config
        side = int(cfg.sample_size if not isinstance(cfg.sample_size, (list, tuple)) else cfg.sample_size[0])
        down = 2 ** (len(cfg.block_out_channels) - 1)
        self.image_spec = zoo.ImageSpec(int(cfg.in_channels), (side, side), dataset=dataset, native_range=(-1.0, 1.0))
        self.latent_spec = zoo.LatentSpec((int(cfg.latent_channels), side // down, side // down))
        self.scale = float(cfg.scaling_factor)
        self.model_args = {"config": {k: v for k, v in dict(cfg).items() if not k.startswith("_")}}

    def encode_dist(self, x: Tensor) -> zoo.LatentDist:
        posterior = self.vae.encode(x * 2 - 1).latent_dist
        return zoo.LatentDist(posterior.mean * self.scale, posterior.logvar + 2 * math.log(self.scale))

    def decode(self, z: Tensor) -> Tensor:
        return ((self.vae.decode(z / self.scale).sample + 1) / 2).clamp(0, 1)


def _vae_folder(folder: Path, where: str) -> Path:
    """The AutoencoderKL folder: ``folder`` itself, or its ``vae/`` (a whole pipeline)."""
    for candidate in (folder, folder / "vae"):
        config = candidate / "config.json"
        if config.is_file():
            try:
                name = json.loads(config.read_text()).get("_class_name")
            except (OSError, ValueError):
                raise WeightsError(f"{where}: {config} is not valid JSON") from None
            if name == "AutoencoderKL":
                if not (candidate / WEIGHTS).is_file():
                    raise WeightsError(f"{where}: {candidate} has no {WEIGHTS}; zoo reads safetensors only (convert "
                                       f".bin weights with diffusers' save_pretrained(safe_serialization=True))")
                return candidate
    raise WeightsError(f"{where} holds no diffusers AutoencoderKL (config.json with _class_name AutoencoderKL, here "
                       f"or in vae/)")


def load(target: str, *, device: str | torch.device = "cpu", cache_dir: Any = None, offline: bool | None = None,
         dataset: str | None = None) -> DiffusersVAE:
    """``diffusers:PATH`` (a local folder) or ``diffusers:ORG/REPO[@REV]`` (the Hub, bounded waits, cache first)."""
    where = f"diffusers:{target}"
    folder = Path(target).expanduser()
    if not folder.is_dir():
        if folder.is_absolute() or target.startswith("."):
            raise WeightsError(f"{where}: {folder} is not a folder")
        from zoo.hf_hub import hub_download, parse_hf_ref

        repo, revision = parse_hf_ref(target)
        folder = hub_download(repo, revision, cache_dir=cache_dir, offline=offline)
    vae_dir = _vae_folder(folder, where)
    diffusers = _diffusers()
    try:
        vae = diffusers.AutoencoderKL.from_pretrained(vae_dir, use_safetensors=True, local_files_only=True,
                                                      low_cpu_mem_usage=False)  # no hint about accelerate
    except (OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{where}: diffusers could not load {vae_dir} ({str(exc).splitlines()[0]})") from None
    bad = [k for k, v in vae.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsError(f"{where}: weights hold NaN or infinite values in {bad[0]!r}")
    model = DiffusersVAE(dataset=dataset, vae=vae.float())
    model.weights_source = where
    return model.to(device).eval()
