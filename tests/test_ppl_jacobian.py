"""PPL against a slow loop reference and its JVP limit; the Jacobian against autograd; on tiny generators."""

import math

import numpy as np
import pytest
import torch

import zoo
from zoo.metrics.jacobian import decoder_jacobian, geometry_of, hutchinson_trace, jacobian_geometry
from zoo.metrics.ppl import PATH_CHUNK, jvp_path_length, perceptual_path_length, ppl_samples

TINY_VAE = {"latent_dim": 4, "image_size": 16, "widths": [8, 8], "hidden": 16}
TINY_SG = {"z_dim": 8, "w_dim": 8, "resolution": 16, "channel_base": 64, "channel_max": 16, "recoder_width": 8}


def slow_ppl(model, space, sampling, n, eps, seed, chunk=PATH_CHUNK):
    """Reference: one path at a time, slerp/lerp written out from the formulas, no vmap, no batching of paths; the
    endpoints drawn ``chunk`` paths at a time (a, c, t), the stream the metric documents."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for lo in range(0, n, chunk):
        b = min(chunk, n - lo)
        a, c = model.sample_prior(b, generator=g), model.sample_prior(b, generator=g)
        if space == "w":
            a, c = model.map_prior(a), model.map_prior(c)
        ts = torch.rand(b, generator=g) * (1.0 if sampling == "full" else 0.0)
        for i in range(b):
            def at(t, a=a[i].double(), c=c[i].double()):
                if space == "w":
                    return (a + t * (c - a)).float()
                ua, uc = a / a.norm(), c / c.norm()
                omega = math.acos(float((ua * uc).sum().clamp(-1, 1)))
                direction = (math.sin((1 - t) * omega) * ua + math.sin(t * omega) * uc) / math.sin(omega)
                z = (direction * ((1 - t) * a.norm() + t * c.norm())).float()
                return model.map_prior(z[None])[0] if model.has("mapping") else z

            t = float(ts[i])
            x0, x1 = model.decode(at(t)[None]), model.decode(at(t + eps)[None])
            out.append(float((x0 - x1).double().pow(2).mean()) / eps ** 2)
    return np.array(out)


@pytest.mark.parametrize("arch, args, space, sampling, n", [
    ("vae", TINY_VAE, "z", "end", 40), ("vae", TINY_VAE, "z", "full", 130),
    ("stylegan", TINY_SG, "z", "full", 40), ("stylegan", TINY_SG, "w", "end", 40)])
def test_ppl_equals_slow_reference(arch, args, space, sampling, n):
    """Decoded 20 paths at a time, drawn PATH_CHUNK at a time (130 paths: two chunks)."""
    model = zoo.create_model(arch, pretrained=False, **args)
    with torch.no_grad():
        fast = ppl_samples(model, space=space, sampling=sampling, n=n, batch_size=20, seed=3)
        slow = slow_ppl(model, space, sampling, n, 1e-4, 3)
    np.testing.assert_allclose(fast, slow, rtol=0.02)
    res = perceptual_path_length(model, space=space, sampling=sampling, n=n, batch_size=20, seed=3)
    ranked = np.sort(fast)  # the 1 % and 99 % percentiles, "lower" and "higher" ranks
    kept = fast[(fast >= ranked[int(0.01 * (n - 1))]) & (fast <= ranked[math.ceil(0.99 * (n - 1))])]
    assert res["ppl"] == pytest.approx(kept.mean()) and res["distance"] == "pixel_sq_l2"


def test_jvp_ppl_agrees_with_finite_differences():
    model = zoo.create_model("vae", pretrained=False, **TINY_VAE)
    with torch.no_grad():
        fd = ppl_samples(model, n=100, seed=1, epsilon=1e-3)
    jv = jvp_path_length(model, n=100, seed=1)
    assert abs(fd.mean() / jv.mean() - 1) < 0.02


def test_w_space_needs_a_mapping():
    model = zoo.create_model("vae", pretrained=False, **TINY_VAE)
    with pytest.raises(zoo.CapabilityError, match="no W space"):
        perceptual_path_length(model, space="w", n=4)


def test_jacobian_matches_autograd_and_geometry():
    model = zoo.create_model("vae", pretrained=False, **TINY_VAE)
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    J = decoder_jacobian(model, z)
    for i in range(3):
        ref = torch.autograd.functional.jacobian(lambda v: model.decode(v[None]).flatten(), z[i])
        torch.testing.assert_close(J[i], ref, rtol=1e-4, atol=1e-7)
    geo = geometry_of(J.detach())
    svals = torch.linalg.svdvals(J.detach().double())
    np.testing.assert_allclose(geo["eigenvalues"], (svals ** 2).numpy(), rtol=1e-6, atol=1e-12)
    est = hutchinson_trace(model, z, samples=400, seed=0)
    np.testing.assert_allclose(est.numpy(), geo["trace"], rtol=0.15)
    out = jacobian_geometry(model, n=6, batch_size=3)
    assert len(out["spectrum_mean"]) == 4 and 0 <= out["orthogonality_mean"] <= 1


def test_orthogonality_score_on_known_jacobians():
    assert geometry_of(torch.eye(5)[None, :, :3])["orthogonality"][0] == pytest.approx(1.0)
    same = torch.ones(1, 5, 3)
    assert geometry_of(same)["orthogonality"][0] == pytest.approx(0.0, abs=1e-6)
