"""A kit for plugin authors: a conformance test mixin and an offline Hub cache builder.

Subclass :class:`EncoderDecoderConformance` in your plugin's tests (the diffusers tester-mixin pattern)::

    class TestMyVAE(EncoderDecoderConformance):
        arch = "myvae"
        tiny_args = {"latent_dim": 4, "image_size": 16}

and pytest collects a dozen protocol checks: shapes, the [0, 1] range, determinism, ``encode(decode(z))`` shape,
save → load round trips (local folder and an offline Hub cache pinned to a revision), registry names, attribute names
that would hide the protocol's, training (by optimisers, or in closed form). A check whose capability the model lacks
(no encoder, no decoder, no training step) is skipped with the reason, not passed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

import zoo
from zoo import registry
from zoo.protocol import PROTOCOL_NAMES

FAKE_REVISION = "0123456789abcdef0123456789abcdef01234567"


def fake_hub(cache_dir: str | os.PathLike[str], repo_id: str, files: Mapping[str, bytes | str | os.PathLike[str]],
             revision: str = FAKE_REVISION, ref: str = "main") -> Path:
    """Write a Hugging Face Hub cache entry for ``repo_id`` at ``revision`` as huggingface_hub lays it out
    (``models--org--name/refs/<ref>`` + ``snapshots/<revision>/...``) and return the snapshot folder.

    ``files`` maps a path inside the repo to bytes, text, or a file on disk to copy."""
    base = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    (base / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)  # refs/pr/1 nests
    (base / "refs" / ref).write_text(revision)  # no trailing newline: the hub reads it verbatim
    snapshot = base / "snapshots" / revision
    for rel, content in files.items():
        dest = snapshot / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            dest.write_bytes(content)
        elif isinstance(content, str):
            dest.write_text(content)
        else:
            shutil.copyfile(content, dest)
    return snapshot


def fake_hub_from_folder(cache_dir: str | os.PathLike[str], repo_id: str, folder: str | os.PathLike[str],
                         revision: str = FAKE_REVISION) -> Path:
    """Put a zoo weights folder into a fake Hub cache, as if ``zoo pull`` had downloaded it."""
    folder = Path(folder)
    files = {str(p.relative_to(folder)): p for p in folder.rglob("*") if p.is_file()}
    return fake_hub(cache_dir, repo_id, files, revision=revision)


def _skip(reason: str) -> None:
    import pytest  # imported here: fake_hub and make_fake_dist work without pytest

    pytest.skip(reason)


def _fail(message: str) -> None:
    import pytest

    pytest.fail(message, pytrace=False)


class EncoderDecoderConformance:
    """Protocol checks every zoo architecture must pass. Set ``arch`` and ``tiny_args`` (a small configuration);
    ``train_batch_size`` is the batch of the training-step check (a closed-form fit may need more rows than codes)."""

    arch: ClassVar[str]
    tiny_args: ClassVar[dict[str, Any]] = {}
    batch_size: ClassVar[int] = 3
    train_batch_size: ClassVar[int] = 4
    atol: ClassVar[float] = 1e-5

    # --- helpers ------------------------------------------------------------------------------------
    def make_model(self, seed: int = 0) -> zoo.ZooModel:
        try:  # e.g. a buffer named like a ZooModel attribute is refused while the model is built: one line
            return zoo.build_model(self.arch, self.tiny_args, seed=seed).eval()
        except zoo.ZooError as exc:
            _fail(str(exc))

    def latents(self, model: zoo.ZooModel, n: int | None = None, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return model.sample_latent(n or self.batch_size, generator=g)

    def images(self, model: zoo.ZooModel, n: int | None = None, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        c, (h, w) = model.image_spec.channels, model.image_spec.size
        return torch.rand(n or self.batch_size, c, h, w, generator=g)

    # --- registry -----------------------------------------------------------------------------------
    def test_registered(self) -> None:
        entry = registry.models.get(self.arch)
        assert entry.spec.arch == self.arch
        for alias in entry.spec.aliases:
            assert registry.resolve_model(alias).spec.arch == self.arch
        assert self.arch in {n.split(".")[0] for n in zoo.list_models()}

    def test_specs(self) -> None:
        model = self.make_model()
        assert isinstance(model.image_spec, zoo.ImageSpec) and isinstance(model.latent_spec, zoo.LatentSpec)
        assert model.arch == self.arch
        assert not model.training, "models are handed out in eval mode"
        assert "decode" in model.capabilities() or "encode" in model.capabilities()

    def test_names_leave_the_protocol_alone(self) -> None:
        model = self.make_model()
        own = {**{n: "parameter" for n, _ in model.named_parameters(recurse=False)},
               **{n: "buffer" for n, _ in model.named_buffers(recurse=False)},
               **{n: "sub-module" for n, _ in model.named_children()}}
        clashes = sorted(set(own) & PROTOCOL_NAMES)  # the protocol refuses these when set; a plugin may bypass it
        assert not clashes, f"{self.arch}: the {own[clashes[0]]} {clashes[0]!r} is named like zoo.ZooModel.{clashes[0]}"
        parts = model.components
        assert isinstance(parts, tuple) and all(isinstance(c, str) for c in parts), \
            f"{self.arch}: components must be a tuple of sub-module names (saved apart), got {type(parts).__name__}"
        missing = [c for c in parts if not isinstance(getattr(model, c, None), torch.nn.Module)]
        assert not missing, f"{self.arch}: components names {missing[0]!r}, which is not a sub-module of the model"

    # --- decode / encode ----------------------------------------------------------------------------
    def test_decode_shape_and_range(self) -> None:
        model = self.make_model()
        if not model.has("decode"):
            _skip(f"{self.arch} has no decoder")
        with torch.inference_mode():
            x = model.decode(self.latents(model))
        c, (h, w) = model.image_spec.channels, model.image_spec.size
        assert x.shape == (self.batch_size, c, h, w) and x.dtype == torch.float32
        assert x.min() >= 0.0 and x.max() <= 1.0, "decode must return images in [0, 1]"

    def test_encode_shape(self) -> None:
        model = self.make_model()
        if not model.has("encode"):
            _skip(f"{self.arch} has no encoder")
        with torch.inference_mode():
            z = model.encode(self.images(model))
            assert z.shape == (self.batch_size, *model.latent_spec.shape) and z.dtype == torch.float32
            if model.has("encode_dist"):
                dist = model.encode_dist(self.images(model))
                assert dist.mean.shape == dist.logvar.shape == z.shape
                torch.testing.assert_close(dist.mean, z)
            if model.has("decode"):
                z0 = self.latents(model)
                assert model.encode(model.decode(z0)).shape == z0.shape

    def test_batch_independence(self) -> None:
        model = self.make_model()
        with torch.inference_mode():
            if model.has("decode"):
                z = self.latents(model)
                torch.testing.assert_close(model.decode(z)[1:2], model.decode(z[1:2]), atol=self.atol, rtol=1e-4)
            if model.has("encode"):
                x = self.images(model)
                torch.testing.assert_close(model.encode(x)[1:2], model.encode(x[1:2]), atol=self.atol, rtol=1e-4)

    def test_deterministic(self) -> None:
        a, b = self.make_model(seed=3), self.make_model(seed=3)
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb), f"same seed must give the same weights ({ka})"
        state = torch.get_rng_state()
        with torch.inference_mode():
            if a.has("decode"):
                z = self.latents(a)
                torch.testing.assert_close(a.decode(z), a.decode(z), atol=0, rtol=0)
                torch.testing.assert_close(self.latents(a, seed=5), self.latents(a, seed=5), atol=0, rtol=0)
            if a.has("encode"):
                x = self.images(a)
                torch.testing.assert_close(a.encode(x), a.encode(x), atol=0, rtol=0)
        assert torch.equal(state, torch.get_rng_state()), "encode/decode must not consume the global RNG"

    # --- weights ------------------------------------------------------------------------------------
    def _outputs(self, model: zoo.ZooModel) -> list[torch.Tensor]:
        with torch.inference_mode():
            out = []
            if model.has("decode"):
                out.append(model.decode(self.latents(model)))
            if model.has("encode"):
                out.append(model.encode(self.images(model)))
        return out

    def test_save_load_roundtrip(self, tmp_path: Path) -> None:
        model = self.make_model(seed=1)
        folder = zoo.save_pretrained(model, tmp_path / "weights", tag="tiny", provenance={"test": True})
        loaded = zoo.create_model(f"local-dir:{folder}")
        assert type(loaded) is type(model) and loaded.model_args == model.model_args
        for a, b in zip(self._outputs(model), self._outputs(loaded)):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
        snapshot_repo = f"zoo-test/{self.arch}.tiny"
        fake_hub_from_folder(tmp_path / "hub", snapshot_repo, folder)
        from_hub = zoo.create_model(f"hf-hub:{snapshot_repo}@{FAKE_REVISION}", cache_dir=tmp_path / "hub",
                                    offline=True)
        for a, b in zip(self._outputs(model), self._outputs(from_hub)):
            torch.testing.assert_close(a, b, atol=0, rtol=0)

    # --- training -----------------------------------------------------------------------------------
    def test_train_step(self) -> None:
        """One step as ``zoo train`` runs it: through the optimisers ``configure_optimizers`` returns, or, for a
        model fitted in closed form (no optimisers: ``{}``), by setting its buffers from the batch."""
        model = self.make_model().train()
        if not model.has("train"):
            _skip(f"{self.arch} has no training step")
        opts = model.configure_optimizers()
        assert isinstance(opts, Mapping) and all(isinstance(o, torch.optim.Optimizer) for o in opts.values()), \
            "configure_optimizers must return {name: torch.optim.Optimizer} ({} for a closed-form fit)"
        before = {k: v.clone() for k, v in model.state_dict().items()}
        used = []

        def update(name: str, loss: torch.Tensor) -> None:
            assert name in opts, f"train_step updated {name!r}; configure_optimizers returned {sorted(opts)}"
            assert torch.isfinite(loss), f"loss for {name!r} is not finite"
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
            used.append(name)

        torch.manual_seed(0)
        logs = model.train_step(self.images(model, n=self.train_batch_size), 0, update)
        assert isinstance(logs, Mapping) and all(isinstance(v, float) for v in logs.values()), \
            "train_step must return the terms to log as {name: float}"
        if opts:
            assert used, "train_step must update through the optimisers configure_optimizers returned"
        changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
        assert changed, ("a training step must change some weights" if opts else
                         "a closed-form training step (no optimisers) must set some buffers from the batch")


def make_fake_dist(root: str | os.PathLike[str], name: str, entry_points: Mapping[str, str],
                   files: Mapping[str, str | os.PathLike[str]] = {}, version: str = "0.1") -> Path:
    """Write an installed-looking distribution (``<name>-<version>.dist-info`` with ``[zoo]`` entry points, plus
    module files) into ``root``; put ``root`` on ``sys.path`` and ``importlib.metadata`` finds it like a pip install.

    ``files`` maps a file name in ``root`` to its text or to a file to copy."""
    root = Path(root)
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[zoo]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    for rel, content in files.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            dest.write_text(content)
        else:
            shutil.copyfile(content, dest)
    return root
