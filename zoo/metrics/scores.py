"""The standard disentanglement scores besides MIG, with disentanglement_lib's algorithms and study defaults
(Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of Disentangled
Representations"; ``evaluation/metrics/*.py`` and ``unsupervised_study_v1/metric_configs``):

- β-VAE score (Higgins et al. 2017): accuracy of a logistic regression predicting which factor two batches share from
  the mean |z₁ − z₂| of the pair; 64 pairs per point, 10,000 train / 5,000 eval points.
- FactorVAE score (Kim & Mnih 2018): with one factor fixed over 64 samples, the latent of least normalised variance
  votes for that factor; accuracy of the majority-vote classifier. Latents with std < 0.05 are pruned.
- DCI (Eastwood & Williams 2018): importances R (latents × factors) from one gradient-boosted classifier per factor
  (``mode="sklearn"``: sklearn's ``GradientBoostingClassifier()``, dlib's choice, ~10 min per dSprites model on 2
  cores) or from a random forest (``mode="fast"``, as in Eastwood & Williams' own experiments; not dlib's numbers).
  Disentanglement and completeness are 1 − entropy of R's rows / columns, weighted by importance; informativeness
  is the classifiers' mean accuracy (dlib reports accuracy, not error).
- SAP (Kumar et al. 2018): per (latent, factor) the test accuracy of ``LinearSVC(C=0.01, class_weight="balanced")``
  on that single latent; mean over factors of the gap between the best two latents.
- Modularity and explicitness (Ridgeway & Mozer 2018): modularity from the same discretised MI matrix as MIG;
  explicitness = ROC-AUC of a logistic regression per factor on standardised codes.
- Unsupervised scores (dlib ``unsupervised_metrics``): Gaussian total correlation and Wasserstein correlation of the
  codes' covariance, and the mean discrete MI between pairs of latents.
- Chen et al.'s MIG (2018, "Isolating Sources of Disentanglement in VAEs"), the sampling-based estimator of I(z_j; v_k)
  under q(z|x), normalised by log |V_k| (key ``mig_chen``); not comparable with dlib's ``discrete_mig``.

Every score draws from its own ``np.random.RandomState(seed)`` in dlib's order (seed 0 reproduces dlib's stream
given the same representation). Images are encoded through :mod:`zoo.batching` in the run's batch size, each grid point
once (:class:`~zoo.metrics._sampling.CodeCache`), which changes a code in its last float bit at most.
The estimators take a ``represent`` function (factor rows → codes), so they also run on synthetic representations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zoo.errors import ZooError
from zoo.metrics.mig import histogram_discretize, mutual_info_matrix

Represent = Callable[[np.ndarray], np.ndarray]  # factor rows (n, K) → codes (n, D), float64

DLIB = {"num_train": 10000, "num_eval": 5000, "num_variance_estimate": 10000}
QUICK = {"num_train": 1000, "num_eval": 500, "num_variance_estimate": 2000}
SCORES = ("beta_vae", "factor_vae", "dci", "sap", "modularity", "unsupervised")
ENCODE_CHUNK = 4096  # images rendered and encoded at a time by the pair/group-based scores


def _sklearn():
    try:
        import sklearn
    except ImportError:  # pragma: no cover - a dependency; this protects partial installs
        raise ZooError("these scores need scikit-learn: pip install scikit-learn") from None
    import warnings

    import sklearn.ensemble
    import sklearn.exceptions

    # dlib's default-iteration classifiers often stop at max_iter; the scores are defined with those defaults, so the
    # warning would only be noise on every run
    warnings.filterwarnings("ignore", category=sklearn.exceptions.ConvergenceWarning)
    import sklearn.linear_model
    import sklearn.metrics
    import sklearn.preprocessing
    import sklearn.svm
    return sklearn


def factor_code(dataset, represent: Represent, n: int, rs: np.random.RandomState,
                batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """dlib's ``generate_batch_factor_code``: codes (n, D) and factors (n, K), factors drawn ``batch_size`` at a time."""
    from zoo.metrics._sampling import sample_factors_stream

    factors = sample_factors_stream(dataset, n, rs, batch_size)
    return represent(factors), factors


