"""``create_model``: a name (``arch[.tag]``, ``local-dir:PATH`` or ``hf-hub:ORG/REPO[@REV]``) → a ready model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from zoo import hf_hub, hub, registry
from zoo._util import atomic_folder, import_object
from zoo.errors import WeightsError, ZooError
from zoo.protocol import ZooModel
from zoo.ref import HUB, LOCAL, NAME, ModelRef, model_sources, parse_ref


def build_model(arch: str, model_args: Mapping[str, Any] | None = None, *, seed: int = 0) -> ZooModel:
    """Construct an architecture with randomly initialised weights (seeded; global RNG state untouched)."""
    entry = registry.models.get(arch)
    args = {**entry.spec.default_args, **(model_args or {})}
    factory = import_object(entry.spec.factory)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = factory(**args)
        except ZooError:
            raise
        except (TypeError, ValueError, RuntimeError, AttributeError, KeyError) as exc:
            # e.g. a config.json whose model_args have the wrong types: one line, not a traceback from deep inside
            raise ZooError(f"cannot build {entry.spec.arch!r} with arguments {dict(args)}: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(model, ZooModel):
        raise ZooError(f"factory of {entry.spec.arch!r} returned {type(model).__name__}, not a zoo.ZooModel")
    model.arch = entry.spec.arch
    model.zoo_name = entry.spec.arch
    model.model_args = args
    return model


def load_pretrained(folder: str | os.PathLike[str], *, source: str | None = None, device: str | torch.device = "cpu",
                    sha256: Mapping[str, str] | None = None, **overrides: Any) -> ZooModel:
    """Build the architecture named in ``folder/config.json`` and strictly load its weights."""
    folder = Path(folder)
    source = source or f"local-dir:{folder}"
    config, state_dicts = hub.read_weights(folder, sha256)
    arch = config["architecture"]
    if arch not in registry.models.entries:
        raise WeightsError(f"{source} is a {arch!r} model, but no installed plugin registers {arch!r}; "
                           f"install the plugin that provides it (see `zoo plugins`)")
    model = build_model(arch, {**config.get("model_args", {}), **overrides})
    hub.load_into(model, state_dicts, source)
    model.weights_source = source
    model.weights_config = config
    return model.to(device).eval()


def weights_folder(ref: str | ModelRef, *, cache_dir: str | os.PathLike[str] | None = None,
                   offline: bool | None = None) -> tuple[Path, str, Mapping[str, str]]:
    """Where the weights of ``ref`` live on disk: (folder, source description, expected sha256 per file).

    ``offline=None`` follows the environment (``HF_HUB_OFFLINE`` or ``ZOO_OFFLINE``); Hub waits are bounded by
    ``ZOO_HUB_TIMEOUT`` (see :mod:`zoo.hf_hub`)."""
    ref = parse_ref(ref)
    if ref.kind == LOCAL:
        return ref.path, str(ref), {}
    if ref.kind == HUB:
        return hf_hub.hub_download(ref.target, ref.revision, cache_dir=cache_dir, offline=offline), str(ref), {}
    return _registered_weights(registry.resolve_model(ref.target), cache_dir, offline)


def _registered_weights(resolved: registry.ResolvedModel, cache_dir: str | os.PathLike[str] | None,
                        offline: bool | None) -> tuple[Path, str, Mapping[str, str]]:
    w = resolved.weights
    if w is None or not w.available:
        raise WeightsError(f"{resolved.name} has no weights yet; train some with `zoo train {resolved.spec.arch}` "
                           f"or build it untrained with pretrained=False")
    if w.embedded:
        return hub.embedded_folder(w.embedded), f"embedded:{w.embedded}", w.sha256
    return (hf_hub.hub_download(w.hf_repo, w.hf_revision, cache_dir=cache_dir, offline=offline),
            f"hf-hub:{w.hf_repo}@{w.hf_revision}", w.sha256)


def create_model(name: str | ModelRef, *, pretrained: bool = True, device: str | torch.device = "cpu",
                 cache_dir: str | os.PathLike[str] | None = None, offline: bool | None = None, seed: int = 0,
                 **overrides: Any) -> ZooModel:
    """Build a model by name and load its weights, in eval mode on ``device``.

    >>> vae = zoo.create_model("vae")                    # default weights of an architecture
    >>> svae = zoo.create_model("svae")                  # aliases work
    >>> m = zoo.create_model("local-dir:runs/vae/final")
    >>> m = zoo.create_model("hf-hub:zoo-models/vae.dsprites@<40-hex sha>")
    >>> untrained = zoo.create_model("betavae", pretrained=False, latent_dim=6)
    """
    ref = parse_ref(name)
    if ref.kind not in (NAME, LOCAL, HUB):  # a plugin's outside-model source, e.g. diffusers:PATH
        if not pretrained:
            raise ZooError(f"pretrained=False needs an architecture name, not a weights source ({ref})")
        arch, loader = model_sources()[ref.kind]
        model = import_object(loader)(ref.target, device=device, cache_dir=cache_dir, offline=offline, **overrides)
        if not isinstance(model, ZooModel):
            raise ZooError(f"the {ref.kind}: source of plugin {arch!r} returned {type(model).__name__}, not a model")
        model.arch, model.zoo_name, model.ref = model.arch or arch, str(ref), ref
        return model.to(device).eval()
    if ref.kind == NAME:
        resolved = registry.resolve_model(ref.target)
        if not pretrained:
            return build_model(resolved.spec.arch, overrides, seed=seed).to(device).eval()
    elif not pretrained:
        raise ZooError(f"pretrained=False needs an architecture name, not a weights source ({ref})")
    folder, source, sha = (_registered_weights(resolved, cache_dir, offline) if ref.kind == NAME
                           else weights_folder(ref, cache_dir=cache_dir, offline=offline))
    model = load_pretrained(folder, source=source, device=device, sha256=sha, **overrides)
    if ref.kind == NAME:
        model.zoo_name = resolved.name
    elif model.weights_config and model.weights_config.get("tag"):
        model.zoo_name = f"{model.arch}.{model.weights_config['tag']}"
    model.ref = ref
    return model


def pull(name: str, *, cache_dir: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """Fill the Hub cache with the weights of ``name`` (or tell that they ship inside the package)."""
    return weights_folder(name, cache_dir=cache_dir)[:2]


def convert(fmt: str, src: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool = False,
            **options: Any) -> Path:
    """Convert foreign weights ``src`` of source format ``fmt`` (e.g. "stylegan2") into a zoo weights folder ``out``,
    with the converter an architecture plugin registered for that format (``ModelSpec.converters``).

    The converter writes into a fresh temporary folder that then replaces ``out`` atomically, under the same rules
    as every zoo write (a folder holding other files is refused unless ``overwrite``; nothing of the user's is
    deleted), whatever the plugin's converter does."""
    known = {f: (entry.spec.arch, fn) for entry in registry.models.entries.values()
             for f, fn in entry.spec.converters.items()}
    if fmt not in known:
        raise ZooError(f"no installed plugin converts {fmt!r} weights; known formats: "
                       f"{', '.join(sorted(known)) or 'none'}")
    if not Path(src).is_file():
        raise ZooError(f"{src} is not a file; pass the path of the {fmt} weights to convert")
    _, fn = known[fmt]
    with atomic_folder(out, hub.owned_files, "weights folder", overwrite=overwrite) as tmp:
        written = Path(import_object(fn)(Path(src), tmp / "converted", **options))
        for item in written.iterdir():
            item.rename(tmp / item.name)
        written.rmdir()
    return Path(out)
