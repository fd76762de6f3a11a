"""The distance analysis of the seed thesis (Table 4.2): its arithmetic against numpy, determinism, the CLI."""

import json

import numpy as np
import pytest
import torch

import zoo
from zoo.metrics.stats import distance_analysis, pair_distances


def test_pair_distances_against_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 5)), rng.normal(size=(20, 5))
    partner, nearest = rng.integers(0, 20, 20), rng.integers(0, 20, 20)
    got = pair_distances(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(partner),
                         torch.from_numpy(nearest))
    rnd = np.mean([np.linalg.norm(a[i] - a[partner[i]]) for i in range(20)])
    noise = np.mean([np.linalg.norm(a[i] - b[i]) for i in range(20)])
    near = np.mean([np.linalg.norm(a[i] - a[nearest[i]]) for i in range(20)])
    assert got == pytest.approx({"random": rnd, "noise": noise, "near": near, "noise_ratio": noise / rnd,
                                 "near_ratio": near / rnd}, rel=1e-12)


def test_distance_analysis_is_deterministic_and_ordered():
    model = zoo.create_model("vae", pretrained=False, latent_dim=8, image_size=16, widths=[8, 8], hidden=16,
                             channels=3, dataset="faces64")
    a = distance_analysis(model, n=60, seed=3)
    assert a == distance_analysis(model, n=60, seed=3)
    assert a != distance_analysis(model, n=60, seed=4)
    img = a["image_pca"]
    assert img["noise"] < img["near"] < img["random"]  # ±0.05 noise is a small step; a neighbour is closer than chance
    assert a["latent_dim"] == 8


def test_stats_cli_with_distances(cli):
    out = cli("stats", "vae", "--n", "50", "--distances", "--json")
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)["distances"]
    assert set(d["latent"]) == {"random", "noise", "near", "noise_ratio", "near_ratio"}
    assert 0 < d["latent"]["noise_ratio"] < 1
