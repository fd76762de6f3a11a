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

from zoo._util import atomic_folder, pinned_folder
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


# config.json fields and the JSON types they must have (absent is fine unless required)
CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "architecture": (str,), "tag": (str, type(None)), "model_args": (dict,), "image": (dict,), "latent": (dict,),
    "prior": (dict, type(None)), "dataset": (str, type(None)), "files": (dict,), "sha256": (dict,),
    "provenance": (dict,), "zoo_format": (int,),
}
MAX_CONFIG_BYTES = 1 << 20


def safe_relpath(rel: Any, where: str) -> str:
    """A file named by a config must stay inside its folder: relative, no ``..``, no backslash."""
    parts = rel.split("/") if isinstance(rel, str) else None
    if not parts or rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in parts):
        raise WeightsError(f"{where} names the file {rel!r}, which is not a plain relative path inside the folder; "
                           f"the folder is damaged or hostile")
    return rel


def _check_config(config: Any, path: Path) -> dict[str, Any]:
    if not isinstance(config, dict) or "architecture" not in config:
        raise WeightsError(f"{path} names no 'architecture'; is this a zoo weights folder?")
    for key, types in CONFIG_TYPES.items():
        if key in config and not isinstance(config[key], types) or (key == "zoo_format" and
                                                                     isinstance(config.get(key), bool)):
            want = " or ".join("null" if t is type(None) else {"str": "a string", "dict": "an object",
                                                              "int": "an integer"}[t.__name__] for t in types)
            raise WeightsError(f"{path}: {key!r} must be {want}, not {json.dumps(config[key])[:40]}")
    if config.get("zoo_format", FORMAT_VERSION) > FORMAT_VERSION:
        raise WeightsError(f"{path} uses zoo_format {config['zoo_format']}; upgrade latent-zoo to read it")
    for component, rel in (config.get("files") or {}).items():
        if not isinstance(component, str) or not isinstance(rel, str):
            raise WeightsError(f"{path}: 'files' must map component names to file names")
        safe_relpath(rel, str(path))
    if not all(isinstance(v, str) for v in (config.get("sha256") or {}).values()):
        raise WeightsError(f"{path}: 'sha256' must map file names to hex digests")
    return config


