"""The fast paths give the answers of the slow ones they replaced: faces64 images bit for bit (hashes of images the
old renderer drew), MIG's discretisation, relabelling, joint histogram and entropies bit for bit (against the
straightforward numpy they replaced), the chunked Jacobian spectrum to float rounding, and zoo.batching's mallopt
(freed memory is reused instead of faulted in again)."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import zoo
from zoo.data import get_dataset
from zoo.errors import ZooError
from zoo.metrics import jacobian
from zoo.metrics.mig import (
    _dense_labels,
    _mutual_info,
    factor_entropy,
    histogram_discretize,
    mig_from_codes,
    mutual_info_matrix,
)

# --- rendering ------------------------------------------------------------------------------------------------------

# sha256 of the float32 bytes of images drawn by the renderers before they were sped up (faces64: one full drawing
# per image, 128 at a time), for the factor sets of ``factor_sets``; identical under ATen's DEFAULT, AVX2 and
# AVX512 kernels (ATEN_CPU_CAPABILITY).
RENDERED = {
    ("faces64", "grid"): "379b827c432c15a8a17d02ca18c723b1120e6267e39632a7dba146e66764da97",
    ("faces64", "traversal"): "56759f4ee18e65a6e1438a4aaa79721923363090d2f5bb895b151be52f784082",
    ("faces64", "sample300"): "4c3810160b9cf86d7105fd0634b76ed53316e355ae18f052fbcb107ae525f769",
    ("dsprites", "grid"): "949a1acde692ed8b43bad816cc18e7b9588eec61db1fa33646b783f47455df57",
    ("dsprites", "traversal"): "690bcf847036720aa84eb5347dd26e8221da999c28d0a023c47e096d528ef6fe",
    ("dsprites", "sample300"): "18407b490048bf2db63fe8fdbcfaa1e4b979a80d166d15ed8b698a3f091eb80d",
}


def factor_sets(ds) -> dict[str, np.ndarray]:
    """Every 7919th grid point; every value of every factor around the grid's middle; 300 random rows (not a
    multiple of any chunk size)."""
    base = np.array([s // 2 for s in ds.factor_sizes])
    traversal = []
    for i, size in enumerate(ds.factor_sizes):
        for v in range(size):
            f = base.copy()
            f[i] = v
            traversal.append(f)
    return {"grid": ds.index_to_factors(np.arange(0, len(ds), 7919)), "traversal": np.array(traversal),
            "sample300": ds.sample_factors(300, 5)}


@pytest.mark.parametrize("name, factor_set", sorted(RENDERED))
def test_images_are_bit_identical_to_the_old_renderer(name, factor_set):
    ds = get_dataset(name)
    images = ds.images_from_factors(factor_sets(ds)[factor_set])
    assert images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
    assert hashlib.sha256(images.numpy().tobytes()).hexdigest() == RENDERED[name, factor_set]


@pytest.mark.parametrize("name", ["dsprites", "faces64"])
def test_an_image_does_not_depend_on_its_batch(name):
    ds = get_dataset(name)
    f = factor_sets(ds)["sample300"][:70]
    together = ds.images_from_factors(f)
    assert torch.equal(torch.cat([ds.images_from_factors(f[i:i + 1]) for i in range(len(f))]), together)
    assert torch.equal(torch.cat([ds.images_from_factors(f[i:i + 33]) for i in range(0, len(f), 33)]), together)


# --- MIG ------------------------------------------------------------------------------------------------------------

def dlib_discretize(codes: np.ndarray, bins: int) -> np.ndarray:
    """disentanglement_lib's ``_histogram_discretize``, column by column."""
    return np.stack([np.digitize(c, np.histogram(c, bins)[1][:-1]) for c in codes.T], axis=1)


def unique_labels(a: np.ndarray) -> tuple[np.ndarray, int]:
    """The relabelling the fast path replaced: np.unique's inverse per column, and the largest number of values."""
    out = np.stack([np.unique(c, return_inverse=True)[1] for c in a.T], axis=1)
    return out, int(out.max()) + 1


def one_joint_mi(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """The joint histogram the fast path replaced: one (N, D, K) index into a single bincount."""
    (c, bc), (f, bf) = unique_labels(codes), unique_labels(factors)
    d, k = c.shape[1], f.shape[1]
    pair = (np.arange(d)[:, None] * k + np.arange(k)[None, :]) * (bc * bf)
    index = pair[None] + c[:, :, None] * bf + f[:, None, :]
    joint = np.bincount(index.ravel(), minlength=d * k * bc * bf).reshape(d, k, bc, bf).astype(np.float64)
    return _mutual_info(joint, len(codes))


RNG = np.random.default_rng(7)
FACTORS = RNG.integers(0, [3, 6, 40, 32, 32], size=(3000, 5))
CODES = {
    "float64": FACTORS[:, [0, 1, 2, 3, 4, 2]] + RNG.normal(size=(3000, 6)),
    "float32": (FACTORS[:, [0, 1, 2, 3, 4, 2]] + RNG.normal(size=(3000, 6))).astype(np.float32),
    "integers": FACTORS[:, :4] * 3 - 7,
    "a constant column": np.hstack([np.full((3000, 1), 2.5), RNG.normal(size=(3000, 3))]),
    "codes on the edges": np.tile(np.linspace(0, 1, 21), 150)[:, None] * [1.0, 3.0, -2.0],
    "a large offset": 1e12 + RNG.normal(size=(3000, 3)) * 1e3,
    "a tiny scale": RNG.normal(size=(3000, 3)) * 1e-300,
}
LABELS = {
    "factor indices": FACTORS,
    "bin codes": dlib_discretize(CODES["float64"], 20),
    "gaps": FACTORS * 7,
    "negative": FACTORS - 5,
    "floats": FACTORS * 0.5,
    "uint8": FACTORS.astype(np.uint8),
}


@pytest.mark.parametrize("case", sorted(CODES))
@pytest.mark.parametrize("bins", [20, 7])
def test_discretisation_is_dlibs_bit_for_bit(case, bins):
    out = histogram_discretize(CODES[case], bins)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, dlib_discretize(CODES[case], bins))