# --- β-VAE score -----------------------------------------------------------------------------------------------------

def _beta_vae_points(dataset, represent: Represent, n: int, batch_size: int,
                     rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (feature, label) points: label k, feature mean|z(x₁) − z(x₂)| over ``batch_size`` pairs sharing factor k."""
    per_chunk = max(1, ENCODE_CHUNK // (2 * batch_size))
    features, labels = [], []
    for lo in range(0, n, per_chunk):
        firsts, seconds = [], []
        for _ in range(min(per_chunk, n - lo)):  # the RNG calls of dlib's _generate_training_sample, in order
            k = rs.randint(dataset.num_factors)
            f1, f2 = dataset.sample_factors(batch_size, rs), dataset.sample_factors(batch_size, rs)
            f2[:, k] = f1[:, k]
            labels.append(k)
            firsts.append(f1)
            seconds.append(f2)
        m = len(firsts)
        z = represent(np.concatenate(firsts + seconds)).reshape(2, m, batch_size, -1)
        features.append(np.abs(z[0] - z[1]).mean(1))
    return np.concatenate(features), np.asarray(labels)


def beta_vae_score(dataset, represent: Represent, *, num_train: int = 10000, num_eval: int = 5000,
                   batch_size: int = 64, seed: int = 0) -> dict[str, float]:
    """dlib's ``beta_vae_sklearn``: keys ``train_accuracy``, ``eval_accuracy``."""
    sk = _sklearn()
    rs = np.random.RandomState(seed)
    x_train, y_train = _beta_vae_points(dataset, represent, num_train, batch_size, rs)
    x_eval, y_eval = _beta_vae_points(dataset, represent, num_eval, batch_size, rs)
    clf = sk.linear_model.LogisticRegression(random_state=rs).fit(x_train, y_train)
    return {"train_accuracy": float(np.mean(clf.predict(x_train) == y_train)),
            "eval_accuracy": float(np.mean(clf.predict(x_eval) == y_eval))}


# --- FactorVAE score -------------------------------------------------------------------------------------------------

def _factor_vae_votes(dataset, represent: Represent, n: int, batch_size: int, rs: np.random.RandomState,
                      global_var: np.ndarray, active: np.ndarray) -> np.ndarray:
    """votes[k, d]: how often latent d had the least normalised variance while factor k was held fixed.

    As in dlib, d indexes the *active* latents but votes go into columns of all D; the relabelling is the same for
    train and eval, so the accuracy is unaffected."""
    votes = np.zeros((dataset.num_factors, len(global_var)), dtype=np.int64)
    per_chunk = max(1, ENCODE_CHUNK // batch_size)
    for lo in range(0, n, per_chunk):
        ks, groups = [], []
        for _ in range(min(per_chunk, n - lo)):
            k = rs.randint(dataset.num_factors)
            f = dataset.sample_factors(batch_size, rs)
            f[:, k] = f[0, k]
            ks.append(k)
            groups.append(f)
        z = represent(np.concatenate(groups)).reshape(len(groups), batch_size, -1)
        local_var = z.var(axis=1, ddof=1)
        argmin = np.argmin(local_var[:, active] / global_var[active], axis=1)
        np.add.at(votes, (np.asarray(ks), argmin), 1)
    return votes


def factor_vae_score(dataset, represent: Represent, *, num_train: int = 10000, num_eval: int = 5000,
                     num_variance_estimate: int = 10000, batch_size: int = 64, prune_threshold: float = 0.05,
                     seed: int = 0) -> dict[str, float]:
    """dlib's ``factor_vae_score``: keys ``train_accuracy``, ``eval_accuracy``, ``num_active_dims`` (here the real
    count of active latents; dlib's reports D whatever the pruning)."""
    rs = np.random.RandomState(seed)
    z = represent(dataset.sample_factors(num_variance_estimate, rs))
    global_var = z.var(axis=0, ddof=1)
    active = np.sqrt(global_var) >= prune_threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    train = _factor_vae_votes(dataset, represent, num_train, batch_size, rs, global_var, active)
    classifier = np.argmax(train, axis=0)
    cols = np.arange(train.shape[1])
    evals = _factor_vae_votes(dataset, represent, num_eval, batch_size, rs, global_var, active)
    return {"train_accuracy": float(train[classifier, cols].sum() / train.sum()),
            "eval_accuracy": float(evals[classifier, cols].sum() / evals.sum()),
            "num_active_dims": int(active.sum())}


# --- DCI -------------------------------------------------------------------------------------------------------------

def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    """scipy.stats.entropy of each row of ``p`` (normalised first), in base ``base``."""
    p = p / p.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(1) / np.log(base)


def dci_from_importance(importance: np.ndarray) -> dict[str, float]:
    """Disentanglement and completeness of an importance matrix R (latents × factors), dlib's formulas (1e-11 added
    before the entropies; an all-zero R weights codes/factors uniformly)."""
    r = np.abs(np.asarray(importance, dtype=np.float64))
    d, k = r.shape
    weights = r if r.sum() > 0 else np.ones_like(r)
    per_code = 1.0 - _entropy_rows(r + 1e-11, k) if k > 1 else np.ones(d)
    per_factor = 1.0 - _entropy_rows(r.T + 1e-11, d) if d > 1 else np.ones(k)
    return {"disentanglement": float((per_code * weights.sum(1) / weights.sum()).sum()),
            "completeness": float((per_factor * weights.sum(0) / weights.sum()).sum())}


def _fit_factor(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, mode: str,
                seed: int) -> tuple[np.ndarray, float, float]:
    """One factor's DCI classifier: its feature importances and its train and test accuracy."""
    sk = _sklearn()
    if mode == "sklearn":
        clf = sk.ensemble.GradientBoostingClassifier(random_state=seed)
    else:
        clf = sk.ensemble.RandomForestClassifier(n_estimators=100, max_features=None, min_samples_leaf=5,
                                                 random_state=seed, n_jobs=1)
    clf.fit(z_train, y_train)
    return (np.abs(clf.feature_importances_), float(np.mean(clf.predict(z_train) == y_train)),
            float(np.mean(clf.predict(z_test) == y_test)))


def dci_from_codes(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, *,
                   mode: str = "sklearn", seed: int = 0, jobs: int | None = None) -> dict[str, Any]:
    """DCI of codes (n, D) against factors (n, K). ``mode``: "sklearn" (dlib: ``GradientBoostingClassifier()``,
    here with ``random_state=seed`` so ties break the same way every run) or "fast" (random forest of 100 trees).
    The K classifiers are independent and seeded, so they are fitted ``jobs`` at a time (default: torch's thread
    count, i.e. the cores zoo was given; sklearn's gradient boosting uses one core per fit) with identical results."""
    import torch
    from joblib import Parallel, delayed

    if mode not in ("sklearn", "fast"):
        raise ZooError(f"DCI mode must be sklearn or fast, got {mode!r}")
    k = y_train.shape[1]
    jobs = max(1, min(k, jobs or torch.get_num_threads()))
    fits = Parallel(n_jobs=jobs, backend="loky" if jobs > 1 else "sequential")(
        delayed(_fit_factor)(z_train, y_train[:, j], z_test, y_test[:, j], mode, seed) for j in range(k))
    importance = np.stack([f[0] for f in fits], axis=1)
    return {**dci_from_importance(importance), "informativeness_train": float(np.mean([f[1] for f in fits])),
            "informativeness_test": float(np.mean([f[2] for f in fits])), "importance": importance.tolist(),
            "mode": mode}


def dci(dataset, represent: Represent, *, num_train: int = 10000, num_eval: int = 5000, mode: str = "sklearn",
        seed: int = 0) -> dict[str, Any]:
    rs = np.random.RandomState(seed)
    z_train, y_train = factor_code(dataset, represent, num_train, rs)
    z_test, y_test = factor_code(dataset, represent, num_eval, rs)
    return dci_from_codes(z_train, y_train, z_test, y_test, mode=mode, seed=seed)


# --- SAP -------------------------------------------------------------------------------------------------------------

def sap_from_codes(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, *,
                   continuous_factors: bool = False) -> dict[str, Any]:
    """SAP score: S[d, k] = test accuracy of a linear SVM on latent d alone (or, for continuous factors, the squared
    correlation); mean over factors of the gap between the two highest entries of S[:, k]."""
    if z_train.shape[1] < 2:
        raise ZooError("SAP needs at least two latent dimensions")
    d, k = z_train.shape[1], y_train.shape[1]
    s = np.zeros((d, k))
    for i in range(d):
        for j in range(k):
            if continuous_factors:
                c = np.cov(z_train[:, i], y_train[:, j], ddof=1)
                s[i, j] = c[0, 1] ** 2 / (c[0, 0] * c[1, 1]) if c[0, 0] > 1e-12 else 0.0
            else:
                svm = _sklearn().svm.LinearSVC(C=0.01, class_weight="balanced")
                svm.fit(z_train[:, i:i + 1], y_train[:, j])
                s[i, j] = np.mean(svm.predict(z_test[:, i:i + 1]) == y_test[:, j])
    top = np.sort(s, axis=0)
    return {"SAP_score": float(np.mean(top[-1] - top[-2])), "score_matrix": s.tolist()}


def sap(dataset, represent: Represent, *, num_train: int = 10000, num_eval: int = 5000,
        continuous_factors: bool = False, seed: int = 0) -> dict[str, Any]:
    rs = np.random.RandomState(seed)
    z_train, y_train = factor_code(dataset, represent, num_train, rs)
    z_test, y_test = factor_code(dataset, represent, num_eval, rs)
    return sap_from_codes(z_train, y_train, z_test, y_test, continuous_factors=continuous_factors)


# --- modularity and explicitness -------------------------------------------------------------------------------------

def modularity_from_mi(mi: np.ndarray) -> float:
    """Ridgeway & Mozer's modularity of an MI matrix (latents × factors): per latent 1 − (Σm² − max m²)/(max m²·(K−1)),
    0 for a latent with no information; mean over latents."""
    sq = np.square(np.asarray(mi, dtype=np.float64))
    top = sq.max(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - (sq.sum(1) - top) / (top * (sq.shape[1] - 1.0))
    return float(np.where(top == 0, 0.0, score).mean())


def modularity_from_codes(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
                          num_bins: int = 20) -> dict[str, float]:
    sk = _sklearn()
    mi = mutual_info_matrix(histogram_discretize(z_train, num_bins), y_train)
    mean, std = z_train.mean(0), z_train.std(0)
    std = np.where(std > 0, std, 1.0)  # dlib divides by zero on a constant latent; a constant stays constant here
    zn_train, zn_test = (z_train - mean) / std, (z_test - mean) / std
    auc_train, auc_test = [], []
    for j in range(y_train.shape[1]):
        clf = sk.linear_model.LogisticRegression().fit(zn_train, y_train[:, j])
        for z, y, out in ((zn_train, y_train[:, j], auc_train), (zn_test, y_test[:, j], auc_test)):
            onehot = sk.preprocessing.MultiLabelBinarizer().fit_transform(y[:, None])
            out.append(sk.metrics.roc_auc_score(onehot, clf.predict_proba(z)))
    return {"modularity_score": modularity_from_mi(mi), "explicitness_score_train": float(np.mean(auc_train)),
            "explicitness_score_test": float(np.mean(auc_test))}


def modularity(dataset, represent: Represent, *, num_train: int = 10000, num_eval: int = 5000,
               seed: int = 0) -> dict[str, float]:
    rs = np.random.RandomState(seed)
    z_train, y_train = factor_code(dataset, represent, num_train, rs)
    z_test, y_test = factor_code(dataset, represent, num_eval, rs)
    return modularity_from_codes(z_train, y_train, z_test, y_test)


# --- unsupervised ----------------------------------------------------------------------------------------------------

def unsupervised_from_codes(z: np.ndarray, num_bins: int = 20) -> dict[str, float]:
    """dlib's ``unsupervised_metrics`` of codes (n, D): Gaussian TC = ½(Σ log diag C − log det C), Wasserstein
    correlation 2·tr C − 2·tr √(diag(C)^{1/2} C diag(C)^{1/2}) (and divided by tr C), mean off-diagonal discrete MI."""
    from scipy import linalg

    c = np.cov(z, rowvar=False)
    diag = np.diag(c)
    _, logdet = np.linalg.slogdet(c)
    root = linalg.sqrtm(c * diag[None, :])  # dlib's sqrtm(C ⊙ diag broadcast by rows)
    wasserstein = float(2 * np.trace(c) - 2 * np.real(np.trace(root)))
    codes = histogram_discretize(z, num_bins)
    mi = mutual_info_matrix(codes, codes)
    d = len(c)
    return {"gaussian_total_correlation": float(0.5 * (np.log(diag).sum() - logdet)),
            "gaussian_wasserstein_correlation": wasserstein,
            "gaussian_wasserstein_correlation_norm": wasserstein / float(np.trace(c)),
            "mutual_info_score": float((mi.sum() - np.trace(mi)) / (d * d - d)) if d > 1 else 0.0}


def unsupervised(dataset, represent: Represent, *, num_train: int = 10000, seed: int = 0) -> dict[str, float]:
    z, _ = factor_code(dataset, represent, num_train, np.random.RandomState(seed))
    return unsupervised_from_codes(z)


# --- Chen et al.'s MIG -----------------------------------------------------------------------------------------------

def _gaussian_entropy_estimate(samples: np.ndarray, mean: np.ndarray, logvar: np.ndarray,
                               chunk: int = 64) -> np.ndarray:
    """Per-dimension −E[log q(z_j)] for the mixture q(z_j) = 1/N Σ_n N(z_j; μ_nj, σ²_nj), estimated with the
    ``samples`` (S, D) drawn from it; computed in float64 torch in chunks of samples (S·N·D work)."""
    import torch

    mu, lv = torch.from_numpy(mean), torch.from_numpy(logvar)
    inv_var = torch.exp(-lv)
    log_norm = -0.5 * (lv + np.log(2 * np.pi))
    total = torch.zeros(mean.shape[1], dtype=torch.float64)
    for lo in range(0, len(samples), chunk):
        s = torch.from_numpy(samples[lo:lo + chunk])[:, None, :]  # (s, 1, D)
        log_q = log_norm - 0.5 * (s - mu).square() * inv_var  # (s, N, D)
        total -= (torch.logsumexp(log_q, dim=1) - np.log(len(mean))).sum(0)
    return (total / len(samples)).numpy()


def chen_mig_from_posteriors(mean: np.ndarray, logvar: np.ndarray, factors: np.ndarray, factor_sizes: Sequence[int],
                             *, num_samples: int = 10000, seed: int = 0) -> dict[str, Any]:
    """Chen et al.'s MIG from Gaussian posteriors (N, D) of points with ``factors`` (N, K).

    One z ~ q(z|x_n) per point; H(z_j) is estimated on up to ``num_samples`` of them against the mixture over all N
    points, H(z_j | v_k) as the average over values v of the same estimate restricted to the points with v_k = v.
    I = H(z_j) − H(z_j | v_k), clipped at 0, normalised by log |V_k|; MIG = mean over factors of the top-two gap."""
    rng = np.random.default_rng(seed)
    mean, logvar = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    z = mean + np.exp(0.5 * logvar) * rng.standard_normal(mean.shape)

    def entropy(idx: np.ndarray) -> np.ndarray:
        pick = idx if len(idx) <= num_samples else rng.choice(idx, num_samples, replace=False)
        return _gaussian_entropy_estimate(z[pick], mean[idx], logvar[idx])

    if mean.shape[1] < 2:
        raise ZooError("MIG needs at least two latent dimensions")
    sizes = np.asarray(factor_sizes)
    if (sizes < 2).any():
        raise ZooError("Chen's MIG is undefined for a factor with a single value; select the varying factors")
    marginal = entropy(np.arange(len(mean)))
    mi = np.zeros((mean.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        cond = np.zeros(mean.shape[1])
        values, counts = np.unique(factors[:, k], return_counts=True)
        for v, c in zip(values, counts):
            cond += entropy(np.flatnonzero(factors[:, k] == v)) * c / len(mean)
        mi[:, k] = np.clip(marginal - cond, 0.0, None)
    normed = mi / np.log(sizes)[None, :]
    top = np.sort(normed, axis=0)[::-1]
    gaps = top[0] - top[1]
    return {"mig_chen": float(gaps.mean()), "per_factor": gaps.tolist(), "mutual_info": mi.tolist(),
            "marginal_entropy": marginal.tolist()}


def chen_mig(model, dataset, *, factors: Sequence[str] | None = None, num_points: int | None = 10000,
             num_samples: int = 10000, seed: int = 0, batch_size: int | None = None) -> dict[str, Any]:
    """Chen et al.'s MIG of ``model`` on ``dataset``. The paper encodes the whole factor grid (``num_points=None``;
    737,280 images on dSprites) and leaves out dSprites' shape factor; by default this draws ``num_points`` grid
    points uniformly (seeded) so the metric fits a CPU budget, and ``factors`` selects factors by name (default: all
    with more than one value). Images are encoded ``batch_size`` at a time."""
    from zoo import batching
    from zoo.protocol import require

    require(model, "encode_dist", purpose="Chen's MIG")
    names = list(dataset.factor_names)
    chosen = [n for n, s in zip(names, dataset.factor_sizes) if s > 1] if factors is None else list(factors)
    unknown = [f for f in chosen if f not in names]
    if unknown:
        raise ZooError(f"unknown factor {unknown[0]!r} for {dataset.name}; factors are {', '.join(names)}")
    cols = [names.index(f) for f in chosen]
    rng = np.random.default_rng(seed)
    if num_points is None or num_points >= len(dataset):
        index = np.arange(len(dataset))
    else:
        index = np.sort(rng.choice(len(dataset), num_points, replace=False))
    all_factors = dataset.index_to_factors(index)
    mean, logvar = batching.encode(model, lambda lo, hi: dataset.images_from_factors(all_factors[lo:hi]),
                                   n=len(index), batch_size=batch_size, dist=True, label="Chen MIG: encoding")
    out = chen_mig_from_posteriors(mean.flatten(1).double().numpy(), logvar.flatten(1).double().numpy(),
                                   all_factors[:, cols], [dataset.factor_sizes[c] for c in cols],
                                   num_samples=num_samples, seed=seed)
    return {**out, "factor_names": chosen, "num_points": len(index)}


def mig_chen_task(run, *, num_points: int, num_samples: int, factors: str | None, seed: int) -> dict[str, Any]:
    """The ``mig_chen`` task: :func:`chen_mig` of the run's model on its ground-truth dataset (``num_points=0``: the
    whole grid, as the paper; ``factors``: comma-separated names)."""
    chosen = [f.strip() for f in factors.split(",")] if factors else None
    return {"model": run.model.display_name, "data": run.data.name,
            **chen_mig(run.model, run.data, factors=chosen, num_points=num_points or None, num_samples=num_samples,
                       seed=seed, batch_size=run.batch_size)}


# --- all of them -----------------------------------------------------------------------------------------------------

def model_representation(model, dataset, batch_size: int | None = None) -> Represent:
    """Mean codes of ``model`` for factor rows of ``dataset`` (float64 (n, D)), encoded ``batch_size`` at a time,
    each grid point once (:class:`~zoo.metrics._sampling.CodeCache`): share one across scores of the same model."""
    from zoo.metrics._sampling import CodeCache
    from zoo.protocol import require

    require(model, "encode", purpose="disentanglement scores")
    return CodeCache(model, dataset, batch_size)


def compute_scores(model, dataset, *, scores: Sequence[str] = SCORES, quick: bool = False, dci_mode: str = "sklearn",
                   seed: int = 0, represent: Represent | None = None,
                   batch_size: int | None = None) -> dict[str, Any]:
    """Every score in ``scores`` with dlib's sample sizes (``quick``: a tenth of them, for a first look), each from
    its own ``RandomState(seed)`` as dlib evaluates them; images encoded ``batch_size`` at a time, each grid point
    once for all the scores. Returns {score: {key: value}}."""
    from zoo.progress import progress_bar

    unknown = [s for s in scores if s not in SCORES]
    if unknown:
        raise ZooError(f"unknown score {unknown[0]!r}; choose from {', '.join(SCORES)}")
    n = QUICK if quick else DLIB
    represent = represent or model_representation(model, dataset, batch_size)
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "beta_vae": lambda: beta_vae_score(dataset, represent, num_train=n["num_train"], num_eval=n["num_eval"],
                                           seed=seed),
        "factor_vae": lambda: factor_vae_score(dataset, represent, num_train=n["num_train"], num_eval=n["num_eval"],
                                               num_variance_estimate=n["num_variance_estimate"], seed=seed),
        "dci": lambda: dci(dataset, represent, num_train=n["num_train"], num_eval=n["num_eval"], mode=dci_mode,
                           seed=seed),
        "sap": lambda: sap(dataset, represent, num_train=n["num_train"], num_eval=n["num_eval"], seed=seed),
        "modularity": lambda: modularity(dataset, represent, num_train=n["num_train"], num_eval=n["num_eval"],
                                         seed=seed),
        "unsupervised": lambda: unsupervised(dataset, represent, num_train=n["num_train"], seed=seed),
    }
    out: dict[str, Any] = {}
    with progress_bar("disentanglement scores", len(scores)) as bar:
        for name in scores:
            bar.update(bar.task_ids[0], description=f"scores: {name}")
            out[name] = runs[name]()
            bar.advance(bar.task_ids[0], 1)
    return out


# the number each score is usually quoted by
HEADLINE = {"beta_vae": "eval_accuracy", "factor_vae": "eval_accuracy", "dci": "disentanglement",
            "sap": "SAP_score", "modularity": "modularity_score", "unsupervised": "gaussian_total_correlation",
            "mig": "discrete_mig", "mig_chen": "mig_chen"}
ALL_SCORES = ("mig", "mig_chen", *SCORES)


def scores_task(run, *, only: str | None, quick: bool, dci_mode: str, seed: int, out: str | None,
                overwrite: bool) -> dict[str, Any]:
    """The ``scores`` task (``zoo scores``): every score of :data:`ALL_SCORES` (or the comma-separated ``only``) on
    the run's model and ground-truth dataset; Chen's MIG only for models with a Gaussian encoder unless asked for.
    Returns the headline numbers (``summary``), which key of each score they are (``headline``, e.g. the Gaussian
    total correlation for ``unsupervised``) and every score's keys (``scores``); with ``out``, a bar chart PNG."""
    from zoo.metrics.mig import compute_mig
    from zoo.protocol import require

    wanted = [s.strip() for s in only.split(",")] if only else list(ALL_SCORES)
    unknown = [s for s in wanted if s not in ALL_SCORES]
    if unknown:
        raise ZooError(f"unknown score {unknown[0]!r}; choose from {', '.join(ALL_SCORES)}")
    model, dataset = run.model, run.data
    represent = model_representation(model, dataset, run.batch_size)  # one code per grid point for every score
    if "mig_chen" in wanted:
        if only:  # asked for by name: a model without q(z|x) is an error, before any work
            require(model, "encode_dist", purpose="Chen's MIG")
        elif not model.has("encode_dist"):
            wanted.remove("mig_chen")
    results: dict[str, Any] = {}
    if "mig" in wanted:
        results["mig"] = {"discrete_mig": compute_mig(model, dataset, num_train=1000 if quick else 10000, seed=seed,
                                                      represent=represent)["discrete_mig"]}
    if "mig_chen" in wanted:
        results["mig_chen"] = chen_mig(model, dataset, num_points=2000 if quick else 10000, seed=seed,
                                       batch_size=run.batch_size)
    results.update(compute_scores(model, dataset, scores=[s for s in wanted if s in SCORES], quick=quick,
                                  dci_mode=dci_mode, seed=seed, represent=represent))
    summary = {s: results[s][HEADLINE[s]] for s in wanted}
    if out:
        from zoo.image import save_bar_chart

        bounded = [s for s in wanted if s != "unsupervised"]  # the Gaussian TC is in nats, not in [0, 1]
        save_bar_chart(bounded, [summary[s] for s in bounded], out,
                       title=f"{model.display_name} on {dataset.name}{' (quick)' if quick else ''}",
                       overwrite=overwrite)
    return {"model": model.display_name, "data": dataset.name, "quick": quick, "dci_mode": dci_mode, "seed": seed,
            "summary": summary, "headline": {s: HEADLINE[s] for s in wanted}, "scores": results, "png": out}
