"""Mutual Information Gap (Chen et al. 2018), exactly as disentanglement_lib computes it (Locatello et al. 2019).

Recipe (dlib ``mig.py``): 10,000 factor samples (``RandomState(0)``, batches of 16), the encoder's mean
representation, each latent discretised into 20 equal-width bins over its own range (``np.histogram`` edges +
``np.digitize``, codes 1…20), discrete MI in nats against the factor indices, normalised by the plug-in entropy of
each factor, and the gap between the two most informative latents averaged over factors (key ``discrete_mig``).
Unlike dlib's D·K separate sklearn calls, the whole D×K MI matrix comes from one joint histogram.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.errors import ZooError


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """(N, D) real codes → (N, D) integer bin codes 1…num_bins, per column over its own range (dlib's edges)."""
    out = np.empty(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram(codes[:, i], num_bins)[1][:-1]
        out[:, i] = np.digitize(codes[:, i], edges)
    return out


def _dense_labels(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Relabel each column to 0..n_values-1 (contingency tables need small non-negative labels)."""
    out = np.empty(a.shape, dtype=np.int64)
    sizes = []
    for j in range(a.shape[1]):
        _, out[:, j] = np.unique(a[:, j], return_inverse=True)
        sizes.append(out[:, j].max() + 1 if len(out) else 1)
    return out, int(max(sizes, default=1))


def mutual_info_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(D, K) discrete mutual information in nats between every column of ``codes`` and of ``factors`` (both (N, ·)
    integer labels), from one joint histogram; sklearn's ``mutual_info_score`` term by term."""
    n = len(codes)
    c, bc = _dense_labels(codes)
    f, bf = _dense_labels(factors)
    d, k = c.shape[1], f.shape[1]
    pair = (np.arange(d)[:, None] * k + np.arange(k)[None, :]) * (bc * bf)  # (D, K) offsets
    joint_index = pair[None] + c[:, :, None] * bf + f[:, None, :]  # (N, D, K)
    joint = np.bincount(joint_index.ravel(), minlength=d * k * bc * bf).reshape(d, k, bc, bf).astype(np.float64)
    ni = joint.sum(3, keepdims=True)
    nj = joint.sum(2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_n = np.log(n)
        term = (joint / n) * (np.log(joint) - log_n) + (joint / n) * (log_n + log_n - np.log(ni * nj))
    term = np.where(joint > 0, term, 0.0)
    term[np.abs(term) < np.finfo(np.float64).eps] = 0.0
    mi = term.sum(axis=(2, 3))
    single = ((ni[..., 0] > 0).sum(2) <= 1)[:, :, None] | ((nj[:, :, 0, :] > 0).sum(2) <= 1)[:, :, None]
    return np.clip(np.where(single[..., 0], 0.0, mi), 0.0, None)


def factor_entropy(factors: np.ndarray) -> np.ndarray:
    """Plug-in entropy (nats) of each factor column: MI of a labelling with itself, as dlib computes it."""
    return np.array([mutual_info_matrix(factors[:, j:j + 1], factors[:, j:j + 1])[0, 0]
                     for j in range(factors.shape[1])])


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
                batch_size: int = 16, encode_batch_size: int | None = None) -> dict[str, Any]:
    """disentanglement_lib's MIG of ``model``'s mean representation on ``dataset``.

    The factors come from ``np.random.RandomState(seed)`` drawn ``batch_size`` at a time — dlib's stream; encoding
    runs ``encode_batch_size`` images at a time (default: :func:`zoo.batching.default_batch_size`), which changes
    a code in its last float digits at most."""
    from zoo.metrics._sampling import encode_factors, sample_factors_stream
    from zoo.protocol import require

    require(model, "encode", purpose="MIG")
    factors = sample_factors_stream(dataset, num_train, np.random.RandomState(seed), batch_size)
    codes = encode_factors(model, dataset, factors, encode_batch_size, label=f"MIG: encoding {num_train} images")
    out = mig_from_codes(codes, factors, num_bins)
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