@pytest.mark.parametrize("case", sorted(LABELS))
def test_relabelling_is_np_uniques(case):
    labels, size = _dense_labels(LABELS[case])
    expected, expected_size = unique_labels(LABELS[case])
    np.testing.assert_array_equal(labels, expected)
    assert size == expected_size


@pytest.mark.parametrize("case", sorted(LABELS))
def test_mi_matrix_and_entropies_are_bit_identical(case):
    codes = dlib_discretize(CODES["float64"], 20)
    factors = LABELS[case]
    assert np.array_equal(mutual_info_matrix(codes, factors), one_joint_mi(codes, factors))
    assert np.array_equal(factor_entropy(factors),  # the entropy as MI of each factor with itself
                          [one_joint_mi(factors[:, j:j + 1], factors[:, j:j + 1])[0, 0] for j in range(factors.shape[1])])


def test_mig_of_a_known_case():
    """Two latents carry two independent uniform factors exactly, a third is constant: the MI of each factor is its
    entropy, and each gap is 1."""
    f = np.stack([np.arange(600) % 3, np.arange(600) % 4], 1)
    out = mig_from_codes(np.hstack([f.astype(float), np.ones((600, 1))]), f)
    np.testing.assert_allclose(out["entropy"], [math.log(3), math.log(4)], rtol=1e-15)
    np.testing.assert_allclose(np.diag(out["mutual_info"]), out["entropy"], rtol=1e-15)
    assert out["per_factor"] == pytest.approx([1.0, 1.0], abs=1e-12)


@pytest.mark.parametrize("codes, message", [
    (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN or infinite"),
    (np.array([[0.0, np.inf], [1.0, 2.0]]), "NaN or infinite"),
    (np.array([[0.0, 1.0], [1.0, 1.0 + 2e-16], [2.0, 1.0]]), "latent 1 spans too narrow a range"),
    (np.array([[0.0, 0.0], [1.0, 5e-324], [2.0, 1e-323]]), "latent 1 spans too narrow a range"),
])
def test_codes_mig_cannot_bin_are_one_line(codes, message):
    with pytest.raises(ZooError, match=message) as err:
        mig_from_codes(codes, np.array([[0], [1], [0]])[:len(codes)])
    assert "\n" not in str(err.value)


# --- Jacobian -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, args", [("vae", {"latent_dim": 4, "image_size": 16, "widths": [8, 8], "hidden": 16}),
                                        ("betavae.dsprites", {})])
def test_chunked_jacobian_spectrum_matches_one_pass(monkeypatch, name, args):
    model = zoo.create_model(name, **({"pretrained": False, **args} if args else {}))
    d = model.latent_spec.shape[0]
    seen = []
    real = jacobian.decoder_jacobian
    monkeypatch.setattr(jacobian, "decoder_jacobian", lambda m, z: seen.append(len(z)) or real(m, z))
    chunked = jacobian.jacobian_geometry(model, n=8, batch_size=2 * d)  # 2 codes, 2·d images per decoder pass
    assert seen == [2, 2, 2, 2]
    seen.clear()
    whole = jacobian.jacobian_geometry(model, n=8, batch_size=8 * d)
    assert seen == [8]
    assert jacobian.jacobian_geometry(model, n=3, batch_size=1)["n"] == 3 and seen[-3:] == [1, 1, 1]  # ≥ 1 code
    # convolutions round differently for other batch sizes: the small eigenvalues (condition ~1e5) move most
    np.testing.assert_allclose(chunked["spectrum_mean"], whole["spectrum_mean"], rtol=1e-4)
    for key in ("log10_condition_median", "anisotropy_median", "orthogonality_mean", "trace_mean"):
        assert chunked[key] == pytest.approx(whole[key], rel=1e-4)


# --- zoo.batching's mallopt -----------------------------------------------------------------------------------------

FAULTS = """
import resource, torch, zoo.batching
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):  # 40 MB: above glibc's largest automatic mmap threshold (32 MB), so mmapped afresh by default
    torch.empty(10 << 20).fill_(1.0)
before = faults()
for _ in range(5):
    torch.empty(10 << 20).fill_(1.0)
print(zoo.batching.MALLOPT_APPLIED, (faults() - before) / 5)
"""


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):
        return False


@pytest.mark.skipif(not _glibc(), reason="mallopt is glibc's (Linux)")
def test_mallopt_keeps_freed_buffers_for_the_next_batch():
    def run(**env):
        environ = {k: v for k, v in os.environ.items() if k != "ZOO_NO_MALLOPT"}
        out = subprocess.run([sys.executable, "-c", FAULTS], env={**environ, **env}, capture_output=True, text=True,
                             check=True).stdout.split()
        return out[0] == "True", float(out[1])

    applied, faults_with = run()
    skipped, faults_without = run(ZOO_NO_MALLOPT="1")
    assert applied and not skipped
    assert faults_without >= 20  # faulted in again: 10,240 pages of 4 KiB (20 of 2 MiB with transparent huge pages)
    # the freed buffer is reused as it is (0 faults on an idle machine; the kernel may still reclaim some pages of a
    # kept buffer under memory pressure, so compare with the default instead of demanding 0)
    assert faults_with < faults_without / 4
