"""Outside models without a package: zoo.wrap around plain modules, and diffusers' AutoencoderKL loaded in place
(tiny randomly initialised models saved with diffusers' own save_pretrained; nothing is downloaded)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import zoo
from zoo.errors import InputError, ZooError


def tiny_autoencoder_kl(folder, seed=0):
    diffusers = pytest.importorskip("diffusers", reason="the diffusers extra is not installed")
    torch.manual_seed(seed)
    vae = diffusers.AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                                  up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8),
                                  layers_per_block=1, latent_channels=1, norm_num_groups=4, sample_size=64)
    vae.save_pretrained(folder)
    return vae


def test_wrap_turns_plain_modules_into_a_model(tmp_path):
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 6))
    dec = nn.Sequential(nn.Linear(6, 3 * 16 * 16), nn.Sigmoid(), nn.Unflatten(1, (3, 16, 16)))
    m = zoo.wrap(encoder=enc, decoder=dec, image_spec=zoo.ImageSpec(3, (16, 16)), latent_spec=(6,), name="mine")
    x = torch.rand(4, 3, 16, 16)
    assert torch.equal(m.encode(x), enc(x)) and m.decode(m.encode(x)).shape == (4, 3, 16, 16)
    assert m.capabilities() == {"encode", "decode", "sample"} and m.display_name == "mine"
    with pytest.raises(InputError, match="divide by 255"):
        m.encode(x * 255)  # the boundary checks apply to wrapped models too
    only_dec = zoo.wrap(decoder=dec, image_spec=zoo.ImageSpec(3, (16, 16)), latent_spec=(6,))
    assert not only_dec.has("encode")
    signed = zoo.wrap(encoder=lambda x: x.mean((1, 2, 3))[:, None], image_spec=zoo.ImageSpec(3, (16, 16)),
                      latent_spec=(1,), image_range=(-1, 1))
    assert torch.allclose(signed.encode(x)[:, 0], (x * 2 - 1).mean((1, 2, 3)))
    with pytest.raises(ZooError, match="encoder, a decoder or both"):
        zoo.wrap(image_spec=zoo.ImageSpec(3, (16, 16)), latent_spec=(6,))


def test_a_wrapped_model_runs_in_the_tools():
    torch.manual_seed(0)
    dec = nn.Sequential(nn.Linear(4, 3 * 64 * 64), nn.Sigmoid(), nn.Unflatten(1, (3, 64, 64)))
    m = zoo.wrap(decoder=dec, image_spec=zoo.ImageSpec(3, (64, 64), dataset="faces64"), latent_spec=(4,))
    result = zoo.run("jacobian", m, n=2)
    assert result.models == ["wrapped"] and len(result["spectrum_mean"]) == 4


def test_diffusers_autoencoder_kl_loads_in_place(tmp_path):
    vae = tiny_autoencoder_kl(tmp_path / "vae")
    m = zoo.create_model(f"diffusers:{tmp_path / 'vae'}")
    assert m.latent_spec.shape == (1, 8, 8) and m.image_spec.size == (64, 64)
    assert {"encode", "encode_dist", "decode", "sample"} <= m.capabilities()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref_z = vae.encode(x * 2 - 1).latent_dist.mean * vae.config.scaling_factor
        ref_x = ((vae.decode(ref_z / vae.config.scaling_factor).sample + 1) / 2).clamp(0, 1)
    assert torch.allclose(m.encode(x), ref_z, atol=1e-6)  # the library's own network, our conventions around it
    assert torch.allclose(m.decode(ref_z), ref_x, atol=1e-6)
    pipeline = tmp_path / "pipeline"
    vae.save_pretrained(pipeline / "vae")  # a whole pipeline folder: its vae/ is found
    assert zoo.create_model(f"diffusers:{pipeline}").latent_spec.shape == (1, 8, 8)


def test_diffusers_from_the_hub_cache_offline(tmp_path, monkeypatch):
    from zoo.testing import FAKE_REVISION, fake_hub_from_folder

    tiny_autoencoder_kl(tmp_path / "vae")
    cache = tmp_path / "cache"
    fake_hub_from_folder(cache, "someone/tiny-vae", tmp_path / "vae")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    m = zoo.create_model(f"diffusers:someone/tiny-vae@{FAKE_REVISION}", cache_dir=cache)
    assert m.latent_spec.shape == (1, 8, 8)


@pytest.mark.parametrize("damage, match", [
    ("bin", "safetensors only"),
    ("class", "no diffusers AutoencoderKL"),
    ("missing", "not a folder"),
])
def test_bad_diffusers_folders_are_one_line(tmp_path, cli, damage, match):
    folder = tmp_path / "vae"
    tiny_autoencoder_kl(folder)
    if damage == "bin":
        (folder / "diffusion_pytorch_model.safetensors").rename(folder / "diffusion_pytorch_model.bin")
    elif damage == "class":
        cfg = json.loads((folder / "config.json").read_text()) | {"_class_name": "UNet2DModel"}
        (folder / "config.json").write_text(json.dumps(cfg))
    else:
        folder = tmp_path / "nowhere"
    result = cli("info", f"diffusers:{folder}")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.stderr.startswith("error: ") and match in result.stderr, result.stderr


def test_unknown_source_prefix_names_the_known_ones():
    with pytest.raises(zoo.UnknownName, match="diffusers:"):
        zoo.parse_ref("difusers:/tmp/x")


def test_diffusers_models_in_the_tools(tmp_path, cli):
    tiny_autoencoder_kl(tmp_path / "vae")
    name = f"diffusers:{tmp_path / 'vae'}"
    ppl = cli("ppl", name, "--n", "10", "--json")
    assert ppl.exit_code == 0, ppl.output
    reloc = cli("relocate", name, "svae", "--n-test", "40", "--n-pool", "100", "--n-fit", "70", "--out",
                tmp_path / "r", "--json")
    assert reloc.exit_code == 0, reloc.output
    import json

    r = json.loads(reloc.stdout)
    assert r["source"] == name and r["data"] == "faces64" and r["m_mse"]["mean"] > 0
