"""Hostile dataset files, degenerate sample sizes and relocation output folders: each refused with one `error:` line
(never a traceback, a nan or a silent cap), and a user's files left as they were.

Every bad file is written here, in tmp_path, by the test's own code."""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import get_dataset
from zoo.errors import DataError, ZooError
from zoo.metrics.stats import henze_zirkler

DSPRITES_SIZES = np.array([1, 3, 6, 40, 32, 32])
GRID = 3 * 6 * 40 * 32 * 32  # 737,280


def assert_one_error_line(result, *needles: str) -> str:
    """The CLI refused: non-zero exit, exactly one `error:` line holding every needle, no traceback."""
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# --- hostile dataset files -------------------------------------------------------------------------------------------


def dsprites_arrays(rows: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """``rows`` distinct random grid points of dSprites with random binary images, in DeepMind's keys."""
    rng = np.random.default_rng(seed)
    flat = np.sort(rng.choice(GRID, size=rows, replace=False))
    classes = np.zeros((rows, 6), dtype=np.int64)
    classes[:, 1:] = np.stack(np.unravel_index(flat, DSPRITES_SIZES[1:]), axis=1)
    imgs = (rng.random((rows, 64, 64)) < 0.3).astype(np.uint8)
    return {"imgs": imgs, "latents_classes": classes, "latents_sizes": DSPRITES_SIZES.copy()}


def npz_bytes(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def corrupt_member(data: bytes, member: str) -> bytes:
    """Flip bytes in the middle of one member's stored data (the zip directory stays intact, so np.load succeeds and
    only reading that member fails)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo(member)
    header = 30 + len(info.filename.encode()) + len(info.extra)  # local file header, then the stored data
    at = info.header_offset + header + info.compress_size // 2
    out = bytearray(data)
    out[at:at + 16] = bytes(b ^ 0xFF for b in out[at:at + 16])
    return bytes(out)


def jpeg_bytes(width: int = 178, height: int = 218) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def dsprites_with(**changes: np.ndarray) -> bytes:
    return npz_bytes(**{**dsprites_arrays(), **changes})


def duplicated_rows() -> bytes:
    a = dsprites_arrays()
    a["latents_classes"][5] = a["latents_classes"][2]
    return npz_bytes(**a)


def out_of_range_classes() -> bytes:
    a = dsprites_arrays()
    a["latents_classes"][7, 3] = 40  # orientation has 40 values: 0..39
    return npz_bytes(**a)


# name → (dataset, file name, bytes of the file, words the one error line must hold)
BAD_NPZ = {
    "truncated npz": ("dsprites_npz", "d.npz", lambda: npz_bytes(**dsprites_arrays())[:150_000],
                      ["not an .npz archive", "truncated", "expected keys imgs"]),
    "text named .npz": ("dsprites_npz", "d.npz", lambda: b"imgs, latents_classes\n1, 2\n",
                        ["not an .npz archive", "expected keys imgs"]),
    "corrupt stored member": ("dsprites_npz", "d.npz", lambda: corrupt_member(npz_bytes(**dsprites_arrays()),
                                                                              "imgs.npy"),
                              ["member 'imgs'", "Bad CRC", "expected keys imgs"]),
    "corrupt deflated member": ("dsprites_npz", "d.npz",
                                lambda: corrupt_member(npz_bytes(True, **dsprites_arrays()), "imgs.npy"),
                                ["member 'imgs'", "expected keys imgs"]),
    "wrong keys": ("dsprites_npz", "d.npz", lambda: npz_bytes(images=dsprites_arrays()["imgs"]),
                   ["lacks imgs, latents_classes, latents_sizes", "it holds images"]),
    "2-D images": ("dsprites_npz", "d.npz", lambda: dsprites_with(imgs=dsprites_arrays()["imgs"][:, 0]),
                   ["imgs (64, 64) uint8", "expected keys imgs (N,64,64)"]),
    "5 factor columns": ("dsprites_npz", "d.npz",
                         lambda: dsprites_with(latents_classes=dsprites_arrays()["latents_classes"][:, 1:]),
                         ["latents_classes (64, 5)", "expected"]),
    "float factor classes": ("dsprites_npz", "d.npz",
                             lambda: dsprites_with(latents_classes=dsprites_arrays()["latents_classes"] + 0.5),
                             ["latents_classes (64, 6) float64", "integers"]),
    "classes outside the sizes": ("dsprites_npz", "d.npz", out_of_range_classes,
                                  ["row 7", "outside latents_sizes"]),
    "a combination twice": ("dsprites_npz", "d.npz", duplicated_rows, ["twice (rows 2 and 5)"]),
    "mpi3d truncated": ("mpi3d_npz", "m.npz", lambda: npz_bytes(images=np.zeros((12, 64, 64, 3), np.uint8))[:9000],
                        ["not an .npz archive", "expected key images"]),
    "mpi3d pickled member": ("mpi3d_npz", "m.npz", lambda: npz_bytes(images=np.array([{"x": 1}], dtype=object)),
                             ["member 'images'", "allow_pickle"]),
    "mpi3d float images": ("mpi3d_npz", "m.npz", lambda: npz_bytes(images=np.zeros((12, 64, 64, 3), np.float32)),
                           ["images (12, 64, 64, 3) float32", "uint8"]),
    "mpi3d too few images": ("mpi3d_npz", "m.npz", lambda: npz_bytes(images=np.zeros((12, 64, 64, 3), np.uint8)),
                             ["holds 12 images, not 1036800 images", "factor_sizes"]),
}


@pytest.mark.parametrize("case", BAD_NPZ)
def test_bad_npz_is_refused_when_the_dataset_is_built(case, tmp_path, cli):
    name, filename, build, needles = BAD_NPZ[case]
    path = tmp_path / filename
    path.write_bytes(build())
    with pytest.raises(DataError) as err:  # up front: np.load alone is lazy and would fail at first use
        get_dataset(name, path=str(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    result = cli("data", "show", name, "--path", path, "--n", 4, "--out", tmp_path / "g.png")
    line = assert_one_error_line(result, str(path), *needles)
    assert line.startswith(f"error: {name}: ")
    assert not (tmp_path / "g.png").exists()


def text_jpg() -> bytes:
    return b"this is not a picture\n"


def truncated_jpg() -> bytes:
    data = jpeg_bytes()
    return data[:len(data) // 2]


# CelebA folders: a damaged file is refused (documented in CelebAFolder), named, never skipped
BAD_IMAGES = {
    "text in a .jpg": ("celeba", text_jpg, ["is not a readable image", "cannot identify image file"]),
    "truncated jpeg": ("celeba", truncated_jpg, ["is not a readable image", "truncated"]),
    "truncated jpeg, celebahq": ("celebahq", truncated_jpg, ["is not a readable image", "truncated"]),
    "too small for the crop": ("celeba", lambda: jpeg_bytes(100, 100), ["is 100x100, too small", "crop"]),
}


@pytest.mark.parametrize("case", BAD_IMAGES)
def test_bad_image_in_a_celeba_folder_is_refused_by_name(case, tmp_path, cli):
    name, build, needles = BAD_IMAGES[case]
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    bad = folder / "000002.jpg"
    bad.write_bytes(build())
    ds = get_dataset(name, path=str(folder))
    assert len(ds) == 1
    with pytest.raises(DataError, match="remove or replace it"):
        ds[0]
    result = cli("data", "show", name, "--path", folder, "--n", 4, "--out", tmp_path / "g.png")
    assert_one_error_line(result, str(bad), *needles)
    assert not (tmp_path / "g.png").exists()


def test_a_bad_image_is_not_skipped_next_to_good_ones(tmp_path):
    """Refused, not skipped: the index of every file stays the same, and reading the bad one fails."""
    folder = tmp_path / "celeba"
    folder.mkdir()
    (folder / "000001.jpg").write_bytes(jpeg_bytes())
    (folder / "000002.jpg").write_bytes(truncated_jpg())
    (folder / "000003.jpg").write_bytes(jpeg_bytes())
    ds = get_dataset("celeba", path=str(folder))
    assert len(ds) == 3 and ds.images([0, 2]).shape == (2, 3, 64, 64)
    with pytest.raises(DataError, match="000002.jpg is not a readable image"):
        ds.images([0, 1, 2])


# --- a file holding part of the dSprites grid -------------------------------------------------------------------------


def test_partial_dsprites_file_counts_and_samples_only_its_rows(tmp_path, cli):
    arrays = dsprites_arrays(rows=64)
    path = tmp_path / "dsprites_part.npz"
    path.write_bytes(npz_bytes(**arrays))
    ds = get_dataset("dsprites_npz", path=str(path))
    assert len(ds) == 64 and not ds.full_grid
    held = {tuple(r) for r in arrays["latents_classes"][:, 1:].tolist()}
    for rng in (0, np.random.RandomState(0)):
        drawn = ds.sample_factors(500, rng)
        assert {tuple(r) for r in drawn.tolist()} <= held
        assert len({tuple(r) for r in drawn.tolist()}) > 32  # draws spread over the rows, not one row
    images, factors = ds.sample(20, 1)
    rows = ds.factors_to_index(factors)
    torch.testing.assert_close(images[:, 0], torch.from_numpy(arrays["imgs"][rows].astype(np.float32)))
    np.testing.assert_array_equal(ds.index_to_factors(np.arange(64)), arrays["latents_classes"][:, 1:])
    img, factors63 = ds[63]
    assert torch.equal(img[0], torch.from_numpy(arrays["imgs"][63].astype(np.float32)))
    assert factors63.tolist() == arrays["latents_classes"][63, 1:].tolist()
    with pytest.raises(DataError):
        ds.index_to_factors([64])
    missing = next(f for f in np.ndindex(*DSPRITES_SIZES[1:]) if f not in held)
    with pytest.raises(DataError, match="of the 737,280; this needs the file with the full grid"):
        ds.images_from_factors([missing])
    with pytest.raises(DataError, match="needs the full grid"):
        ds.traversal()

    shown = cli("data", "show", "dsprites_npz", "--path", path, "--n", 8, "--out", tmp_path / "g.png")
    assert shown.exit_code == 0, shown.output
    assert "dsprites_npz: 64 images" in shown.stderr and "737,280 images" not in shown.stderr
    assert "no traversal" in shown.stderr and (tmp_path / "g.png").is_file()
    asked = cli("data", "show", "dsprites_npz", "--path", path, "--traversal", tmp_path / "t.png",
                "--out", tmp_path / "g2.png")
    assert_one_error_line(asked, "64 of the 737,280", "needs the full grid")
    assert not (tmp_path / "t.png").exists() and not (tmp_path / "g2.png").exists()


def test_a_file_with_a_whole_small_grid_keeps_the_grid_behaviour(tmp_path, cli):
    sizes = np.array([1, 3, 2, 2, 2, 2])
    classes = np.zeros((48, 6), dtype=np.int64)
    classes[:, 1:] = np.stack(np.unravel_index(np.arange(48), sizes[1:]), axis=1)
    imgs = np.zeros((48, 64, 64), dtype=np.uint8)
    imgs[np.arange(48), np.arange(48), 0] = 1
    path = tmp_path / "small_grid.npz"
    path.write_bytes(npz_bytes(imgs=imgs, latents_classes=classes, latents_sizes=sizes))
    ds = get_dataset("dsprites_npz", path=str(path))
    assert len(ds) == 48 and ds.full_grid
    rs, ref = np.random.RandomState(3), np.random.RandomState(3)  # disentanglement_lib's per-factor stream
    expected = np.stack([ref.randint(s, size=10) for s in sizes[1:]], axis=1)
    np.testing.assert_array_equal(ds.sample_factors(10, rs), expected)
    rows, labels = ds.traversal(steps=2)
    assert rows.shape == (5 * 2, 1, 64, 64) and labels == list(ds.factor_names)
    result = cli("data", "show", "dsprites_npz", "--path", path, "--n", 8, "--out", tmp_path / "g.png",
                 "--traversal", tmp_path / "t.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t.png").is_file() and "48 images" in result.stderr


# --- degenerate sample sizes -----------------------------------------------------------------------------------------


def test_henze_zirkler_is_finite_in_many_dimensions_and_refuses_too_few_samples():
    """p = 64 (the GAN's latent size) once gave p = nan at any n: the log-normal's variance was below float64's
    resolution of 1. And n ≤ p + 1 points all give the same statistic (affine invariance), so they are refused."""
    rng = np.random.default_rng(0)
    gaussian = henze_zirkler(rng.normal(size=(300, 64)))
    assert math.isfinite(gaussian["p_value"]) and gaussian["normal"]
    skewed = henze_zirkler(rng.exponential(size=(300, 64)))
    assert math.isfinite(skewed["p_value"]) and skewed["p_value"] < gaussian["p_value"]
    assert math.isfinite(henze_zirkler(rng.normal(size=(66, 64)))["p_value"])
    for n in (2, 10, 65):
        with pytest.raises(ZooError, match=f"64-dimensional codes needs at least 66 samples \\(p \\+ 2\\), got {n}"):
            henze_zirkler(rng.normal(size=(n, 64)))


@pytest.mark.parametrize("args, needles", [
    (["--n", 11], ["10-dimensional codes needs at least 12 samples", "got 11"]),
    (["--n", 3], ["needs at least 12 samples", "got 3"]),
    (["--n", 11, "--distances"], ["needs at least 12 samples"]),
])
def test_stats_refuses_too_few_samples(args, needles, cli):
    assert_one_error_line(cli("stats", "vae.dsprites", *args), *needles)


def test_stats_at_the_minimum_prints_numbers(cli):
    result = cli("stats", "vae.dsprites", "--n", 12, "--distances", "--json")
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    assert r["n"] == 12 and math.isfinite(r["p_value"]) and math.isfinite(r["hz"])
    assert all(math.isfinite(v) for space in ("latent", "image_pca") for v in r["distances"][space].values())


def test_stats_option_range_matches_the_library():
    from zoo_cli.main import make_cli

    n = next(p for p in make_cli().commands["stats"].params if p.name == "n")
    assert n.type.min == 3  # Henze-Zirkler's p + 2 for p = 1; the rest depends on the model and is checked there


SMALL = ["--n-fit", 12, "--n-pool", 12, "--n-test", 4]  # vae.dsprites has 10-dimensional codes


@pytest.mark.parametrize("args, needles", [
    (["--n-fit", 10000], ["--n-fit 10000 is more than the 2000 pool images", "--n-pool"]),
    (["--n-fit", 50, "--n-pool", 20, "--n-test", 4], ["--n-fit 50 is more than the 20 pool images"]),
    (["--n-fit", 5, "--n-test", 4], ["--n-fit 5", "linear map from 10-dimensional codes needs at least 10 fit points",
                                     "underdetermined", "--method ridge"]),
    (["--n-fit", 10, "--method", "affine", "--n-test", 4], ["affine map", "needs at least 11 fit points"]),
    (["--fit", "data", "--n-pool", 6, "--n-test", 4], ["--n-pool 6", "needs at least 10 fit points"]),
    (["--n-pool", 2000, "--n-test", 736000], ["dsprites has 737,280 images, fewer than the 2,000 pool + 736,000"]),
    (["--matrix", "--save-map", "MAPDIR", *SMALL], ["--save-map saves the map of one pair"]),
])
def test_relocate_refuses_degenerate_sizes(args, needles, cli, tmp_path):
    args = [tmp_path / "map" if a == "MAPDIR" else a for a in args]
    result = cli("relocate", "vae.dsprites", "betavae.dsprites", "--out", tmp_path / "out", *args)
    assert_one_error_line(result, *needles)
    assert not (tmp_path / "out").exists() and not (tmp_path / "map").exists()


def test_relocate_option_ranges_match_the_library():
    from zoo_cli.relocate import relocate as command

    mins = {p.name: p.type.min for p in command.params if p.name in ("n_fit", "n_pool", "n_test")}
    assert mins == {"n_fit": 2, "n_pool": 2, "n_test": 2}


def test_relocate_smallest_sizes_give_a_real_baseline_and_spread(tmp_path):
    from zoo.relocate.api import relocate

    with pytest.raises(ZooError, match="--n-test 1: the baseline .* needs at least 2"):
        relocate("vae.dsprites", "betavae.dsprites", n_fit=12, n_pool=12, n_test=1)
    r = relocate("vae.dsprites", "betavae.dsprites", n_fit=12, n_pool=12, n_test=2)
    assert r.baseline > 0 and r.n_test == 2 and r.n_fit == 12
    assert all(getattr(r, k)[1] > 0 for k in ("l_mse", "r_mse", "m_mse"))  # two batches: a spread, not 0


def test_select_refuses_more_points_than_the_pool():
    from zoo.relocate.support import select

    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ZooError, match="cannot choose 6 fit points from a pool of 5"):
        select("random", z, 6)
    assert len(select("data", z, 6)) == 5  # the data set is the whole pool by definition


# --- relocation output folders ---------------------------------------------------------------------------------------


def test_save_map_into_a_folder_with_user_files(tmp_path, cli):
    from zoo.relocate.maps import load_map

    folder = tmp_path / "maps"
    folder.mkdir()
    thesis = folder / "thesis.tex"
    thesis.write_bytes(b"\\documentclass{book}\n% three years of work\n")
    before = thesis.read_bytes()
    run = ["relocate", "vae.dsprites", "betavae.dsprites", *SMALL, "--out", tmp_path / "out", "--save-map", folder]

    refused = cli(*run)
    assert_one_error_line(refused, "--overwrite", "thesis.tex")
    assert thesis.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]
    assert not (tmp_path / "out").exists()  # refused before any work or output

    written = cli(*run, "--overwrite")
    assert written.exit_code == 0, written.output
    assert thesis.read_bytes() == before
    assert load_map(folder).config["target"] == "betavae.dsprites"

    again = cli(*run[:-2], "--save-map", tmp_path / "only_a_map")  # a folder holding only an earlier map ...
    assert again.exit_code == 0, again.output
    replaced = cli(*run[:-2], "--save-map", tmp_path / "only_a_map", "--seed", 1)  # ... is replaced as it is
    assert replaced.exit_code == 0, replaced.output
    assert load_map(tmp_path / "only_a_map").config["seed"] == 1
