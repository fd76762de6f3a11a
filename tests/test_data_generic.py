"""Your own data: image folders, array files and label files as datasets (files written by the tests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import get_dataset
from zoo.errors import DataError

HAIR = ["black", "blond", "red"]


@pytest.fixture
def folder(tmp_path):
    """12 images of two sizes in nested folders, with a CSV and a CelebA-style attribute file of their labels."""
    rng = np.random.default_rng(0)
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    csv, attrs = ["file,smiling,hair"], []
    for i in range(12):
        rel = f"sub/p{i:02d}.png" if i % 2 else f"p{i:02d}.jpg"
        shape = (40, 50, 3) if i % 3 else (60, 60, 3)
        Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).save(tmp_path / "photos" / rel)
        csv.append(f"{rel},{i % 2},{HAIR[i % 3]}")
        attrs.append(f"{rel.split('/')[-1]} {2 * (i % 2) - 1} {1 if i % 6 == 1 else -1}")  # no blond non-smiler
    (tmp_path / "labels.csv").write_text("\n".join(csv) + "\n")
    (tmp_path / "list_attr.txt").write_text(f"{len(attrs)}\nSmiling Blond_Hair\n" + "\n".join(attrs) + "\n")
    return tmp_path


def test_a_folder_is_read_recursively_cropped_and_resized(folder):
    ds = get_dataset(f"folder:{folder / 'photos'}", size=32)
    x = ds.images(range(len(ds)))
    assert len(ds) == 12 and not ds.has_factors and x.shape == (12, 3, 32, 32)
    assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    grey = get_dataset("folder", path=folder / "photos", size=16, channels=1, crop="5,5,30,30")
    assert grey.images([0]).shape == (1, 1, 16, 16)
    a, _ = ds.sample(5, 3)
    b, _ = ds.sample(5, 3)
    assert torch.equal(a, b)


@pytest.mark.parametrize("labels", ["labels.csv", "list_attr.txt"])
def test_labels_become_factors(folder, labels):
    ds = get_dataset(f"folder:{folder / 'photos'}", size=16, factors=str(folder / labels))
    assert ds.has_factors and len(ds) == 12
    assert ds.factor_sizes == ((2, 3) if labels.endswith("csv") else (2, 2))
    x, f = ds.sample(8, 0)
    # the images are those of the drawn rows: re-rendering the factors gives images with the same labels
    assert x.shape == (8, 3, 16, 16) and f.shape == (8, 2)
    numbers = [int(f.stem[1:]) for f in ds.base.files]  # files are read in sorted path order
    assert np.array_equal(ds.index_to_factors(np.arange(12))[:, 0], np.array(numbers) % 2)


def test_missing_combinations_are_refused_for_interventions(folder):
    ds = get_dataset(f"folder:{folder / 'photos'}", size=16, factors=str(folder / "list_attr.txt"))
    assert ds.images_from_factors(ds.index_to_factors([0, 1])).shape == (2, 3, 16, 16)  # combinations it has
    present = {tuple(r) for r in ds.index_to_factors(np.arange(12))}
    missing = next(r for r in [(0, 0), (0, 1), (1, 0), (1, 1)] if r not in present)
    with pytest.raises(DataError, match="every combination"):
        ds.images_from_factors(np.array([missing]))


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_text("not an image"), "not a readable image"),
    (lambda p: p.write_bytes(p.read_bytes()[:100]), "not a readable image"),
])
def test_a_damaged_file_is_named(folder, make, match):
    make(folder / "photos" / "p00.jpg")
    ds = get_dataset(f"folder:{folder / 'photos'}")
    with pytest.raises(DataError, match=match):
        ds.images([0])


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw", "float"])
def test_array_files(tmp_path, layout):
    rng = np.random.default_rng(1)
    arr = {"nhw": (rng.random((10, 20, 20)) * 255).astype(np.uint8),
           "nhwc": (rng.random((10, 20, 20, 3)) * 255).astype(np.uint8),
           "nchw": (rng.random((10, 3, 20, 20)) * 255).astype(np.uint8),
           "float": rng.random((10, 20, 20, 3)).astype(np.float32)}[layout]
    np.save(tmp_path / "x.npy", arr)
    np.savez(tmp_path / "x.npz", images=arr, factors=np.arange(10) % 5)
    plain = get_dataset(f"npy:{tmp_path / 'x.npy'}")
    labelled = get_dataset(f"npz:{tmp_path / 'x.npz'}", size=16)
    assert len(plain) == 10 and plain.image_spec.channels == (1 if layout == "nhw" else 3)
    assert labelled.has_factors and labelled.factor_sizes == (5,) and labelled.images([0]).shape[-1] == 16
    expected = torch.from_numpy(np.asarray(arr[3], dtype=np.float32))
    got = plain.images([3])[0]
    if layout != "float":
        expected = expected / 255
    if layout in ("nhwc", "float"):
        expected = expected.permute(2, 0, 1)
    assert torch.allclose(got.reshape(expected.shape), expected, atol=1e-6)


@pytest.mark.parametrize("content, match", [
    (b"garbage", "cannot read"),
    (None, "no images array"),
])
def test_bad_array_files_are_one_line(tmp_path, content, match):
    p = tmp_path / "x.npz"
    if content is None:
        np.savez(p, other=np.zeros(3))
    else:
        p.write_bytes(content)
    with pytest.raises(DataError, match=match) as err:
        get_dataset(f"npz:{p}")
    assert "\n" not in str(err.value)


def test_data_show_on_a_folder(folder, cli, tmp_path):
    result = cli("data", "show", f"folder:{folder / 'photos'}", "--n", "6", "--out", tmp_path / "grid.png")
    assert result.exit_code == 0, result.output
    assert "12 images" in result.stderr and (tmp_path / "grid.png").is_file()


def test_disentanglement_scores_on_a_labelled_folder(folder, cli):
    result = cli("mig", "vae.faces64", "--data", f"folder:{folder / 'photos'}", "--data-arg",
                 f"factors={folder / 'labels.csv'}", "--num-train", "100", "--json")
    assert result.exit_code == 0, result.output
    import json

    r = json.loads(result.stdout)
    assert r["factor_names"] == ["smiling", "hair"] and 0 <= r["discrete_mig"] <= 1
