"""FID: the Fréchet distance against scipy's matrix square root and the Gaussian closed form, zoo's Inception against
pytorch-fid's own code (random weights: the real ones cannot be downloaded here), the shipped feature networks, the
timm feature space, and the task end to end on a shipped model, with one-line refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from safetensors.torch import save_file

import zoo
from zoo import registry
from zoo.errors import WeightsError, ZooError
from zoo.metrics.fid import EPS, feature_statistics, frechet_distance, get_features, psd_sqrt, trace_sqrt_product
from zoo.metrics.inception import load_fid_inception, random_state_dict
from zoo.spec import TaskSpec


# The registration proposed for zoo/metrics/plugin.py; the registered spec is used once it exists.
def fid_spec() -> TaskSpec:
    return registry.tasks.get("fid").spec


def random_spd(d: int, seed: int, condition: float = 10.0, rank: int | None = None) -> np.ndarray:
    """A random covariance with eigenvalues log-spaced over ``condition`` (the last d − rank of them zero)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    w = np.logspace(0, -math.log10(condition), d)
    if rank is not None:
        w[rank:] = 0
    return (q * w) @ q.T


# --- the Fréchet distance -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("d, condition", [(2, 3.0), (16, 1e3), (64, 1e6)], ids=["2-d", "16-d", "64-d-ill"])
def test_psd_sqrt_matches_scipy_sqrtm(d, condition):
    sigma = random_spd(d, seed=d, condition=condition)
    ours = psd_sqrt(sigma)
    np.testing.assert_allclose(ours, scipy.linalg.sqrtm(sigma).real, atol=1e-10)
    np.testing.assert_allclose(ours @ ours, sigma, atol=1e-12)


@pytest.mark.parametrize("d, condition", [(2, 3.0), (16, 1e3), (64, 1e4)], ids=["2-d", "16-d", "64-d"])
def test_trace_sqrt_product_matches_scipy_sqrtm(d, condition):
    s1, s2 = random_spd(d, 1, condition), random_spd(d, 2, condition)
    reference = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    assert trace_sqrt_product(s1, s2) == pytest.approx(reference, rel=1e-9)


def test_identical_sets_give_zero():
    features = torch.randn(500, 32, generator=torch.Generator().manual_seed(0)) * 3 + 1
    stats = feature_statistics(features)
    result = frechet_distance(*stats, *stats)
    assert abs(result["fid"]) < 1e-9 and result["eps_offset"] == 0


def _closed_form_case(name: str):
    """(μ₁, Σ₁, μ₂, Σ₂, the closed-form FID written out for that case)."""
    d, rng = 8, np.random.default_rng(3)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    shift = float(np.sum((mu1 - mu2) ** 2))
    if name == "shift, same covariance":
        s = random_spd(d, 4, 100)
        return mu1, s, mu2, s, shift
    if name == "isotropic scales":
        return mu1, 4.0 * np.eye(d), mu2, 0.25 * np.eye(d), shift + d * (2.0 - 0.5) ** 2
    if name == "diagonal":
        a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
        return mu1, np.diag(a), mu2, np.diag(b), shift + float(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    s1, s2 = random_spd(d, 5, 50), random_spd(d, 6, 50)  # general: the formula with scipy's square root
    return mu1, s1, mu2, s2, shift + float(np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))


