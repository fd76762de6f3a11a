"""Relocation maps and fit sets are plugins: a third-party plugin's map and fit set run through `zoo relocate` and
`zoo run relocate`, are listed by --help, misspelled names and broken plugins are one line; and the steps compose
from Python (fit on one dataset, evaluate on another)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import zoo
from zoo.data import ImageDataset
from zoo.relocate.api import evaluate_relocation, fit_relocation, relocate
from zoo.relocate.maps import load_map
from zoo.testing import make_fake_dist

PLUGIN = '''
"""A third-party plugin adding relocation maps and fit sets (some broken on purpose)."""
import numpy as np
import torch
import zoo


def fit_mean_only(X, Y, *, seed):
    """Every source code to the mean target code of the fit set: a map that ignores its input."""
    from zoo.relocate.maps import LatentMap

    m = LatentMap(X.shape[1], Y.shape[1])
    m.b.copy_(Y.mean(0))
    return m


def first_images(z, size, *, gains, seed):
    return np.arange(size)


@zoo.hookimpl
def zoo_register_relocation_maps(register):
    register(zoo.RelocationMapSpec("mean_only", fit_mean_only, "every code to the mean target code",
                                   min_points=lambda d_in: 1))
    register(zoo.RelocationMapSpec("not_a_map", lambda X, Y, *, seed: torch.nn.Linear(X.shape[1], Y.shape[1]),
                                   "returns a torch module, not a LatentMap"))


@zoo.hookimpl
def zoo_register_fit_sets(register):
    register(zoo.FitSetSpec("first", "zoo_reloc_extra:first_images", "the first pool images"))
    register(zoo.FitSetSpec("out_of_pool", lambda z, size, *, gains, seed: np.arange(size) + len(z),
                            "indices past the pool"))
'''

SRC, TGT = "vae.faces64", "splitvae.faces64"  # 32- and 64-dimensional codes
SMALL = ["--n-test", 50, "--n-pool", 200, "--n-fit", 40]
COMMANDS = {"zoo relocate": ["relocate"], "zoo run relocate": ["run", "relocate"]}


@pytest.fixture
def reloc_plugin(tmp_path, monkeypatch):
    root = make_fake_dist(tmp_path / "site", "zoo-reloc-extra", {"reloc_extra": "zoo_reloc_extra"},
                          {"zoo_reloc_extra.py": PLUGIN})
    monkeypatch.syspath_prepend(str(root))
    zoo.plugins.reset()


def assert_one_error_line(result, *needles):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.strip().count("\n") == 0, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_plugins_map_and_fit_set_run_from_the_command_line(reloc_plugin, cli, tmp_path, command):
    result = cli(*command, SRC, TGT, "--method", "mean_only", "--fit", "first", *SMALL, "--json",
                 "--out", tmp_path / "out", "--save-map", tmp_path / "map")
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    assert (r["method"], r["fit"], r["n_fit"], r["n_test"]) == ("mean_only", "first", 40, 50)
    assert r["map_config"]["method"] == "mean_only" and r["m_mse"]["mean"] > 0 and r["baseline"] > 0
    saved = load_map(tmp_path / "map")
    assert saved.A.abs().max() == 0 and saved.b.abs().max() > 0  # the plugin's map was fitted, not a linear one
    assert (tmp_path / "out" / "relocation.png").is_file() and r["files"]["png"] == str(tmp_path / "out" /
                                                                                         "relocation.png")


def test_help_lists_every_plugins_names(reloc_plugin, cli):
    result = cli("relocate", "--help")
    assert result.exit_code == 0, result.output
    for name, description in [("mean_only", "every code to the mean target code"), ("linear", "Y ≈ X·A without"),
                              ("first", "the first pool images"), ("support", "the paper's support set")]:
        assert re.search(rf"^  {name} +{re.escape(description)}", result.stdout, re.MULTILINE), result.stdout


@pytest.mark.parametrize("args, needles", [
    (["--method", "mean_onyl"], ["unknown relocation map 'mean_onyl'", "did you mean 'mean_only'"]),
    (["--fit", "frist"], ["unknown fit set 'frist'", "did you mean 'first'"]),
    (["--method", "not_a_map", "--fit", "first"], ["relocation map 'not_a_map' returned a Linear",
                                                   "fix the plugin"]),
    (["--fit", "out_of_pool"], ["fit set 'out_of_pool' returned", "not distinct indices into the pool of 200",
                                "fix the plugin"]),
], ids=["misspelled map", "misspelled fit set", "map of the wrong type", "indices past the pool"])
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_bad_names_and_broken_plugins_are_one_line(reloc_plugin, cli, tmp_path, command, args, needles):
    result = cli(*command, SRC, TGT, *SMALL, *args, "--out", tmp_path / "out")
    assert_one_error_line(result, *needles)
    assert not (tmp_path / "out").exists()


class Mirrored(ImageDataset):
    """A second dataset of the same image format: faces64 mirrored left to right."""

    name = "faces64_mirrored"

    def __init__(self):
        self.faces = zoo.get_dataset("faces64")
        self.image_spec = self.faces.image_spec

    def __len__(self):
        return len(self.faces)

    def images(self, indices):
        return self.faces.images(indices).flip(-1)


def test_fit_on_one_dataset_evaluate_on_another(reloc_plugin):
    src, tgt = zoo.create_model(SRC), zoo.create_model(TGT)
    sizes = {"fit": "first", "method": "ridge", "n_fit": 40, "n_pool": 200, "seed": 3}
    rel = fit_relocation(src, tgt, hold_out=50, **sizes)
    assert np.array_equal(rel.fit_images, rel.pool[:40]) and rel.n_fit == 40
    codes = src.encode(zoo.get_dataset("faces64").images(rel.fit_images[:4]))
    assert rel(codes).shape == (4, *tgt.latent_spec.shape)

    held_out = evaluate_relocation(rel, n_test=50)
    composed = relocate(src, tgt, n_test=50, **sizes)  # what `zoo relocate` runs: the same split, the same numbers
    assert held_out.to_dict() == composed.to_dict()

    other_seed = evaluate_relocation(rel, "faces64", n_test=50, seed=4)
    mirrored = evaluate_relocation(rel, Mirrored(), n_test=50)
    for r in (held_out, other_seed):
        assert not set(r.test_indices) & set(rel.pool)  # never an image the fit set was chosen from
    assert set(held_out.test_indices) != set(other_seed.test_indices)
    assert mirrored.data == "faces64_mirrored" and mirrored.to_dict()["map_config"]["data"] == "faces64"
    for r in (held_out, other_seed, mirrored):
        assert 0 < r.m_mse[0] < r.baseline and r.n_test == 50
    assert mirrored.m_mse[0] != held_out.m_mse[0]


def test_the_task_runs_from_python(reloc_plugin, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default picture folder is relative: relocation/SOURCE-TARGET
    result = zoo.run("relocate", SRC, TGT, method="mean_only", fit="first", n_fit=40, n_pool=200, n_test=50,
                     batch_size=16)
    assert result["method"] == "mean_only" and result.to_dict()["options"]["n_pool"] == 200
    assert result["files"]["png"] == "relocation/vae.faces64-splitvae.faces64/relocation.png"
    assert (tmp_path / result["files"]["png"]).is_file()
    with pytest.raises(zoo.ZooError, match="unknown relocation map 'mean_onyl'; did you mean 'mean_only'"):
        zoo.run("relocate", SRC, TGT, method="mean_onyl")
