"""A model reference, parsed once: ``arch[.tag]`` or an alias, ``local-dir:PATH``, ``hf-hub:ORG/REPO[@REVISION]``,
or a prefix a plugin registers to load outside models in place (``diffusers:PATH_OR_REPO``).

Every entry point (``create_model``, the CLI, ``zoo.run``) parses the text it is given into a :class:`ModelRef` and
hands that object on; nothing downstream looks at the string again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zoo.errors import UnknownName

LOCAL, HUB, NAME = "local-dir", "hf-hub", "name"


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from. ``kind`` is "name" (the registry), "local-dir", "hf-hub" or a plugin's source
    prefix; ``target`` is the registry name as typed, the folder, ``ORG/REPO``, or what the source reads; ``revision``
    only for the Hub."""

    kind: str
    target: str
    revision: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.target).expanduser()

    def __str__(self) -> str:
        if self.kind == NAME:
            return self.target
        return f"{self.kind}:{self.target}" + (f"@{self.revision}" if self.revision else "")


def parse_ref(ref: str | ModelRef) -> ModelRef:
    """``"svae"`` → a registry name; ``"local-dir:runs/x/weights"``; ``"hf-hub:org/repo@<sha>"`` (the revision is
    validated here: no ``..``, no absolute paths). A bare path is refused with the prefix to use."""
    if isinstance(ref, ModelRef):
        return ref
    if ref.startswith(f"{LOCAL}:"):
        folder = ref[len(LOCAL) + 1:]
        if not folder:
            raise UnknownName("local-dir: needs a folder, e.g. local-dir:runs/vae/weights")
        return ModelRef(LOCAL, folder)
    if ref.startswith(f"{HUB}:"):
        from zoo.hf_hub import parse_hf_ref

        repo, revision = parse_hf_ref(ref[len(HUB) + 1:])
        return ModelRef(HUB, repo, revision)
    prefix, sep, target = ref.partition(":")
    if sep:
        sources = model_sources()
        if prefix in sources:
            if not target:
                raise UnknownName(f"{prefix}: needs a folder or Hub repo after the colon, e.g. {prefix}:PATH")
            return ModelRef(prefix, target)
        known = ", ".join(f"{p}:" for p in ("local-dir", "hf-hub", *sorted(sources)))
        raise UnknownName(f"unknown model source {prefix + ':'!r} in {ref!r}; known: {known}")
    if any(c in ref for c in "/\\") or not ref:
        raise UnknownName(f"model name {ref!r} looks like a path; use local-dir:PATH or hf-hub:ORG/REPO[@REV]")
    return ModelRef(NAME, ref)


def model_sources() -> dict[str, tuple[str, object]]:
    """Name prefixes plugins load outside models from (``diffusers:``) → (architecture, loader)."""
    from zoo import registry

    return {prefix: (entry.spec.arch, loader) for entry in registry.models.entries.values()
            for prefix, loader in entry.spec.sources.items()}
