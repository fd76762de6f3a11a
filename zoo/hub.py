"""Weights folders in Hugging Face Hub layout: ``config.json`` + ``model.safetensors`` (or one
``<component>/model.safetensors`` per part). Loading is strict and never unpickles anything."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo._util import atomic_folder
from zoo.errors import WeightsError

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def embedded_folder(ref: str) -> Path:
    """``"package:relative/folder"`` → the folder shipped inside that installed package."""
    package, _, rel = ref.partition(":")
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError as exc:
        raise WeightsError(f"embedded weights {ref!r}: package {package!r} is not installed") from exc
    return Path(str(root.joinpath(rel)))


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate ``config.json`` of a weights folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError(f"weights folder {str(folder)!r} does not exist")
    path = folder / CONFIG_NAME
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{str(folder)!r} has no {CONFIG_NAME}; a zoo weights folder holds config.json "
                           f"and model.safetensors") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or "architecture" not in config:
        raise WeightsError(f"{path} names no 'architecture'; is this a zoo weights folder?")
    if config.get("zoo_format", FORMAT_VERSION) > FORMAT_VERSION:
        raise WeightsError(f"{path} uses zoo_format {config['zoo_format']}; upgrade latent-zoo to read it")
    return config


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weight_files(config: Mapping[str, Any]) -> dict[str, str]:
    """component → file inside the folder (``""`` is the whole model)."""
    return dict(config.get("files") or {"": WEIGHTS_NAME})


def load_state_dicts(folder: str | os.PathLike[str], config: Mapping[str, Any],
                     sha256: Mapping[str, str] | None = None, device: str = "cpu") -> dict[str, dict[str, Any]]:
    """Read every weights file of the folder, checking sha256 where known. Never unpickles."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    expected = {**(config.get("sha256") or {}), **(sha256 or {})}
    out = {}
    for component, rel in weight_files(config).items():
        path = folder / rel
        if not path.is_file():
            raise WeightsError(f"{str(folder)!r} is missing {rel}")
        if rel in expected and sha256_file(path) != expected[rel]:
            raise WeightsError(f"{path} does not match its recorded sha256 (tampered or truncated); "
                               f"fetch it again with `zoo pull`")
        try:
            out[component] = load_file(path, device=device)
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path} is not a readable safetensors file ({exc}); it may be truncated") from None
    return out


def load_into(model: Any, state_dicts: Mapping[str, Mapping[str, Any]], where: str) -> None:
    """Strictly load ``{component: state_dict}`` into ``model``: a missing or unexpected key is an error."""
    for component, sd in state_dicts.items():
        module = model.get_submodule(component) if component else model
        own = module.state_dict()
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing {len(missing)} key(s) e.g. {missing[0]!r}")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected key(s) e.g. {unexpected[0]!r}")
            raise WeightsError(f"weights in {where} do not fit {type(module).__name__}: {', '.join(parts)}")
        bad = [k for k in own if tuple(own[k].shape) != tuple(sd[k].shape)]
        if bad:
            k = bad[0]
            raise WeightsError(f"weights in {where} do not fit: {k!r} has shape {tuple(sd[k].shape)}, "
                               f"the model expects {tuple(own[k].shape)}")
        module.load_state_dict(sd, strict=True)
    covered = {f"{c}.{k}" if c else k for c, sd in state_dicts.items() for k in sd}
    left = sorted(set(model.state_dict()) - covered)
    if left:
        raise WeightsError(f"weights in {where} leave {len(left)} tensor(s) unset, e.g. {left[0]!r}")


def save_pretrained(model: Any, folder: str | os.PathLike[str], *, tag: str | None = None,
                    provenance: Mapping[str, Any] | None = None, card: str | None = None,
                    dataset: str | None = None) -> Path:
    """Write ``model`` as a zoo weights folder, atomically: readers see the old folder or the new one, never half.

    ``provenance`` records how the weights were made (command, data, steps, seed, wall time, final losses);
    ``card`` becomes the folder's README.md.
    """
    from safetensors.torch import save_file

    with atomic_folder(folder) as tmp:
        files, hashes = {}, {}
        parts = {c: model.get_submodule(c) for c in model.components} if model.components else {"": model}
        for component, module in parts.items():
            rel = f"{component}/{WEIGHTS_NAME}" if component else WEIGHTS_NAME
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            # contiguous clones: safetensors refuses shared or strided storage
            sd = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
            save_file(sd, tmp / rel, metadata={"format": "pt", "zoo_arch": model.arch})
            files[component] = rel
            hashes[rel] = sha256_file(tmp / rel)
        from zoo import __version__

        config = {
            "zoo_format": FORMAT_VERSION,
            "zoo_version": __version__,
            "architecture": model.arch,
            "tag": tag,
            "model_args": dict(getattr(model, "model_args", {}) or {}),
            "image": model.image_spec.to_dict(),
            "latent": model.latent_spec.to_dict(),
            "dataset": dataset or model.image_spec.dataset,
            "files": files,
            "sha256": hashes,
            "provenance": dict(provenance or {}),
            **model.extra_config(),
        }
        if model.prior_spec is not None:
            config["prior"] = model.prior_spec.to_dict()
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        if card:
            (tmp / "README.md").write_text(card)
    return Path(folder)