def read_config(folder: str | os.PathLike[str], *, shown: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Read and validate ``config.json`` of a weights folder (``shown``: the path to name in errors)."""
    folder = Path(folder)
    shown = Path(shown or folder)
    if not folder.is_dir():
        raise WeightsError(f"weights folder {str(shown)!r} does not exist")
    path = folder / CONFIG_NAME
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise WeightsError(f"{shown / CONFIG_NAME} is larger than {MAX_CONFIG_BYTES >> 20} MB; not a zoo config")
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{str(shown)!r} has no {CONFIG_NAME}; a zoo weights folder holds config.json "
                           f"and model.safetensors") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise WeightsError(f"{shown / CONFIG_NAME} is not valid JSON ({exc})") from None
    except OSError as exc:
        raise WeightsError(f"cannot read {shown / CONFIG_NAME}: {exc.strerror or exc}") from None
    return _check_config(config, shown / CONFIG_NAME)


def owned_files(folder: Path) -> set[str] | None:
    """The files a zoo weights folder holds (config.json, its weight files, the model card, and the pictures of a
    card `zoo ship` wrote); None if ``folder`` is not a weights folder."""
    try:
        config = read_config(folder)
    except WeightsError:
        return None
    card = config.get("card")
    listed = card.get("files") if isinstance(card, dict) else None
    pictures: set[str] = set()
    if isinstance(listed, list):
        from zoo.image import written_by_zoo  # imported only for a card: zoo.image loads torch

        # only plain PNG names in the folder that carry zoo's mark: a config cannot claim a user's file, nor one
        # outside the folder
        pictures = {name for name in listed if isinstance(name, str) and name.endswith(".png") and "/" not in name
                    and "\\" not in name and not name.startswith(".") and written_by_zoo(folder / name)}
    return {CONFIG_NAME, "README.md", *weight_files(config).values(), *pictures}


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
                     sha256: Mapping[str, str] | None = None, device: str = "cpu", *,
                     shown: str | os.PathLike[str] | None = None) -> dict[str, dict[str, Any]]:
    """Read every weights file of the folder, checking sha256 where known. Never unpickles."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    shown = Path(shown or folder)
    expected = {**(config.get("sha256") or {}), **(sha256 or {})}
    out = {}
    for component, rel in weight_files(config).items():
        path = folder / safe_relpath(rel, str(shown / CONFIG_NAME))
        try:
            if rel in expected and sha256_file(path) != expected[rel]:
                raise WeightsError(f"{shown / rel} does not match its recorded sha256 (tampered or truncated); "
                                   f"fetch it again with `zoo pull`")
            out[component] = load_file(path, device=device)
        except FileNotFoundError:
            raise WeightsError(f"{str(shown)!r} is missing {rel}") from None
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise WeightsError(f"{shown / rel} is not a readable safetensors file ({exc}); it may be truncated"
                               ) from None
    return out


def read_weights(folder: str | os.PathLike[str], sha256: Mapping[str, str] | None = None, device: str = "cpu"
                 ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``config.json`` and every state dict of a weights folder, all from one version of it: a writer may swap the
    folder while we read (a training run saving, a second `zoo convert`), so the folder is pinned while read and
    read again if it was replaced meanwhile."""
    for _ in range(RETRIES):
        with pinned_folder(folder) as (root, replaced):
            try:
                config = read_config(root, shown=folder)
                return config, load_state_dicts(root, config, sha256, device, shown=folder)
            except WeightsError:
                if not replaced():
                    raise
    raise WeightsError(f"{folder} kept changing while it was read ({RETRIES} tries); is a writer rewriting it in "
                       f"a loop?")


RETRIES = 50


def load_into(model: Any, state_dicts: Mapping[str, Mapping[str, Any]], where: str) -> None:
    """Strictly load ``{component: state_dict}`` into ``model``: a missing or unexpected key, a shape that does not
    fit or a non-finite parameter is an error."""
    import torch

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
        # parameters must be finite; a buffer may hold ±inf on purpose (e.g. a running minimum not started yet)
        params = {n for n, _ in module.named_parameters()}
        for k, t in sd.items():
            if t.is_floating_point() and not bool((torch.isfinite(t) if k in params else ~torch.isnan(t)).all()):
                raise WeightsError(f"weights in {where} hold NaN or infinite values in {k!r}; they come from a "
                                   f"diverged or damaged run and cannot be used")
        module.load_state_dict(sd, strict=True)
    covered = {f"{c}.{k}" if c else k for c, sd in state_dicts.items() for k in sd}
    left = sorted(set(model.state_dict()) - covered)
    if left:
        raise WeightsError(f"weights in {where} leave {len(left)} tensor(s) unset, e.g. {left[0]!r}")


def save_pretrained(model: Any, folder: str | os.PathLike[str], *, tag: str | None = None,
                    provenance: Mapping[str, Any] | None = None, card: str | None = None,
                    dataset: str | None = None, overwrite: bool = False) -> Path:
    """Write ``model`` as a zoo weights folder, atomically: readers see the old folder or the new one, never half.

    An existing weights folder is replaced; a folder holding anything else is refused unless ``overwrite`` (and even
    then only zoo's files are replaced: see :func:`zoo._util.atomic_folder`).

    ``provenance`` records how the weights were made (command, data, steps, seed, wall time, final losses);
    ``card`` becomes the folder's README.md.
    """
    from safetensors.torch import save_file

    with atomic_folder(folder, owned_files, "weights folder", overwrite=overwrite) as tmp:
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
