"""The disentanglement scores besides MIG, each against a straightforward re-implementation of disentanglement_lib's
loop on the same inputs, or against a closed form."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

import zoo

from zoo.data import get_dataset
from zoo.metrics import scores as S

DS = get_dataset("dsprites")


def noisy_identity(scale=0.1):
    """A representation z = factors + noise, the noise a deterministic function of the rows (so the chunked and the
    per-batch evaluation see the same codes)."""
    def represent(f):
        seed = int(np.abs(f).sum() * 7 + len(f)) % (2 ** 32)
        return f.astype(float) + np.random.default_rng(seed).normal(size=f.shape) * scale
    return represent


def per_row(represent):
    """Evaluate ``represent`` one row at a time, so the codes of a row never depend on how rows are batched."""
    return lambda f: np.concatenate([represent(f[i:i + 1]) for i in range(len(f))])


def test_beta_vae_score_matches_dlib_loop():
    rep = per_row(noisy_identity(0.5))
    rs = np.random.RandomState(0)
    feats, labels = [], []
    for _ in range(30):  # dlib's _generate_training_sample, one point at a time
        k = rs.randint(DS.num_factors)
        f1, f2 = DS.sample_factors(8, rs), DS.sample_factors(8, rs)
        f2[:, k] = f1[:, k]
        feats.append(np.mean(np.abs(rep(f1) - rep(f2)), axis=0))
        labels.append(k)
    ours, our_labels = S._beta_vae_points(DS, rep, 30, 8, np.random.RandomState(0))
    np.testing.assert_array_equal(our_labels, labels)
    np.testing.assert_allclose(ours, np.array(feats), rtol=0, atol=1e-12)


def test_beta_vae_score_separates_good_from_entangled():
    good = S.beta_vae_score(DS, noisy_identity(), num_train=300, num_eval=150, batch_size=16)
    mix = np.random.default_rng(0).normal(size=(5, 5))
    entangled = S.beta_vae_score(DS, lambda f: np.tanh(0.05 * f @ mix), num_train=300, num_eval=150, batch_size=16)
    assert good["eval_accuracy"] == 1.0
    assert entangled["eval_accuracy"] < good["eval_accuracy"]


def reference_factor_vae(rep, n, batch, rs, global_var, active):
    votes = np.zeros((DS.num_factors, len(global_var)), dtype=np.int64)
    for _ in range(n):
        k = rs.randint(DS.num_factors)
        f = DS.sample_factors(batch, rs)
        f[:, k] = f[0, k]
        local = np.var(rep(f), axis=0, ddof=1)
        votes[k, np.argmin(local[active] / global_var[active])] += 1
    return votes


def test_factor_vae_votes_match_dlib_loop():
    rep = per_row(noisy_identity(0.8))
    global_var = np.array([1.0, 3.0, 130.0, 85.0, 85.0, 1e-6])
    active = np.sqrt(global_var) >= 0.05
    rep6 = lambda f: np.hstack([rep(f), np.zeros((len(f), 1))])  # noqa: E731 - a pruned constant latent
    ref = reference_factor_vae(rep6, 40, 16, np.random.RandomState(3), global_var, active)
    ours = S._factor_vae_votes(DS, rep6, 40, 16, np.random.RandomState(3), global_var, active)
    np.testing.assert_array_equal(ours, ref)


def test_factor_vae_score_perfect_and_pruned():
    out = S.factor_vae_score(DS, lambda f: np.hstack([f.astype(float), np.zeros((len(f), 2))]), num_train=200,
                             num_eval=100, num_variance_estimate=1000, batch_size=16)
    assert out["train_accuracy"] == out["eval_accuracy"] == 1.0
    assert out["num_active_dims"] == 5  # the two constant latents are pruned (dlib would report 7)
    dead = S.factor_vae_score(DS, lambda f: np.zeros((len(f), 3)), num_train=10, num_eval=10,
                              num_variance_estimate=100)
    assert dead == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


def dlib_dci(r):
    """dlib's disentanglement/completeness, written with scipy.stats.entropy as dlib does."""
    per_code = 1.0 - sps.entropy(r.T + 1e-11, base=r.shape[1])
    per_factor = 1.0 - sps.entropy(r + 1e-11, base=r.shape[0])
    return (np.sum(per_code * r.sum(1) / r.sum()), np.sum(per_factor * r.sum(0) / r.sum()))


