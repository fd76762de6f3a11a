"""The plugin author's kit (zoo.testing.EncoderDecoderConformance) and what `zoo train` accepts from a plugin: a model
fitted in closed form passes the kit and trains; a check a model cannot take is skipped with its reason, never passed
silently; an attribute that hides the protocol's is named in one message; a `build(**kwargs)` factory gets the dataset;
a dataset outside the protocol is refused in one line."""

from __future__ import annotations

import inspect
import json

import pytest

import zoo
from zoo.testing import EncoderDecoderConformance, make_fake_dist
from zoo.train import state_digest, train

PLUGIN = '''
import numpy as np
import torch
from torch import nn

import zoo
from zoo.data.base import GroundTruthDataset


@zoo.hookimpl
def zoo_register_models(register):
    for arch, factory in [("pca", "build"), ("deconly", "DecoderOnly"), ("bufcomponents", "BufferComponents"),
                          ("modarch", "ModuleArch"), ("modencode", "ModuleEncode")]:
        register(zoo.ModelSpec(arch=arch, factory="zoo_kitcases:" + factory, description=arch))


@zoo.hookimpl
def zoo_register_datasets(register):
    register(zoo.DatasetSpec(name="kitbars", factory="zoo_kitcases:KitBars", description="8x8 bars"))
    register(zoo.DatasetSpec(name="kitducks", factory="zoo_kitcases:Ducks", description="not an ImageDataset"))


class PCA(zoo.ZooModel):
    """A linear autoencoder fitted in closed form: train_step sets its buffers from the batch (no optimiser)."""

    def __init__(self, latent_dim=3, channels=1, image_size=8, dataset=None):
        super().__init__()
        d = channels * image_size * image_size
        self.image_spec = zoo.ImageSpec(channels, (image_size, image_size), dataset=dataset)
        self.latent_spec = zoo.LatentSpec((latent_dim,))
        self.register_buffer("mean", torch.full((d,), 0.5))
        self.register_buffer("basis", torch.linalg.qr(torch.randn(d, latent_dim))[0].T.contiguous())

    def encode(self, x):
        return (x.flatten(1) - self.mean) @ self.basis.T

    def decode(self, z):
        return (self.mean + z @ self.basis).clamp(0, 1).view(-1, self.image_spec.channels, *self.image_spec.size)

    def configure_optimizers(self, lr=None):
        return {}

    def train_step(self, x, step, update):
        flat = x.flatten(1)
        self.mean = flat.mean(0)
        _, s, vh = torch.linalg.svd(flat - self.mean, full_matrices=False)
        self.basis = vh[: self.latent_spec.shape[0]].contiguous()
        k = self.latent_spec.shape[0]
        return {"explained": float((s[:k] ** 2).sum() / (s ** 2).sum().clamp_min(1e-12))}


def build(**kwargs):
    return PCA(**kwargs)


class DecoderOnly(zoo.ZooModel):
    def __init__(self, latent_dim=2):
        super().__init__()
        self.image_spec = zoo.ImageSpec(1, (8, 8))
        self.latent_spec = zoo.LatentSpec((latent_dim,))
        self.net = nn.Linear(latent_dim, 64)

    def decode(self, z):
        return torch.sigmoid(self.net(z)).view(-1, 1, 8, 8)


class BufferComponents(DecoderOnly):
    """A PCA-like buffer named `components`, which zoo.ZooModel uses for the parts saved separately."""

    def __init__(self):
        super().__init__()
        self.register_buffer("components", torch.zeros(2, 64))


class ModuleArch(DecoderOnly):
    def __init__(self):
        super().__init__()
        self.arch = nn.Linear(2, 2)


class ModuleEncode(DecoderOnly):
    def __init__(self):
        super().__init__()
        self.encode = nn.Linear(64, 2)  # hidden by ZooModel.encode: model.encode(x) would not call it


class KitBars(GroundTruthDataset):
    name, factor_names, factor_sizes = "kitbars", ("position", "intensity"), (8, 4)
    factor_values = (np.arange(8.0), np.arange(1.0, 5.0) / 4)
    image_spec = zoo.ImageSpec(1, (8, 8), dataset="kitbars")

    def _render(self, factors):
        f = torch.as_tensor(factors)
        x = torch.zeros(len(f), 1, 8, 8)
        x[torch.arange(len(f)), 0, :, f[:, 0]] = (f[:, 1:2].float() + 1) / 4
        return x


class Ducks:
    """Looks like a dataset, is not one."""

    name, image_spec = "kitducks", zoo.ImageSpec(1, (8, 8))

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.zeros(1, 8, 8)
'''

CHECKS = sorted(n for n in dir(EncoderDecoderConformance) if n.startswith("test_"))


@pytest.fixture
def kit_plugin(tmp_path, monkeypatch):
    root = make_fake_dist(tmp_path / "kit-site", "zoo-kitcases", {"kitcases": "zoo_kitcases"},
                          {"zoo_kitcases.py": PLUGIN})
    monkeypatch.syspath_prepend(str(root))
    zoo.plugins.reset()
    return root


