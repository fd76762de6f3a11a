"""Damaged or hostile weights folders: every case is refused at load in one line (zoo info exits non-zero), and a
config can never point a load outside its folder."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import zoo
from zoo.errors import WeightsError


def _config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


def _tensor(folder, key_part, value):
    sd = load_file(folder / "model.safetensors")
    key = next(k for k in sd if key_part in k)
    sd[key] = sd[key].clone()
    sd[key].view(-1)[0] = value
    save_file(sd, folder / "model.safetensors")
    _config(folder, sha256={})  # a re-saved file: only the NaN check can catch it


CASES = {
    "architecture-not-a-string": (lambda f: _config(f, architecture=7), "'architecture' must be a string"),
    "model-args-a-list": (lambda f: _config(f, model_args=[1, 2]), "'model_args' must be an object"),
    "model-args-wrong-type": (lambda f: _config(f, model_args={"latent_dim": "three"}), "cannot build"),
    "files-escape-up": (lambda f: _config(f, files={"": "../other/model.safetensors"}), "not a plain relative path"),
    "files-absolute": (lambda f: _config(f, files={"": "/etc/passwd"}), "not a plain relative path"),
    "sha256-not-strings": (lambda f: _config(f, sha256={"model.safetensors": 5}), "'sha256' must map"),
    "config-not-json": (lambda f: (f / "config.json").write_text("{oops"), "not valid JSON"),
    "nan-parameter": (lambda f: _tensor(f, "weight", float("nan")), "NaN or infinite"),
    "inf-parameter": (lambda f: _tensor(f, "weight", float("inf")), "NaN or infinite"),
    "nan-buffer": (lambda f: _tensor(f, "seen", float("nan")), "NaN or infinite"),
    "truncated": (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:100]),
                  "sha256"),
}


@pytest.fixture
def folder(toy_plugin, tmp_path):
    model = zoo.create_model("toyae", pretrained=False, seed=1)
    return zoo.save_pretrained(model, tmp_path / "w")


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_weights_are_refused_in_one_line(folder, cli, case):
    damage, needle = CASES[case]
    damage(folder)
    with pytest.raises(zoo.ZooError, match=needle) as err:
        zoo.create_model(f"local-dir:{folder}")
    assert "\n" not in str(err.value)
    result = cli("info", f"local-dir:{folder}")
    lines = [ln for ln in result.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr


def test_an_infinite_buffer_is_allowed(folder):
    """A buffer may hold ±inf on purpose (γ-VAE's running minimum before its first step)."""
    vae = zoo.create_model("vae", pretrained=False, latent_dim=2, image_size=16, widths=[4, 4], hidden=8)
    assert torch.isinf(vae.gamma_sq)
    out = zoo.save_pretrained(vae, folder.parent / "v")
    assert torch.isinf(zoo.create_model(f"local-dir:{out}").gamma_sq)
    with pytest.raises(WeightsError):
        _tensor(folder, "seen", float("nan"))
        zoo.create_model(f"local-dir:{folder}")