def test_dci_formulas_match_scipy_entropy():
    rng = np.random.default_rng(0)
    for r in (rng.random((10, 5)), np.eye(4)[:, :3], rng.random((6, 6)) ** 4):
        out = S.dci_from_importance(r)
        d, c = dlib_dci(r)
        assert out["disentanglement"] == pytest.approx(d, abs=1e-12)
        assert out["completeness"] == pytest.approx(c, abs=1e-12)
    uniform = S.dci_from_importance(np.ones((4, 4)))
    assert uniform["disentanglement"] == pytest.approx(0.0, abs=1e-9)
    assert uniform["completeness"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("mode", ["fast", "sklearn"])
def test_dci_on_codes(mode):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, size=(600, 2))
    z = np.hstack([y + rng.normal(size=y.shape) * 0.05, rng.normal(size=(600, 1))])  # 2 informative + 1 noise latent
    out = S.dci_from_codes(z[:400], y[:400], z[400:], y[400:], mode=mode)
    assert out["disentanglement"] > 0.8 and out["completeness"] > 0.8
    assert out["informativeness_test"] > 0.95
    imp = np.array(out["importance"])
    assert imp[0, 0] > imp[1, 0] and imp[1, 1] > imp[0, 1] and imp[2].sum() < 0.2
    # the factors' classifiers fitted two at a time give the same numbers as one after the other
    assert S.dci_from_codes(z[:400], y[:400], z[400:], y[400:], mode=mode, jobs=2) == out


def test_sap_continuous_is_squared_correlation_gap():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(500, 2))
    z = np.stack([y[:, 0] + 0.1 * rng.normal(size=500), y[:, 1] * 0.5 + y[:, 0], rng.normal(size=500)], 1)
    out = S.sap_from_codes(z, y, z, y, continuous_factors=True)
    r2 = np.array([[np.corrcoef(z[:, i], y[:, j])[0, 1] ** 2 for j in range(2)] for i in range(3)])
    np.testing.assert_allclose(out["score_matrix"], r2, atol=1e-12)
    top = np.sort(r2, 0)
    assert out["SAP_score"] == pytest.approx(np.mean(top[-1] - top[-2]), abs=1e-12)


def test_sap_discrete_rewards_one_latent_per_factor():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=(800, 2))
    good = np.hstack([y + rng.normal(size=y.shape) * 0.1, rng.normal(size=(800, 1))])
    dup = np.hstack([y[:, :1], y[:, :1], y[:, 1:]]) + rng.normal(size=(800, 3)) * 0.1
    # a binary factor: the informative latent is ~100 % accurate, an uninformative one ~50 % (balanced classes)
    assert S.sap_from_codes(good[:500], y[:500], good[500:], y[500:])["SAP_score"] > 0.45
    assert S.sap_from_codes(dup[:500], y[:500], dup[500:], y[500:])["SAP_score"] < 0.3  # factor 0 has no gap


def test_modularity_hand_cases():
    assert S.modularity_from_mi(np.eye(3)) == pytest.approx(1.0)
    # latent 0 carries two factors equally (1 − 1/1 = 0), latent 1 carries nothing (0 by definition)
    assert S.modularity_from_mi(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx(0.0)
    m = np.array([[0.9, 0.3, 0.0]])
    assert S.modularity_from_mi(m) == pytest.approx(1 - 0.09 / (0.81 * 2))


def test_explicitness_and_modularity_on_codes():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 5, size=(1500, 3))
    z = y + rng.normal(size=y.shape) * 0.05
    out = S.modularity_from_codes(z[:1000], y[:1000], z[1000:], y[1000:])
    assert out["modularity_score"] > 0.95
    assert out["explicitness_score_test"] > 0.9


