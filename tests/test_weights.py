"""Weights folders: local dir, embedded default, offline Hub cache; corrupted inputs give one clear error."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import zoo
from zoo import registry
from zoo.errors import WeightsError
from zoo.testing import FAKE_REVISION, fake_hub_from_folder


class Extra:
    """Registers the toy autoencoder a second time with embedded and Hub weights."""

    def __init__(self, embedded=None, hf_repo=None):
        self.embedded, self.hf_repo = embedded, hf_repo

    @zoo.hookimpl
    def zoo_register_models(self, register):
        register(zoo.ModelSpec(arch="toyw", factory="zoo_toy_model:ToyAE", weights=(
            zoo.WeightsCfg(tag="emb", embedded=self.embedded),
            zoo.WeightsCfg(tag="hub", hf_repo=self.hf_repo, hf_revision=FAKE_REVISION))))


@pytest.fixture
def saved(toy_plugin, tmp_path):
    model = zoo.create_model("toyae", pretrained=False, seed=7)
    folder = zoo.save_pretrained(model, tmp_path / "w", tag="bars", provenance={"how": "test"})
    return model, folder


def same(a, b):
    z = torch.linspace(-1, 1, 6).view(2, 3)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return torch.equal(a.decode(z), b.decode(z)) and torch.equal(a.encode(x), b.encode(x))


def test_layout_and_local_dir_roundtrip(saved):
    model, folder = saved
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "toyae" and config["model_args"] == {"latent_dim": 3}
    assert config["files"] == {"": "model.safetensors"} and config["provenance"] == {"how": "test"}
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = zoo.create_model(f"local-dir:{folder}")
    assert same(model, loaded) and not loaded.training and loaded.weights_source == f"local-dir:{folder}"


def test_embedded_and_offline_hub(saved, tmp_path, monkeypatch):
    model, folder = saved
    pkg = tmp_path / "pkgs" / "toy_weights_pkg"
    (pkg / "weights").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    arch_config = json.loads((folder / "config.json").read_text()) | {"architecture": "toyw"}
    import shutil

    shutil.copytree(folder, pkg / "weights" / "toyw.emb")
    (pkg / "weights" / "toyw.emb" / "config.json").write_text(json.dumps(arch_config))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    hub_src = tmp_path / "hubsrc"
    shutil.copytree(pkg / "weights" / "toyw.emb", hub_src)
    cache = tmp_path / "cache"
    fake_hub_from_folder(cache, "zoo-models/toyw.hub", hub_src)
    zoo.get_plugin_manager().register_plugin(Extra("toy_weights_pkg:weights/toyw.emb", "zoo-models/toyw.hub"), "x")
    registry.reset()
    emb = zoo.create_model("toyw")  # the default tag is the first with weights
    assert emb.zoo_name == "toyw.emb" and emb.weights_source.startswith("embedded:") and same(model, emb)
    hub = zoo.create_model("toyw.hub", cache_dir=cache, offline=True)
    assert same(model, hub) and hub.weights_source == f"hf-hub:zoo-models/toyw.hub@{FAKE_REVISION}"
    # a pinned revision that is cached loads without offline flags and without network
    assert same(model, zoo.create_model(f"hf-hub:zoo-models/toyw.hub@{FAKE_REVISION}", cache_dir=cache))
    with pytest.raises(WeightsError, match="not in the Hub cache"):
        zoo.create_model("hf-hub:zoo-models/absent@" + "1" * 40, cache_dir=cache, offline=True)


def _message(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


def test_tampered_file_fails_sha_check(saved):
    _, folder = saved
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError) as err:
        zoo.create_model(f"local-dir:{folder}")
    assert "sha256" in _message(err)


def test_truncated_file_without_hash(saved):
    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    del config["sha256"]
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:100])
    with pytest.raises(WeightsError) as err:
        zoo.create_model(f"local-dir:{folder}")
    assert "truncated" in _message(err)


def test_unknown_architecture(saved):
    _, folder = saved
    config = json.loads((folder / "config.json").read_text()) | {"architecture": "nosuchnet"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError) as err:
        zoo.create_model(f"local-dir:{folder}")
    assert "no installed plugin registers 'nosuchnet'" in _message(err)


def test_missing_key_is_strict(saved):
    _, folder = saved
    sd = load_file(folder / "model.safetensors")
    sd.pop("dec.2.bias")
    save_file(sd, folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    del config["sha256"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError) as err:
        zoo.create_model(f"local-dir:{folder}")
    assert "missing 1 key(s) e.g. 'dec.2.bias'" in _message(err)


def test_wrong_shape_and_missing_folder(saved, tmp_path):
    _, folder = saved
    with pytest.raises(WeightsError, match="latent_dim|shape"):
        zoo.create_model(f"local-dir:{folder}", latent_dim=5)
    with pytest.raises(WeightsError, match="does not exist"):
        zoo.create_model(f"local-dir:{tmp_path / 'nowhere'}")


def test_no_weights_yet_is_explained(toy_plugin):
    with pytest.raises(WeightsError, match="has no weights yet"):
        zoo.create_model("toyae")


def test_save_is_atomic_on_failure(saved, monkeypatch):
    model, folder = saved
    before = (folder / "model.safetensors").read_bytes()
    monkeypatch.setattr(type(model), "extra_config", lambda self: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        zoo.save_pretrained(model, folder)
    assert (folder / "model.safetensors").read_bytes() == before
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []
