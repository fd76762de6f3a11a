"""Datasets: the dSprites grid, determinism, factors that change the image, and the file loaders on small files."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from zoo.data import get_dataset
from zoo.errors import DataError
from zoo_cli.main import make_cli


def test_dsprites_grid_matches_the_published_specification():
    ds = get_dataset("dsprites")
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.factor_sizes == (3, 6, 40, 32, 32) and len(ds) == 737280
    np.testing.assert_allclose(ds.factor_values[1], np.linspace(0.5, 1, 6))
    np.testing.assert_allclose(ds.factor_values[2], np.linspace(0, 2 * np.pi, 40))
    np.testing.assert_allclose(ds.factor_values[3], np.linspace(0, 1, 32))
    x = ds.images_from_factors(ds.sample_factors(50, 0))
    assert x.shape == (50, 1, 64, 64) and x.dtype == torch.float32 and set(x.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("name", ["dsprites", "faces64"])
def test_index_roundtrip_and_getitem(name):
    ds = get_dataset(name)
    idx = np.array([0, 1, 12345, len(ds) - 1])
    f = ds.index_to_factors(idx)
    np.testing.assert_array_equal(ds.factors_to_index(f), idx)
    np.testing.assert_array_equal(f[-1], np.array(ds.factor_sizes) - 1)
    img, fac = ds[12345]
    torch.testing.assert_close(img, ds.images_from_factors(f[2:3])[0])
    with pytest.raises(DataError):
        ds.index_to_factors([len(ds)])


@pytest.mark.parametrize("name", ["dsprites", "faces64"])
def test_every_factor_changes_the_image_and_samples_do_not_collide(name):
    ds = get_dataset(name)
    base = np.array([[s // 2 for s in ds.factor_sizes]])
    x0 = ds.images_from_factors(base)
    for i, size in enumerate(ds.factor_sizes):
        for v in range(size):
            if v == base[0, i]:
                continue
            f = base.copy()
            f[0, i] = v
            assert (ds.images_from_factors(f) - x0).abs().sum() > 0, f"{ds.factor_names[i]}={v} changes nothing"
    f = np.unique(ds.sample_factors(300, 5), axis=0)
    x = ds.images_from_factors(f).flatten(1)
    assert len(torch.unique(x, dim=0)) == len(f)


def test_rendering_is_deterministic_across_processes():
    code = ("import hashlib, numpy as np; from zoo.data import get_dataset;"
            "print(','.join(hashlib.sha256(get_dataset(n).images_from_factors(get_dataset(n).index_to_factors("
            "np.arange(0, 700000, 7919))).numpy().tobytes()).hexdigest() for n in ('dsprites', 'faces64')))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0].split(",")) == 2


def test_dlib_stream_sampling():
    ds = get_dataset("dsprites")
    rs = np.random.RandomState(0)
    expected = np.stack([np.random.RandomState(0).randint(3, size=4)], 1)
    assert (ds.sample_factors(4, rs)[:, :1] == expected).all()


def test_dsprites_npz_loader(tmp_path):
    sizes = np.array([1, 3, 6, 40, 32, 32])
    classes = np.zeros((6, 6), dtype=np.int64)
    classes[:, 1] = [0, 1, 2, 0, 1, 2]
    classes[:, 4] = [0, 0, 0, 5, 5, 5]
    imgs = np.zeros((6, 64, 64), dtype=np.uint8)
    imgs[np.arange(6), np.arange(6), 0] = 1
    np.savez(tmp_path / "d.npz", imgs=imgs, latents_classes=classes, latents_sizes=sizes)
    ds = get_dataset("dsprites_npz", path=str(tmp_path / "d.npz"))
    x = ds.images_from_factors(classes[[4], 1:])
    assert x.shape == (1, 1, 64, 64) and x[0, 0, 4, 0] == 1 and x.sum() == 1
    with pytest.raises(DataError, match="every factor combination"):
        ds.images_from_factors([[0, 5, 0, 0, 0]])
    np.savez(tmp_path / "bad.npz", imgs=imgs)
    with pytest.raises(DataError, match="lacks latents_classes, latents_sizes"):
        get_dataset("dsprites_npz", path=str(tmp_path / "bad.npz"))
    with pytest.raises(DataError, match="pass path="):
        get_dataset("dsprites_npz")


def test_mpi3d_loader(tmp_path):
    sizes = (2, 1, 1, 1, 1, 2, 3)
    images = np.arange(12 * 64 * 64 * 3, dtype=np.uint64).reshape(12, 64, 64, 3) % 256
    np.savez(tmp_path / "m.npz", images=images.astype(np.uint8))
    ds = get_dataset("mpi3d_npz", path=str(tmp_path / "m.npz"), factor_sizes=sizes)
    x = ds.images_from_factors([[1, 0, 0, 0, 0, 1, 2]])
    torch.testing.assert_close(x[0].permute(1, 2, 0), torch.from_numpy(images[11].astype(np.float32) / 255))
    with pytest.raises(DataError, match="not 1036800 images"):
        get_dataset("mpi3d_npz", path=str(tmp_path / "m.npz"))


@pytest.mark.parametrize("name, size, crop", [("celeba", (178, 218), (45, 25, 128)), ("celebahq", (1024, 1024),
                                                                                    (20, 60, 880))])
def test_celeba_crops(tmp_path, name, size, crop):
    top, left, side = crop
    arr = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    arr[top:top + side, left:left + side] = 200  # only the crop window is bright
    Image.fromarray(arr).save(tmp_path / "000001.png")
    ds = get_dataset(name, path=str(tmp_path))
    x = ds.images([0])
    assert x.shape == (1, 3, 64, 64) and torch.allclose(x, torch.full_like(x, 200 / 255), atol=1e-6)
    Image.fromarray(arr[:100, :100]).save(tmp_path / "000002.png")
    with pytest.raises(DataError, match="too small"):
        ds = get_dataset(name, path=str(tmp_path))
        ds[1]


def test_data_cli(tmp_path):
    runner = CliRunner()
    listing = runner.invoke(make_cli(), ["data", "list", "--json"])
    assert {"dsprites", "faces64", "celeba"} <= {r["name"] for r in __import__("json").loads(listing.stdout)}
    result = runner.invoke(make_cli(), ["data", "show", "faces64", "--n", "8", "--out", str(tmp_path / "g.png"),
                                        "--traversal", str(tmp_path / "t.png")])
    assert result.exit_code == 0 and (tmp_path / "g.png").is_file()
    assert Image.open(tmp_path / "t.png").size[1] > Image.open(tmp_path / "g.png").size[1]
    bad = runner.invoke(make_cli(), ["data", "show", "celeba", "--path", str(tmp_path / "none")])
    assert bad.exit_code == 1 and "does not exist" in bad.stderr
