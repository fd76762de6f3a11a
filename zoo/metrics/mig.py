"""Mutual Information Gap (Chen et al. 2018), exactly as disentanglement_lib computes it (Locatello et al. 2019).

Recipe (dlib ``mig.py``): 10,000 factor samples (``RandomState(0)``, batches of 16), the encoder's mean
representation, each latent discretised into 20 equal-width bins over its own range (``np.histogram`` edges +
``np.digitize``, codes 1…20), discrete MI in nats against the factor indices, normalised by the plug-in entropy of
each factor, and the gap between the two most informative latents averaged over factors (key ``discrete_mig``).
Unlike dlib's D·K separate sklearn calls, the whole D×K MI matrix comes from one joint histogram (a bincount per
latent), with the same float64 arithmetic as sklearn's ``mutual_info_score``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.errors import ZooError


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """(N, D) real codes → (N, D) integer bin codes 1…num_bins, per column over its own range (dlib's edges).

    dlib calls ``np.histogram`` and ``np.digitize`` per column. The same edges come from one ``np.linspace`` over
    every column's (min, max), which is the arithmetic ``np.histogram`` does, element by element; ``np.digitize``
    on increasing edges counts the edges at or below each code, as the comparisons below do."""
    codes = np.asarray(codes)
    if codes.size == 0:
        return np.zeros(codes.shape, dtype=np.int64)
    lo, hi = codes.min(axis=0), codes.max(axis=0)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ZooError("codes contain NaN or infinite values; MIG needs finite codes (check the encoder's output)")
    constant = lo == hi
    lo, hi = np.where(constant, lo - 0.5, lo), np.where(constant, hi + 0.5, hi)  # np.histogram's empty range
    bin_type = np.result_type(codes.dtype, float) if np.issubdtype(codes.dtype, np.integer) else codes.dtype
    edges = np.linspace(lo, hi, num_bins + 1, axis=1, dtype=bin_type)  # (D, num_bins + 1)
    # np.histogram refuses edges that are not increasing (ranges of a few ulps; with a subnormal step, where
    # np.linspace computes a whole array differently, always the case)
    narrow = (edges[:, :-1] >= edges[:, 1:]).any(1)
    if narrow.any():
        i = int(np.flatnonzero(narrow)[0])
        raise ZooError(f"latent {i} spans too narrow a range ({float(lo[i]):.17g} … {float(hi[i]):.17g}) for "
                       f"{num_bins} histogram bins; MIG cannot discretise it")
    count = np.zeros(codes.shape, dtype=np.min_scalar_type(num_bins))  # small counters: less memory to stream
    for j in range(num_bins):
        count += codes >= edges[:, j]
    return count.astype(np.int64)


def _dense_labels(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Relabel each column to 0..n_values-1 in the order of its values (``np.unique``'s inverse), and the largest
    n_values (contingency tables need small non-negative labels). Labels that already are small non-negative
    integers (bin codes, factor indices) are ranked from their counts, without sorting."""
    a = np.asarray(a)
    if len(a) == 0:
        return np.zeros(a.shape, dtype=np.int64), 1
    if np.issubdtype(a.dtype, np.integer) and a.min() >= 0 and a.max() < 4 * len(a) + 64:
        a = a.astype(np.int64, copy=False)
        span = int(a.max()) + 1
        offsets = np.arange(a.shape[1]) * span  # column j's labels live in [j * span, (j + 1) * span)
        present = np.bincount((a + offsets).ravel(), minlength=a.shape[1] * span).reshape(-1, span) > 0
        rank = np.cumsum(present, axis=1) - 1  # a present label's rank among its column's labels
        return rank.ravel()[a + offsets], int(present.sum(1).max())
    out = np.empty(a.shape, dtype=np.int64)
    for j in range(a.shape[1]):
        _, out[:, j] = np.unique(a[:, j], return_inverse=True)
    return out, int(out.max()) + 1


def _mutual_info(joint: np.ndarray, n: int) -> np.ndarray:
    """(D, K) mutual information in nats from (D, K, bc, bf) contingency tables over ``n`` samples: sklearn's
    ``mutual_info_score`` term by term (terms below machine epsilon dropped, 0 when a labelling is constant)."""
    ni = joint.sum(3, keepdims=True)
    nj = joint.sum(2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_n = np.log(n)
        term = (joint / n) * (np.log(joint) - log_n) + (joint / n) * (log_n + log_n - np.log(ni * nj))
    term = np.where(joint > 0, term, 0.0)
    term[np.abs(term) < np.finfo(np.float64).eps] = 0.0
    mi = term.sum(axis=(2, 3))
    single = ((ni[..., 0] > 0).sum(2) <= 1) | ((nj[:, :, 0, :] > 0).sum(2) <= 1)
    return np.clip(np.where(single, 0.0, mi), 0.0, None)


def mutual_info_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(D, K) discrete mutual information in nats between every column of ``codes`` and of ``factors`` (both (N, ·)
    integer labels), from one joint histogram; sklearn's ``mutual_info_score`` term by term."""
    n = len(codes)
    c, bc = _dense_labels(codes)
    f, bf = _dense_labels(factors)
    d, k = c.shape[1], f.shape[1]
    # the (K, bc, bf) contingency tables of latent i: one bincount over factor j's labels offset by j * bc * bf
    factor_index = np.ascontiguousarray((f + np.arange(k) * (bc * bf)).T)  # (K, N)
    code_index = np.ascontiguousarray(c.T) * bf  # (D, N)
    joint = np.stack([np.bincount((factor_index + code_index[i]).ravel(), minlength=k * bc * bf)
                      for i in range(d)]).reshape(d, k, bc, bf).astype(np.float64)
    return _mutual_info(joint, n)


def factor_entropy(factors: np.ndarray) -> np.ndarray:
    """Plug-in entropy (nats) of each factor column: its MI with itself, as dlib computes it — from the column's
    value counts, whose contingency table with itself is their diagonal matrix."""
    f, _ = _dense_labels(factors)
    out = []
    for j in range(f.shape[1]):
        counts = np.bincount(f[:, j]).astype(np.float64)
        out.append(_mutual_info(np.diag(counts)[None, None], len(f))[0, 0])
    return np.array(out)


def mig_from_codes(codes: np.ndarray, factors: np.ndarray, num_bins: int | None = 20) -> dict[str, Any]:
    """MIG of real codes (N, D) against factor indices (N, K). ``num_bins=None`` skips discretisation (codes that
    are already discrete, as in dlib's tests)."""
    if codes.shape[1] < 2:
        raise ZooError("MIG needs at least two latent dimensions")
    discrete = histogram_discretize(codes, num_bins) if num_bins else codes.astype(np.int64)
    mi = mutual_info_matrix(discrete, factors)
    h = factor_entropy(factors)
    if (h == 0).any():
        raise ZooError("a factor is constant in the sample; MIG is undefined for it")
    top = np.sort(mi, axis=0)[::-1]
    gaps = (top[0] - top[1]) / h
    return {"discrete_mig": float(gaps.mean()), "per_factor": gaps.tolist(), "mutual_info": mi.tolist(),
            "entropy": h.tolist()}


def compute_mig(model, dataset, *, num_train: int = 10000, num_bins: int = 20, seed: int = 0,
                batch_size: int = 16, encode_batch_size: int | None = None, represent=None) -> dict[str, Any]:
    """disentanglement_lib's MIG of ``model``'s mean representation on ``dataset``.

    The factors come from ``np.random.RandomState(seed)`` drawn ``batch_size`` at a time — dlib's stream; encoding
    runs ``encode_batch_size`` images at a time (default: :func:`zoo.batching.default_batch_size`), which changes
    a code in its last float digits at most. ``represent`` (factor rows → codes) replaces the encoding, e.g. a
    :class:`~zoo.metrics._sampling.CodeCache` shared with other scores."""
    from zoo.metrics._sampling import CodeCache, sample_factors_stream
    from zoo.protocol import require

    require(model, "encode", purpose="MIG")
    factors = sample_factors_stream(dataset, num_train, np.random.RandomState(seed), batch_size)
    represent = represent or CodeCache(model, dataset, encode_batch_size, label="MIG: encoding")
    out = mig_from_codes(represent(factors), factors, num_bins)
    out["factor_names"] = list(dataset.factor_names)
    out["num_train"] = num_train
    return out


def mig_task(run, *, num_train: int, seed: int, out: str | None) -> dict[str, Any]:
    """The ``mig`` task: :func:`compute_mig` on the run's model and ground-truth dataset; with ``out``, the
    normalised MI matrix (latents × factors) as a heatmap PNG."""
    result = compute_mig(run.model, run.data, num_train=num_train, seed=seed, encode_batch_size=run.batch_size)
    result.update(model=run.model.display_name, data=run.data.name)
    if out:
        import torch

        from zoo.image import save_image

        mi = torch.tensor(result["mutual_info"]) / torch.tensor(result["entropy"])  # (D, K), normalised
        save_image(mi.clamp(0, 1), out, scale=24)
        result["png"] = out
    return result