def kit_for(arch: str, **attrs) -> EncoderDecoderConformance:
    return type(f"Test_{arch}", (EncoderDecoderConformance,), {"arch": arch, **attrs})()


def outcome(kit: EncoderDecoderConformance, check: str, tmp_path) -> tuple[str, str]:
    """Run one kit check as pytest would: ("passed" | "skipped" | "failed", message)."""
    method = getattr(kit, check)
    kwargs = {"tmp_path": tmp_path / check} if "tmp_path" in inspect.signature(method).parameters else {}
    try:
        method(**kwargs)
    except pytest.skip.Exception as exc:
        return "skipped", exc.msg
    except pytest.fail.Exception as exc:
        return "failed", exc.msg
    except AssertionError as exc:
        return "failed", str(exc)
    return "passed", ""


# kit class → the checks that must be skipped, with their reasons; every other check must pass
PASSING_KITS = {
    "closed-form-pca": ({"arch": "pca", "tiny_args": {"latent_dim": 3}, "train_batch_size": 8}, {}),
    "decoder-only": ({"arch": "deconly"}, {"test_encode_shape": "deconly has no encoder",
                                           "test_train_step": "deconly has no training step"}),
}


@pytest.mark.parametrize("case", list(PASSING_KITS))
def test_the_kit_passes_and_skips_with_reasons(kit_plugin, tmp_path, case):
    attrs, skipped = PASSING_KITS[case]
    kit = kit_for(**attrs)
    results = {check: outcome(kit, check, tmp_path) for check in CHECKS}
    assert {c: r for c, r in results.items() if r[0] == "skipped"} == {c: ("skipped", why)
                                                                      for c, why in skipped.items()}
    assert {c for c, r in results.items() if r[0] == "passed"} == set(CHECKS) - set(skipped), results


# model → the check that must fail and the words of its one message
HIDERS = {
    "buffer-named-components": ("bufcomponents", "test_specs", ["'components'", "zoo.ZooModel", "rename"]),
    "module-named-arch": ("modarch", "test_specs", ["'arch'", "zoo.ZooModel", "rename"]),
    "module-named-encode": ("modencode", "test_names_leave_the_protocol_alone",
                            ["sub-module 'encode'", "zoo.ZooModel", "rename"]),
}


@pytest.mark.parametrize("case", list(HIDERS))
def test_a_name_that_hides_the_protocol_fails_with_one_clear_message(kit_plugin, tmp_path, case):
    arch, check, words = HIDERS[case]
    status, message = outcome(kit_for(arch), check, tmp_path)
    assert status == "failed" and "\n" not in message.strip(), message
    for word in words:
        assert word in message, message


def test_the_kit_catches_a_closed_form_step_that_fits_nothing(kit_plugin, tmp_path, monkeypatch):
    import zoo_kitcases

    monkeypatch.setattr(zoo_kitcases.PCA, "train_step", lambda self, x, step, update: {"explained": 0.0})
    status, message = outcome(kit_for("pca", tiny_args={"latent_dim": 3}, train_batch_size=8), "test_train_step",
                              tmp_path)
    assert status == "failed" and "closed-form" in message


def test_a_closed_form_model_trains_resumes_bit_for_bit_and_its_kwargs_factory_gets_the_dataset(kit_plugin, tmp_path):
    args = {"steps": 6, "seed": 2, "batch_size": 16, "checkpoint_every": 2}
    full = train("pca", "kitbars", out=tmp_path / "full", **args)
    train("pca", "kitbars", out=tmp_path / "cut", stop_after=3, **args)
    resumed = train("pca", "kitbars", out=tmp_path / "cut", resume=True, **args)
    assert state_digest(full) == state_digest(resumed)
    config = json.loads((tmp_path / "full" / "weights" / "config.json").read_text())
    # build(**kwargs) has no named parameters: it gets the dataset's name and image format all the same
    assert {k: config["model_args"][k] for k in ("dataset", "channels", "image_size")} == \
        {"dataset": "kitbars", "channels": 1, "image_size": 8}
    assert full.image_spec.dataset == "kitbars" and 0.5 < config["provenance"]["final_losses"]["explained"] <= 1


def test_a_dataset_outside_the_protocol_is_refused_in_one_line(kit_plugin, tmp_path, cli):
    result = cli("train", "deconly", "--data", "kitducks", "--steps", "1", "--out", tmp_path / "run")
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "not a zoo.data.ImageDataset" in lines[0] and "subclass" in lines[0]


def test_a_closed_form_model_is_refused_under_torchrun_before_any_work(kit_plugin, tmp_path):
    """Ranks of a closed-form fit have no gradients to average: each would fit its own shard. Refused up front."""
    import os
    import shutil
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZOO_DEVICE": "cpu",
           "PYTHONPATH": os.pathsep.join([str(kit_plugin), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "--no-python",
           shutil.which("zoo") or "zoo", "train", "pca", "--data", "kitbars", "--steps", "4", "--out",
           str(tmp_path / "run")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert errors and all("closed form" in e and "without torchrun" in e for e in errors), out.stderr[-2000:]
    assert not (tmp_path / "run" / "checkpoint").exists() and not (tmp_path / "run" / "weights").exists()