@pytest.mark.parametrize("case", ["shift, same covariance", "isotropic scales", "diagonal", "general"])
def test_gaussians_give_the_closed_form(case):
    mu1, s1, mu2, s2, expected = _closed_form_case(case)
    assert frechet_distance(mu1, s1, mu2, s2)["fid"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_samples_of_shifted_gaussians_approach_the_closed_form():
    """Features drawn from two known Gaussians: the estimate is near the closed form (finite n adds a small bias)."""
    g = torch.Generator().manual_seed(7)
    d, n = 4, 200_000
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    b = torch.randn(n, d, generator=g, dtype=torch.float64) * 2 + torch.tensor([1.0, 0, 0, 0], dtype=torch.float64)
    expected = 1.0 + d * (1 - 2) ** 2  # ‖Δμ‖² + tr(I + 4I − 2·2I)
    assert frechet_distance(*feature_statistics(a), *feature_statistics(b))["fid"] == pytest.approx(expected, rel=0.01)


def test_singular_covariances_are_exact_without_an_offset():
    d = 10
    s = random_spd(d, 8, rank=6)  # four constant features
    result = frechet_distance(np.zeros(d), s, np.full(d, 0.5), s)
    assert result["eps_offset"] == 0
    # the shared covariance cancels; zero eigenvalues computed as ±1e-16 have roots of 1e-8 (scipy's sqrtm alike)
    assert result["fid"] == pytest.approx(d * 0.25, abs=1e-6)


def test_a_failed_square_root_gets_pytorch_fids_offset(monkeypatch):
    """pytorch-fid adds ε to both diagonals when the square root of the product is not finite; so does zoo."""
    from zoo.metrics import fid

    calls = []

    def fails_first(s1, s2):
        calls.append(s1.copy())
        return math.nan if len(calls) == 1 else trace_sqrt_product(s1, s2)

    monkeypatch.setattr(fid, "trace_sqrt_product", fails_first)
    d = 6
    s1, s2 = random_spd(d, 1), random_spd(d, 2)
    result = frechet_distance(np.zeros(d), s1, np.ones(d), s2)
    assert result["eps_offset"] == EPS and len(calls) == 2
    np.testing.assert_allclose(calls[1], s1 + EPS * np.eye(d))
    expected = d + np.trace(s1 + s2 + 2 * EPS * np.eye(d)) - 2 * np.trace(
        scipy.linalg.sqrtm((s1 + EPS * np.eye(d)) @ (s2 + EPS * np.eye(d)))).real
    assert result["fid"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("case, match", [
    ("not symmetric", "not symmetric"),
    ("negative eigenvalue", "negative eigenvalue"),
    ("shapes differ", "must be a finite 3×3 matrix"),
    ("NaN features", "NaN or infinite"),
])
def test_bad_statistics_are_one_line(case, match):
    mu, s = np.zeros(3), np.eye(3)
    with pytest.raises(ZooError, match=match) as err:
        if case == "not symmetric":
            frechet_distance(mu, s + np.triu(np.ones((3, 3)), 1), mu, s)
        elif case == "negative eigenvalue":
            frechet_distance(mu, np.diag([1.0, 1.0, -0.5]), mu, s)
        elif case == "shapes differ":
            frechet_distance(mu, s, mu, np.eye(4))
        else:
            feature_statistics(torch.tensor([[0.0, float("nan")], [1.0, 2.0]]))
    assert "\n" not in str(err.value)


# --- parity with pytorch-fid (its own code, random weights) -------------------------------------------------------
@pytest.fixture(scope="module")
def pytorch_fid_pair(tmp_path_factory):
    """pytorch-fid's InceptionV3([3]) built offline (its download returns our random state dict) and zoo's module
    loaded from the same weights written as .pth and as .safetensors."""
    inception = pytest.importorskip("pytorch_fid.inception", reason="pytorch-fid is not installed "
                                                                    "(pip install pytorch-fid==0.3.0)")
    state = random_state_dict(seed=0)
    saved = inception.load_state_dict_from_url
    inception.load_state_dict_from_url = lambda *args, **kwargs: state
    try:
        theirs = inception.InceptionV3([3]).eval()  # use_fid_inception=True: their FIDInceptionA/C/E_1/E_2
    finally:
        inception.load_state_dict_from_url = saved
    root = tmp_path_factory.mktemp("fid_weights")
    torch.save(state, root / "random_inception.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, root / "random_inception.safetensors")
    return theirs, root


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_inception_matches_pytorch_fid(pytorch_fid_pair, fmt):
    theirs, root = pytorch_fid_pair
    ours = load_fid_inception(root / f"random_inception.{fmt}")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))  # resized to 299 by both
    with torch.no_grad():
        expected, got = theirs(x)[0].flatten(1), ours.embed(x)
    assert got.shape == (2, 2048)
    assert expected.abs().max() > 0.1  # the random weights do not collapse the features
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # pytorch-fid's call into scipy
def test_fid_of_both_networks_features_matches_pytorch_fid(pytorch_fid_pair, monkeypatch):
    """Features of two image sets by each network, statistics and Fréchet distance by each side's own code. On the
    64 pool3 features that vary most (random weights leave many constant): scipy's sqrtm of 2048-d matrices takes a
    minute (all 2048 are compared in benchmarks/results/fid_reference.txt)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    from zoo.data import get_dataset

    theirs, root = pytorch_fid_pair
    monkeypatch.setattr(theirs, "resize_input", False)  # 80×80 as is: a fifteenth of the work of 299×299
    ours = load_fid_inception(root / "random_inception.pth")
    faces, _ = get_dataset("faces64").sample(160, 5)
    faces = torch.nn.functional.interpolate(faces, size=(80, 80), mode="bilinear", align_corners=False).clamp(0, 1)
    sets = (faces[:80], faces[80:].flip(3) * 0.7)  # real faces vs mirrored, darker ones
    with torch.no_grad():
        theirs_f, ours_f = [theirs(x)[0].flatten(1) for x in sets], [ours(x, resize=False) for x in sets]
    keep = torch.cat(ours_f).std(0).argsort(descending=True)[:64]
    theirs_f, ours_f = [f[:, keep].double().numpy() for f in theirs_f], [f[:, keep] for f in ours_f]
    expected = calculate_frechet_distance(*[t for f in theirs_f for t in (f.mean(0), np.cov(f, rowvar=False))])
    got = frechet_distance(*feature_statistics(ours_f[0]), *feature_statistics(ours_f[1]))
    assert expected > 1 and got["fid"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # pytorch-fid's call into scipy
@pytest.mark.parametrize("rank", [None, 40], ids=["full-rank", "singular"])
def test_frechet_distance_matches_pytorch_fid(rank):
    fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid is not installed")
    d = 48
    mu1, mu2 = np.random.default_rng(0).normal(size=(2, d))
    s1, s2 = random_spd(d, 10, 1e3, rank), random_spd(d, 11, 1e3, rank)
    expected = fid_score.calculate_frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2)["fid"] == pytest.approx(expected, rel=1e-7)


# --- inception weights files --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth",
                                  "my_inception.pth"])
def test_inception_file_under_pytorch_fids_name_must_be_its_bytes(tmp_path, name):
    torch.save(random_state_dict(seed=1), tmp_path / name)
    if name.startswith("my_"):  # any other name: loaded, and marked as not the published weights
        net = load_fid_inception(tmp_path / name)
        assert not net.published and list(net.files) == [str(tmp_path / name)]
    else:
        with pytest.raises(WeightsError, match="is not pytorch-fid's file .*download it again"):
            load_fid_inception(tmp_path / name)


def test_inception_file_that_does_not_fit_names_the_tensor(tmp_path):
    state = {k: v for k, v in random_state_dict(seed=1).items() if not k.startswith("Mixed_7c.")}
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match="Mixed_7c"):
        load_fid_inception(tmp_path / "partial.pth")


@pytest.mark.parametrize("change, error", [
    ("drop the batch-norm counters, add an aux head", None),
    ("add a tensor pool3 does not have", "unexpected key"),
])
def test_inception_file_layout(tmp_path, change, error):
    """Classifier heads (``fc``, ``AuxLogits``) and batch-norm counters may be in the file or not; anything else
    must fit exactly."""
    state = {k: v for k, v in random_state_dict(seed=1).items() if not k.endswith("num_batches_tracked")}
    state["AuxLogits.fc.weight"] = torch.zeros(1008, 768)
    if error:
        state["Mixed_8a.conv.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "weights.pth")
    if error:
        with pytest.raises(WeightsError, match=error):
            load_fid_inception(tmp_path / "weights.pth")
    else:
        assert load_fid_inception(tmp_path / "weights.pth").Mixed_7c.max_pool


# --- feature spaces -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["faces64", "dsprites"])
def test_shipped_feature_net_loads_and_embeds(dataset):
    from zoo.data import get_dataset

    net = get_features("auto", dataset=dataset)
    assert net.name == f"{dataset}-features" and net.dim == 128
    images, _ = get_dataset(dataset).sample(400, 0)
    with torch.no_grad():
        f = net.embed(images)
    assert f.shape == (400, 128) and torch.isfinite(f).all()
    # standardised on held-out images: every feature about zero-mean and unit-variance on other images too
    assert f.mean(0).abs().max() < 0.4 and 0.7 < f.std(0).min() and f.std(0).max() < 1.3
    (path, digest), = net.files.items()
    assert path.endswith("model.safetensors") and len(digest) == 64


def test_timm_backbone_features_are_its_pooled_features(tmp_path):
    """``timm:resnet18`` gives what timm's own classifier-less resnet18 gives on the resized, normalised images."""
    import timm

    torch.manual_seed(0)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    save_file(state, tmp_path / "resnet18.safetensors")
    net = get_features("timm:resnet18", str(tmp_path / "resnet18.safetensors"))
    reference = timm.create_model("resnet18", pretrained=False, num_classes=0).eval()
    reference.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")})
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(2))  # grey and small: repeated, resized
    big = torch.nn.functional.interpolate(x.expand(-1, 3, -1, -1), size=(224, 224), mode="bilinear",
                                          align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # timm's ImageNet defaults for resnet18
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        got, expected = net.embed(x), reference((big - mean) / std)
    assert net.dim == 512 and got.shape == (2, 512)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("features, weights, match", [
    ("inception", None, "needs --features-weights"),
    ("inception", "/nonexistent/pt_inception.pth", "no such file"),
    ("timm:resnet18", None, "needs --features-weights"),
    ("faces64-features", "/some/file", "ships with zoo"),
    ("imagenet", None, "unknown feature space"),
])
def test_feature_space_refusals_are_one_line(features, weights, match):
    with pytest.raises(ZooError, match=match) as err:
        get_features(features, weights, dataset="faces64")
    assert "\n" not in str(err.value)


def test_auto_without_a_shipped_net_says_what_to_pass():
    with pytest.raises(ZooError, match="ships no feature network for 'celeba'.*--features inception"):
        get_features("auto", dataset="celeba")


# --- the task -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vae_faces64():
    return zoo.create_model("vae.faces64")


@pytest.mark.parametrize("mode", ["samples", "reconstruction", "data"])
def test_fid_task_on_a_shipped_model(vae_faces64, mode):
    result = zoo.run(fid_spec(), vae_faces64, n=300, mode=mode, batch_size=100)
    assert math.isfinite(result["fid"]) and result["fid"] > 0
    assert result["fid"] == pytest.approx(result["mean_term"] + result["cov_term"])
    assert (result["n"], result["features"], result["feature_dim"], result["mode"]) == \
        (300, "faces64-features", 128, mode)
    assert result.to_dict()["data"] == "faces64" and result["image_size"] == [64, 64]


def test_fid_task_is_deterministic_and_samples_are_further_than_the_floor(vae_faces64):
    samples = [zoo.run(fid_spec(), vae_faces64, n=300, batch_size=b)["fid"] for b in (100, 64)]
    floor = zoo.run(fid_spec(), vae_faces64, n=300, mode="data")["fid"]
    assert samples[0] == pytest.approx(samples[1], rel=1e-5)  # the batch size changes nothing
    assert samples[0] > 2 * floor


def test_fid_task_refuses_too_few_images_before_any_work(vae_faces64):
    with pytest.raises(ZooError, match=r"128-d faces64-features .* at least 129 images per set.*got n = 100"):
        zoo.run(fid_spec(), vae_faces64, n=100)


def test_zoo_fid_command_prints_value_with_features_and_n():
    from click.testing import CliRunner
    from zoo_cli.main import make_cli
    from zoo_cli.run import task_command

    app = make_cli()
    if "fid" not in app.commands:
        app.add_command(task_command(fid_spec(), "fid"))
    ok = CliRunner().invoke(app, ["fid", "vae.faces64", "--n", "200", "--mode", "data"])
    assert ok.exit_code == 0, ok.output
    assert "faces64-features, 200 vs 200 images" in ok.stderr and ok.stderr.startswith("FID ")
    bad = CliRunner().invoke(app, ["fid", "vae.faces64", "--n", "50"])
    lines = bad.stderr.strip().splitlines()
    assert bad.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error: "), bad.stderr
    assert "at least 129 images" in lines[0] and "Traceback" not in bad.output