def test_unsupervised_closed_forms():
    rho = 0.6
    cov = np.array([[1.0, rho], [rho, 1.0]])
    w = np.random.default_rng(5).normal(size=(2000, 2))
    w = (w - w.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(w, rowvar=False))).T  # sample cov exactly I
    z = w @ np.linalg.cholesky(cov).T
    out = S.unsupervised_from_codes(z)
    assert out["gaussian_total_correlation"] == pytest.approx(-0.5 * math.log(1 - rho ** 2), rel=1e-9)
    # W-correlation = 2 tr C − 2 tr √C for unit variances; √C has eigenvalues √(1 ± ρ)
    assert out["gaussian_wasserstein_correlation"] == pytest.approx(4 - 2 * (math.sqrt(1 + rho) + math.sqrt(1 - rho)),
                                                                   rel=1e-9)
    assert S.unsupervised_from_codes(w)["gaussian_total_correlation"] == pytest.approx(0.0, abs=1e-9)


def slow_chen_mig(mean, logvar, factors, sizes, z, samples):
    """A loop over samples with scipy.stats.norm, given the same posterior draws and sample choice."""
    def h(idx, pick):
        out = np.zeros(mean.shape[1])
        for s in pick:
            for j in range(mean.shape[1]):
                logp = sps.norm.logpdf(z[s, j], mean[idx, j], np.exp(0.5 * logvar[idx, j]))
                out[j] -= np.log(np.mean(np.exp(logp)))
        return out / len(pick)

    marginal = h(np.arange(len(mean)), samples(np.arange(len(mean))))
    mi = np.zeros((mean.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        cond = sum(h(idx, samples(idx)) * len(idx) / len(mean)
                   for v in np.unique(factors[:, k]) for idx in [np.flatnonzero(factors[:, k] == v)])
        mi[:, k] = np.clip(marginal - cond, 0, None)
    top = np.sort(mi / np.log(sizes), 0)[::-1]
    return np.mean(top[0] - top[1])


def test_chen_mig_matches_slow_reference():
    rng = np.random.default_rng(6)
    sizes = [3, 4]
    f = np.stack([rng.integers(0, s, 60) for s in sizes], 1)
    mean = np.hstack([f + 0.3 * rng.normal(size=f.shape), rng.normal(size=(60, 1))])
    logvar = np.log(rng.uniform(0.05, 0.5, size=mean.shape))
    out = S.chen_mig_from_posteriors(mean, logvar, f, sizes, num_samples=1000, seed=9)
    z = mean + np.exp(0.5 * logvar) * np.random.default_rng(9).standard_normal(mean.shape)  # the same draw
    ref = slow_chen_mig(mean, logvar, f, sizes, z, samples=lambda idx: idx)  # num_samples ≥ N: every point
    assert out["mig_chen"] == pytest.approx(ref, abs=1e-10)


def test_chen_mig_perfect_encoder_scores_near_one():
    rng = np.random.default_rng(7)
    f = np.stack([rng.integers(0, 6, 3000), rng.integers(0, 8, 3000)], 1)
    mean = np.hstack([f * 1.0, np.zeros((3000, 1))])  # two exact latents and an inactive one (posterior = prior)
    logvar = np.hstack([np.full((3000, 2), math.log(0.01 ** 2)), np.zeros((3000, 1))])
    out = S.chen_mig_from_posteriors(mean, logvar, f, [6, 8], num_samples=2000)
    assert out["mig_chen"] > 0.97
    dup = S.chen_mig_from_posteriors(np.hstack([mean, mean[:, :1]]), np.hstack([logvar, logvar[:, :1]]), f, [6, 8],
                                     num_samples=2000)
    assert dup["per_factor"][0] < 0.05  # a duplicated latent leaves no gap


def test_unknown_score_and_dci_mode_are_one_line_errors():
    with pytest.raises(zoo.ZooError, match="unknown score"):
        S.compute_scores(None, DS, scores=["dci", "irs"], represent=noisy_identity())
    with pytest.raises(zoo.ZooError, match="DCI mode"):
        S.dci_from_codes(np.zeros((4, 2)), np.zeros((4, 1)), np.zeros((4, 2)), np.zeros((4, 1)), mode="xgb")


def test_scores_cli_on_shipped_dsprites_vae(cli):
    result = cli("scores", "vae.dsprites", "--quick", "--only", "sap,modularity,unsupervised,mig_chen", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["scores"]) == {"sap", "modularity", "unsupervised", "mig_chen"}
    assert 0.0 <= out["summary"]["mig_chen"] <= 1.0
    assert 0.0 <= out["scores"]["sap"]["SAP_score"] <= 1.0
    assert 0.5 <= out["scores"]["modularity"]["explicitness_score_test"] <= 1.0
    assert out["headline"]["unsupervised"] == "gaussian_total_correlation"  # what the summary's number is
    shown = cli("scores", "vae.dsprites", "--quick", "--only", "unsupervised")
    assert shown.exit_code == 0 and "gaussian_total_correlation" in shown.output, shown.output
    bad = cli("scores", "vae.dsprites", "--only", "irs")
    assert bad.exit_code != 0 and "unknown score 'irs'" in bad.output and "Traceback" not in bad.output


# --- the code cache: each grid point encoded once, the codes those of encoding every row -----------------------------

class CountingEncoder(zoo.ZooModel):
    """A mean code that is a fixed function of the image (so any batching gives the same code)."""

    def __init__(self):
        super().__init__()
        self.image_spec = zoo.ImageSpec(1, (64, 64), dataset="dsprites")
        self.latent_spec = zoo.LatentSpec((3,))

    def encode(self, x):
        mass = x.flatten(1).sum(1, keepdim=True)
        cols = (x.sum(2).flatten(1) * torch.arange(64.0)).sum(1, keepdim=True) / mass.clamp(min=1)
        return torch.cat([mass, cols, (mass * 0.37).sin()], 1)


def _labelled_dsprites(tmp_path):
    """dSprites images saved as an .npy with 3 shape labels: many images per label row."""
    from zoo.data import dataset_for

    x, f = DS.sample(30, 0)
    np.save(tmp_path / "x.npy", x.numpy())
    (tmp_path / "labels.csv").write_text("shape\n" + "\n".join(str(int(v)) for v in f[:, 0]) + "\n")
    return dataset_for(data=f"npy:{tmp_path / 'x.npy'}", need_factors=True,
                       factors=str(tmp_path / "labels.csv"))


@pytest.mark.parametrize("case", ["dense", "per-call", "labelled"])
def test_code_cache_encodes_each_grid_point_once(case, tmp_path, monkeypatch):
    from zoo.metrics import _sampling

    model = CountingEncoder()
    if case == "per-call":  # a grid too large to keep: repeats are shared within one call only
        monkeypatch.setattr(_sampling, "DENSE_BYTES", 8)
    data = _labelled_dsprites(tmp_path) if case == "labelled" else DS
    rs = np.random.RandomState(0)
    calls = [data.sample_factors(40, rs) for _ in range(3)]
    calls[1][:20] = calls[0][:20]  # rows seen before
    calls[2] = np.concatenate([calls[2][:10]] * 4)  # rows repeated within a call
    cache = S.model_representation(model, data, batch_size=7)
    got = [cache(f) for f in calls]
    direct = [_sampling.encode_factors(model, data, f, batch_size=64, label=None) for f in calls]
    def whole_batches(rows: int) -> int:  # the cache fills the last batch of every call
        return -(-rows // 7) * 7

    if case == "labelled":  # images sharing a label take turns: nothing may be shared
        assert (cache.encoded, cache.drawn) == (3 * whole_batches(40), 120)
        return
    for g, d in zip(got, direct):
        np.testing.assert_array_equal(g, d)
        assert g.dtype == np.float64
    seen, new = set(), []  # rows each call encodes: all its distinct rows, or (dense) those no earlier call had
    for f in calls:
        rows = set(map(tuple, f))
        new.append(len(rows - seen) if case == "dense" else len(rows))
        seen |= rows
    assert (cache.encoded, cache.drawn) == (sum(map(whole_batches, new)), 120)
