"""zoo against each peer's own code, on identical inputs, in one run on this machine: value agreement and the time
ratio peer time / zoo time (median of ``--repeats``, default 3, runs interleaved zoo, peer, zoo, peer, ...).

- MIG on arrays (N = 10k and 100k, D = 10): ``zoo.metrics.mig.mig_from_codes`` vs disentanglement_lib's
  ``mig._compute_mig``;
- MIG, SAP, modularity/explicitness, β-VAE, FactorVAE, DCI and unsupervised scores of ``betavae.dsprites`` end to
  end: ``zoo.run("mig")`` and ``zoo.run("scores", only=...)`` (at dlib's sizes; ``--quick`` sizes call the
  ``zoo.metrics.scores`` functions) vs dlib's ``compute_*`` pipelines over a ``GroundTruthData`` adapter of zoo's
  dSprites and a representation function calling the model's encoder; at dlib's sizes also the whole ``zoo scores``
  against the seven pipelines run one after the other;
- PPL of a toy MLP generator and of the ``betavae.dsprites`` decoder: ``zoo.run("ppl")`` vs torchmetrics'
  ``perceptual_path_length`` on the same paths and draws;
- the Jacobian of the ``betavae.dsprites`` decoder: ``zoo.metrics.jacobian.decoder_jacobian`` vs
  ``torch.autograd.functional.jacobian(vectorize=True, strategy="forward-mode")``, and d plain decoder passes;
- faces64 rendering (absolute images/s);
- training ``betavae`` on dsprites: ``zoo.train.train`` (what ``zoo train`` runs) vs a plain torch loop (same network,
  Adam, batch 64).

Both sides get the same loaded model (loading is not timed), the same factor draws (``RandomState(0)`` streams) and
float64 codes. Peers, installed without touching torch::

    pip install --no-deps disentanglement-lib==1.5 six torchmetrics lightning-utilities
    python benchmarks/bench_peers.py                 # full sizes: run on an idle machine; writes results/peers.md
    python benchmarks/bench_peers.py --quick --repeats 1    # smoke run, small sizes (a few minutes)

dlib's metric modules import ``gin.tf`` and ``absl.logging``; the stubs in ``benchmarks/peers/`` stand in for them
(put first on ``sys.path`` by this script only), with dlib's study settings bound below.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import zoo
from zoo import registry
from zoo.batching import default_batch_size
from zoo.data import get_dataset
from zoo.metrics.scores import DLIB

HERE = Path(__file__).parent
SHIMS = HERE / "peers"
MODEL = "betavae.dsprites"  # the shipped dSprites model every end-to-end row uses
ENCODERS = ("betavae.dsprites", "vae.faces64", "splitvae.faces64", "gan.faces64", "stylegan.faces64")

# Sample sizes: dlib's study defaults (full; those of `zoo scores`) and a smoke-run set (--quick).
FULL = {"mig_arrays": (10_000, 100_000), "mig": 10_000, "train": DLIB["num_train"], "eval": DLIB["num_eval"],
        "variance": DLIB["num_variance_estimate"], "pairs_train": DLIB["num_train"], "pairs_eval": DLIB["num_eval"],
        "ppl": 2_000, "jacobian": 64, "faces": 20_000, "train_steps": 300, "sweep": 4_096}
QUICK = {"mig_arrays": (10_000,), "mig": 1_000, "train": 500, "eval": 250, "variance": 500,
         "pairs_train": 40, "pairs_eval": 20, "ppl": 200, "jacobian": 16, "faces": 2_000,
         "train_steps": 20, "sweep": 512}


def fail(message: str) -> None:
    sys.exit(f"error: {message}")


def import_peers() -> dict[str, Any]:
    """disentanglement_lib's metric modules (through the gin/absl stubs) and torchmetrics' PPL."""
    sys.path.insert(0, str(SHIMS))
    try:
        import gin
        from disentanglement_lib.data.ground_truth import ground_truth_data
        from disentanglement_lib.evaluation.metrics import (
            beta_vae,
            dci,
            factor_vae,
            mig,
            modularity_explicitness,
            sap_score,
            unsupervised_metrics,
            utils,
        )
    except ImportError as exc:
        fail(f"cannot import disentanglement_lib's metrics ({exc}); "
             f"pip install --no-deps disentanglement-lib==1.5 six")
    try:
        from torchmetrics.functional.image.perceptual_path_length import perceptual_path_length
    except ImportError as exc:
        fail(f"cannot import torchmetrics' PPL ({exc}); pip install --no-deps torchmetrics lightning-utilities")
    # dlib's unsupervised_study_v1 settings (metric_configs/*.gin) for the arguments the pipelines leave to gin
    gin.bind_parameter("discretizer.discretizer_fn", utils._histogram_discretize)
    gin.bind_parameter("discretizer.num_bins", 20)
    gin.bind_parameter("prune_dims.threshold", 0.05)
    return {"GroundTruthData": ground_truth_data.GroundTruthData, "mig": mig, "sap": sap_score,
            "modularity": modularity_explicitness, "beta_vae": beta_vae, "factor_vae": factor_vae, "dci": dci,
            "unsupervised": unsupervised_metrics,
            "tm_ppl": perceptual_path_length}


# --- measuring -------------------------------------------------------------------------------------------------------

@dataclass
class Row:
    what: str
    peer: str
    zoo_call: str
    zoo_value: float | None
    peer_value: float | None
    zoo_s: float | None
    peer_s: float | None
    target: str
    minimum_ratio: float | None  # the target as peer time / zoo time, or None when ``met`` is decided elsewhere
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.peer_s / self.zoo_s if self.zoo_s and self.peer_s else None

    def __post_init__(self) -> None:
        if self.met is None and self.minimum_ratio is not None and self.ratio is not None:
            self.met = self.ratio >= self.minimum_ratio


def interleaved(zoo_fn: Callable[[], Any], peer_fn: Callable[[], Any] | None, repeats: int, warmup: bool = False):
    """(zoo result, peer result, median zoo seconds, median peer seconds), runs alternating zoo and peer; with
    ``warmup`` one untimed run of each first (first-call costs: torch.func tracing, allocator, imports)."""
    zoo_times, peer_times, peer_out = [], [], None
    for fn in (zoo_fn, peer_fn) if warmup else ():
        if fn is not None:
            fn()
    for _ in range(repeats):
        t = time.perf_counter()
        zoo_out = zoo_fn()
        zoo_times.append(time.perf_counter() - t)
        if peer_fn is not None:
            t = time.perf_counter()
            peer_out = peer_fn()
            peer_times.append(time.perf_counter() - t)
    return zoo_out, peer_out, statistics.median(zoo_times), statistics.median(peer_times) if peer_times else None


def find_value(result: Any, key: str) -> float:
    """``result[key]``, also inside nested dicts (``zoo.run("scores")`` gives ``{"scores": {"sap": {...}}}``)."""
    if key in result:
        return float(result[key])
    for name in result:  # not .values(): TaskResult's dataclass field `values` shadows Mapping.values()
        value = result[name]
        if isinstance(value, dict):
            try:
                return find_value(value, key)
            except KeyError:
                pass
    raise KeyError(key)


def has_value(result: Any, key: str) -> bool:
    try:
        find_value(result, key)
        return True
    except KeyError:
        return False


def task_call(candidates: list[tuple[str, dict[str, Any]]], model, **run_args: Any):
    """The first ``zoo.run(task, model, **options)`` whose task is registered and declares every option given,
    as (label, callable); None when zoo's metrics are not on ``zoo.run`` yet."""
    for task, options in candidates:
        if task not in registry.tasks.names():
            continue
        declared = {o.name for o in registry.tasks.get(task).spec.options}
        if set(options) <= declared:
            label = f"zoo.run({task!r}, {', '.join(f'{k}={v!r}' for k, v in options.items())})"
            return label, lambda task=task, options=options: zoo.run(task, model, **run_args, **options)
    return None


# --- dlib's side: the GroundTruthData interface over zoo's dataset, and a representation function ------------------

def dlib_data(peers: dict[str, Any], dataset):
    """zoo's ground-truth dataset as dlib's ``GroundTruthData`` (NHWC float32 numpy observations). Factors come from
    zoo's ``sample_factors``, which with a ``RandomState`` draws exactly as dlib's dSprites does."""

    class ZooGroundTruth(peers["GroundTruthData"]):
        @property
        def num_factors(self):
            return dataset.num_factors

        @property
        def factors_num_values(self):
            return list(dataset.factor_sizes)

        @property
        def observation_shape(self):
            return [*dataset.image_spec.size, dataset.image_spec.channels]

        def sample_factors(self, num, random_state):
            return dataset.sample_factors(num, random_state)

        def sample_observations_from_factors(self, factors, random_state):
            return dataset.images_from_factors(factors).permute(0, 2, 3, 1).numpy()

    return ZooGroundTruth()


def dlib_representation(model) -> Callable[[np.ndarray], np.ndarray]:
    """What a dlib user writes for a torch model: NHWC numpy → the encoder's mean codes, float64 as zoo keeps them."""
    @torch.no_grad()
    def represent(observations: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(observations)).permute(0, 3, 1, 2)
        return model.encode(x).double().numpy()

    return represent


# --- rows ------------------------------------------------------------------------------------------------------------

def mig_array_rows(peers, sizes, repeats) -> list[Row]:
    from zoo.metrics.mig import mig_from_codes

    rows, rng = [], np.random.default_rng(0)
    for n in sizes["mig_arrays"]:
        factors = rng.integers(0, [3, 6, 40, 32, 32], size=(n, 5))  # dSprites' factor sizes
        codes = factors[:, rng.integers(0, 5, size=10)] + rng.normal(size=(n, 10))
        zoo_v, peer_v, zoo_s, peer_s = interleaved(
            lambda c=codes, f=factors: mig_from_codes(c, f)["discrete_mig"],
            lambda c=codes, f=factors: peers["mig"]._compute_mig(c.T, f.T)["discrete_mig"], repeats, warmup=True)
        rows.append(Row(f"MIG on arrays, N={n:,}, D=10", "dlib `mig._compute_mig`",
                        "zoo.metrics.mig.mig_from_codes", zoo_v, peer_v, zoo_s, peer_s, "≥ 10×", 10.0))
    return rows


def score_rows(peers, model, dataset, sizes, repeats) -> list[Row]:
    """MIG, SAP, modularity/explicitness, β-VAE, FactorVAE, DCI and unsupervised scores of ``model``: zoo end to end
    vs dlib's pipelines; at dlib's sizes also the whole ``zoo scores`` against the seven pipelines run in turn."""
    from zoo.metrics import mig as zmig
    from zoo.metrics import scores as zs

    data, represent = dlib_data(peers, dataset), dlib_representation(model)

    def fresh() -> zs.Represent:  # a new code cache for every timed run: no run reuses another's codes
        return zs.model_representation(model, dataset)

    def rs() -> np.random.RandomState:  # every pipeline starts its own stream, as dlib's do
        return np.random.RandomState(0)

    n, m = sizes["train"], sizes["eval"]
    pn, pm, var = sizes["pairs_train"], sizes["pairs_eval"], sizes["variance"]
    dlib_sizes = (n, m, pn, pm, var) == (DLIB["num_train"], DLIB["num_eval"], DLIB["num_train"], DLIB["num_eval"],
                                         DLIB["num_variance_estimate"])

    def scores(name: str) -> list[tuple[str, dict[str, Any]]]:  # `zoo scores` runs dlib's sizes only
        return [("scores", {"only": name})] if dlib_sizes else []

    specs = [  # (what, key, zoo.run candidates, zoo fallback (label, fn), peer label, peer fn)
        ("MIG", "discrete_mig", [("mig", {"num_train": sizes["mig"], "seed": 0})],
         ("zoo.metrics.mig.compute_mig", lambda: zmig.compute_mig(model, dataset, num_train=sizes["mig"], seed=0)),
         "dlib `mig.compute_mig`",
         lambda: peers["mig"].compute_mig(data, represent, rs(), num_train=sizes["mig"], batch_size=16)),
        ("SAP", "SAP_score", scores("sap"),
         ("zoo.metrics.scores.sap", lambda: zs.sap(dataset, fresh(), num_train=n, num_eval=m, seed=0)),
         "dlib `sap_score.compute_sap`",
         lambda: peers["sap"].compute_sap(data, represent, rs(), num_train=n, num_test=m, batch_size=16,
                                          continuous_factors=False)),
        ("modularity", "modularity_score", scores("modularity"),
         ("zoo.metrics.scores.modularity",
          lambda: zs.modularity(dataset, fresh(), num_train=n, num_eval=m, seed=0)),
         "dlib `modularity_explicitness.compute_modularity_explicitness`",
         lambda: peers["modularity"].compute_modularity_explicitness(data, represent, rs(), num_train=n, num_test=m,
                                                                     batch_size=16)),
        ("β-VAE score", "eval_accuracy", scores("beta_vae"),
         ("zoo.metrics.scores.beta_vae_score",
          lambda: zs.beta_vae_score(dataset, fresh(), num_train=pn, num_eval=pm, batch_size=64, seed=0)),
         "dlib `beta_vae.compute_beta_vae_sklearn`",
         lambda: peers["beta_vae"].compute_beta_vae_sklearn(data, represent, rs(), batch_size=64, num_train=pn,
                                                            num_eval=pm)),
        ("FactorVAE score", "eval_accuracy",
         scores("factor_vae"),
         ("zoo.metrics.scores.factor_vae_score",
          lambda: zs.factor_vae_score(dataset, fresh(), num_train=pn, num_eval=pm, num_variance_estimate=var,
                                      batch_size=64, seed=0)),
         "dlib `factor_vae.compute_factor_vae`",
         lambda: peers["factor_vae"].compute_factor_vae(data, represent, rs(), batch_size=64, num_train=pn,
                                                        num_eval=pm, num_variance_estimate=var)),
        ("DCI", "disentanglement", scores("dci"),
         ("zoo.metrics.scores.dci", lambda: zs.dci(dataset, fresh(), num_train=n, num_eval=m, seed=0)),
         "dlib `dci.compute_dci`",
         lambda: peers["dci"].compute_dci(data, represent, rs(), num_train=n, num_test=m, batch_size=16)),
        ("unsupervised scores", "gaussian_total_correlation", scores("unsupervised"),
         ("zoo.metrics.scores.unsupervised", lambda: zs.unsupervised(dataset, fresh(), num_train=n, seed=0)),
         "dlib `unsupervised_metrics.unsupervised_metrics`",
         lambda: peers["unsupervised"].unsupervised_metrics(data, represent, rs(), num_train=n, batch_size=16)),
    ]
    rows, peer_total, peer_values = [], 0.0, {}
    for what, key, candidates, fallback, peer_label, peer_fn in specs:
        label, zoo_fn = task_call(candidates, model) or fallback
        zoo_out, peer_out, zoo_s, peer_s = interleaved(zoo_fn, peer_fn, repeats)
        shared = [k for k in peer_out if k not in ("num_active_dims", "mode") and has_value(zoo_out, k)]
        worst = max(abs(find_value(zoo_out, k) - float(peer_out[k])) for k in shared)
        size = (f"{sizes['mig']:,}" if what == "MIG" else f"{n:,}" if what.startswith("unsupervised")
                else f"{pn:,}/{pm:,} points" if "score" in what else f"{n:,}/{m:,}")
        why = (" (dlib's GradientBoostingClassifier() is unseeded: its ties break at random)" if what == "DCI"
               else "")
        rows.append(Row(f"{what} of {MODEL} end to end ({size})", peer_label, label, find_value(zoo_out, key),
                        float(peer_out[key]), zoo_s, peer_s, "≥ 2×", 2.0,
                        note=f"{key}; largest |difference| over {', '.join(shared)}: {worst:.1e}{why}"))
        peer_total += peer_s
        peer_values[what] = float(peer_out[key])
    if dlib_sizes:  # `zoo scores` (one command, one code cache) against running every dlib pipeline, one by one
        only = "mig,beta_vae,factor_vae,dci,sap,modularity,unsupervised"
        out, _, zoo_s, _ = interleaved(lambda: zoo.run("scores", model, only=only), None, repeats)
        summary = out["summary"]
        rows.append(Row(f"all scores of {MODEL} (`zoo scores`, dlib's sizes)", "the seven dlib pipelines above, one "
                        "after the other", f"zoo.run('scores', only={only!r})", summary["mig"],
                        peer_values["MIG"], zoo_s, peer_total, "≥ 2× (half dlib's time)", 2.0,
                        note="values: MIG; peer time: the sum of the seven dlib rows' times; every headline number "
                             "of `zoo scores` equals its own row's"))
    return rows


class ToyGenerator(zoo.ZooModel):
    """A toy MLP generator (64-d normal prior → 3×32×32), as a zoo model so zoo's PPL can run on it."""

    def __init__(self, latent_dim: int = 64, hidden: int = 512, size: int = 32):
        super().__init__()
        self.image_spec = zoo.ImageSpec(3, (size, size))
        self.latent_spec = zoo.LatentSpec((latent_dim,), space="z", prior="normal", interpolation="slerp")
        self.net = torch.nn.Sequential(torch.nn.Linear(latent_dim, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, 3 * size * size))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z)).view(-1, 3, *self.image_spec.size)


class PathGenerator(torch.nn.Module):
    """torchmetrics' generator interface (``sample(n)``, ``forward(latents)`` in [0, 255]) over zoo's PPL paths.

    Its latent is the path itself, ``[a, c, t]``: ``sample`` returns ``[a, c, 0]`` then ``[a, c, 1]``, so torchmetrics'
    ``lerp`` step ``x₁ + (x₂ − x₁)·ε`` gives exactly ``[a, c, ε]`` and ``forward`` decodes zoo's path point
    ``slerp(a, c, t)``: same generator, same endpoint draws, same paths. Images go out in float64 so the rescaling to
    [−1, 1] adds no rounding to the ε-differences."""

    def __init__(self, model, first: torch.Tensor, second: torch.Tensor):
        super().__init__()
        from zoo.metrics.ppl import slerp

        self.model, self.slerp, self.d = model, slerp, first.shape[1]
        self.calls = iter([torch.cat([first, second, torch.zeros(len(first), 1)], 1),
                           torch.cat([first, second, torch.ones(len(first), 1)], 1)])

    def sample(self, num_samples: int) -> torch.Tensor:
        return next(self.calls)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, c, t = x[:, :self.d], x[:, self.d:2 * self.d], x[:, 2 * self.d]
        return self.model.decode(self.slerp(a, c, t)).double() * 255


class PixelSqL2(torch.nn.Module):
    """zoo's default PPL distance (mean squared pixel difference) on torchmetrics' [−1, 1] images."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((x - y) / 2).pow(2).flatten(1).mean(1)


def ppl_rows(peers, generators: dict[str, Any], sizes, repeats) -> list[Row]:
    from zoo.metrics.ppl import draw_paths, perceptual_path_length

    n, rows = sizes["ppl"], []
    for name, model in generators.items():
        batch = default_batch_size(model.device)  # zoo.run's decoding batch; torchmetrics gets the same
        call = task_call([("ppl", {"n": n, "seed": 0})], model) or (
            "zoo.metrics.ppl.perceptual_path_length",
            lambda model=model, batch=batch: perceptual_path_length(model, n=n, seed=0, batch_size=batch))

        def peer(model=model, batch=batch, discard=(0.01, 0.99)):
            first, second, _ = draw_paths(model, n, 0, "end")  # zoo's endpoints for seed 0
            mean, _, kept = peers["tm_ppl"](PathGenerator(model, first, second), num_samples=n, batch_size=batch,
                                            interpolation_method="lerp", epsilon=1e-4, lower_discard=discard[0],
                                            upper_discard=discard[1], sim_net=PixelSqL2())
            return float(mean), kept.numpy()

        zoo_out, (peer_v, _), zoo_s, peer_s = interleaved(call[1], peer, repeats, warmup=True)
        _, every = peer(discard=(None, None))  # every path's value, for zoo's discard rule
        lo, hi = np.percentile(every, 1, method="lower"), np.percentile(every, 99, method="higher")
        same_rule, zoo_v = float(every[(every >= lo) & (every <= hi)].mean()), find_value(zoo_out, "ppl")
        rows.append(Row(f"PPL of {name}, {n:,} paths", "torchmetrics `perceptual_path_length`", call[0], zoo_v,
                        peer_v, zoo_s, peer_s, "≥ 2×", 2.0,
                        note=f"the values differ by the discard rule only: torchmetrics keeps distances up to its "
                             f"99 % quantile with 'lower' interpolation, zoo (NVIDIA) with 'higher'; torchmetrics' "
                             f"distances under zoo's rule give {same_rule:.9g}, relative difference "
                             f"{abs(same_rule - zoo_v) / abs(zoo_v):.1e}"))
    return rows


def jacobian_row(model, sizes, repeats) -> Row:
    from torch.autograd.functional import jacobian

    from zoo.metrics.jacobian import decoder_jacobian

    z = model.sample_latent(sizes["jacobian"], generator=torch.Generator().manual_seed(0)).flatten(1)
    d = z.shape[1]
    batch = max(1, default_batch_size(model.device) // d)  # codes per pass, as zoo.metrics.jacobian_geometry

    def ours():
        return torch.cat([decoder_jacobian(model, z[i:i + batch]).detach() for i in range(0, len(z), batch)])

    def autograd():
        return torch.stack([jacobian(lambda v: model.decode(v[None]).flatten(), zi, vectorize=True,
                                     strategy="forward-mode") for zi in z]).detach()

    @torch.no_grad()
    def passes():
        for _ in range(d):
            model.decode(z)

    j_zoo, j_peer, zoo_s, peer_s = interleaved(ours, autograd, repeats, warmup=True)
    _, _, passes_s, _ = interleaved(passes, None, repeats, warmup=True)
    call = task_call([("jacobian", {"n": len(z), "seed": 0})], model)
    task_s = interleaved(call[1], None, 1)[2] if call else None
    ratio, to_passes = peer_s / zoo_s, zoo_s / passes_s
    err = float((j_zoo - j_peer).abs().max() / j_peer.abs().max())
    return Row(f"Jacobian of the {MODEL} decoder, {len(z)} codes (d={d})",
               "`torch.autograd.functional.jacobian(vectorize=True, strategy='forward-mode')`",
               "zoo.metrics.jacobian.decoder_jacobian", float(j_zoo.abs().max()), float(j_peer.abs().max()),
               zoo_s, peer_s, "≥ 3× autograd, or ≤ 1.5× d decoder passes", None,
               met=ratio >= 3 or to_passes <= 1.5,
               note=f"values: max |J|; max |J_zoo − J_autograd| / max |J| = {err:.1e}; d={d} plain decoder passes "
                    f"over the {len(z)} codes: {passes_s:.3f} s (zoo = {to_passes:.2f}× that)"
                    + (f"; the whole `{call[0]}` (J, eigenvalues, report): {task_s:.3f} s" if call else ""))


def quick_scores_row(model, repeats) -> Row:
    """The whole ``zoo scores --quick`` (a first look: a tenth of dlib's sizes), absolute time."""
    out, _, zoo_s, _ = interleaved(lambda: zoo.run("scores", model, quick=True), None, repeats)
    return Row(f"`zoo scores {MODEL} --quick` (every score, a tenth of dlib's sizes)", "—",
               "zoo.run('scores', quick=True)", out["summary"]["mig"], None, zoo_s, None, "≤ 3 min", None,
               met=zoo_s <= 180, note=f"values: MIG; {zoo_s / 60:.1f} min for {', '.join(out['summary'])}")


def faces_row(sizes, repeats) -> Row:
    ds = get_dataset("faces64")
    factors = ds.sample_factors(sizes["faces"], np.random.RandomState(0))
    _, _, zoo_s, _ = interleaved(lambda: ds.images_from_factors(factors), None, repeats, warmup=True)
    rate = len(factors) / zoo_s
    return Row(f"faces64 rendering, {len(factors):,} images", "—", "get_dataset('faces64').images_from_factors",
               rate, None, zoo_s, None, "≥ 20,000 images/s", None, met=rate >= 20_000, note=f"{rate:,.0f} images/s")


def training_row(sizes, repeats) -> Row:
    """``zoo train betavae --data dsprites`` (through zoo.train.train) vs a plain loop over the same network."""
    import torch.nn.functional as F

    from zoo.train import train

    steps, batch, lr, beta = sizes["train_steps"], 64, 5e-4, 4.0
    ds = get_dataset("dsprites")

    def with_zoo():
        with tempfile.TemporaryDirectory() as tmp:
            train("betavae", "dsprites", steps=steps, out=Path(tmp) / "run", batch_size=batch, lr=lr,
                  model_args={"beta": beta}, checkpoint_every=steps + 1)

    def plain():
        model = zoo.build_model("betavae", {"beta": beta}, seed=0).train()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        rng, g = np.random.default_rng(1), torch.Generator().manual_seed(0)
        for _ in range(steps):
            x = ds.images_from_factors(ds.sample_factors(batch, rng))
            dist = model.encoder(x)
            z = dist.mean + torch.randn(dist.mean.shape, generator=g) * torch.exp(0.5 * dist.logvar)
            rec = F.binary_cross_entropy_with_logits(model.decoder(z), x, reduction="none").flatten(1).sum(1).mean()
            kl = 0.5 * (dist.mean.pow(2) + dist.logvar.exp() - 1 - dist.logvar).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            (rec + beta * kl).backward()
            opt.step()

    _, _, zoo_s, peer_s = interleaved(with_zoo, plain, repeats)
    return Row(f"training betavae on dsprites, {steps} steps of 64", "plain torch loop (same network, Adam, batch)",
               "zoo.train.train (zoo train)", steps / zoo_s, steps / peer_s, zoo_s, peer_s, "≥ 0.95× (steps/s)",
               0.95,
               note="values: steps/s; zoo's time includes building the model and writing the weights")


# --- where the time goes ---------------------------------------------------------------------------------------------

BATCHES = (8, 16, 32, 64, 256)


def batch_sweep(sizes) -> list[str]:
    """Seconds per 10,000 images through ``zoo.batching.encode`` at batch sizes 8…256, for every shipped encoder.
    The images are rendered beforehand (faces64 rendering would dominate); the sizes take turns within each round so
    a busy machine slows them alike."""
    from zoo.batching import encode
    from zoo.image import adapt

    lines = ["| encoder | image | " + " | ".join(f"batch {b}" for b in BATCHES) + " |",
             "| --- | --- |" + " --- |" * len(BATCHES)]
    n = sizes["sweep"]
    for name in ENCODERS:
        model = zoo.create_model(name)
        ds = get_dataset(model.image_spec.dataset or "faces64")
        x = adapt(ds.images_from_factors(ds.sample_factors(n, np.random.RandomState(0))), model.image_spec)
        times: dict[int, list[float]] = {b: [] for b in BATCHES}
        for round_ in range(4):  # the first round warms up
            for b in BATCHES:
                t = time.perf_counter()
                encode(model, x, batch_size=b)
                if round_:
                    times[b].append(time.perf_counter() - t)
        cells = [f"{statistics.median(times[b]) / n * 1e4:.2f} s" for b in BATCHES]
        lines.append(f"| {name} | {'×'.join(map(str, x.shape[1:]))} | " + " | ".join(cells) + " |")
    return lines


def profile_mig(model, dataset, sizes) -> str:
    """cProfile of zoo's end-to-end MIG, top 15 by own time."""
    call = task_call([("mig", {"num_train": sizes["mig"], "seed": 0})], model)
    if call is None:
        from zoo.metrics.mig import compute_mig

        call = ("compute_mig", lambda: compute_mig(model, dataset, num_train=sizes["mig"], seed=0))
    profiler = cProfile.Profile()
    profiler.runcall(call[1])
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return f"{call[0]}, num_train={sizes['mig']}\n" + out.getvalue().split("\n", 4)[-1].strip()


# --- report ----------------------------------------------------------------------------------------------------------

def versions() -> str:
    def v(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    import sklearn

    return (f"zoo {zoo.__version__}, torch {torch.__version__}, numpy {np.__version__}, scikit-learn "
            f"{sklearn.__version__}, disentanglement-lib {v('disentanglement-lib')}, torchmetrics {v('torchmetrics')}")


def fmt(x: float | None, spec: str = ".6g") -> str:
    return "—" if x is None else format(x, spec)


def report(rows: list[Row], args, sizes, sweep: list[str], profile: str | None, elapsed: float,
           load_s: float) -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# zoo against its peers, end to end",
        "",
        f"`python benchmarks/bench_peers.py {' '.join(sys.argv[1:])}` ({elapsed:.0f} s).".replace(" `", "`"),
        "",
        *(["**Quick smoke run (small sizes): these are not the benchmark's numbers.**", ""] if args.quick else []),
        (f"- machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
         f"load average at the end {load}; torch threads {torch.get_num_threads()}, BLAS/OpenMP threads "
         f"{args.threads}"),
        f"- versions: {versions()}, Python {platform.python_version()}",
        f"- sizes: {', '.join(f'{k}={v}' for k, v in sizes.items())}",
        ("- ratio = peer time / zoo time, each the median of the runs; both sides get the same loaded model and the "
         f"same draws; loading the model (`zoo.create_model({MODEL!r})`, {load_s:.2f} s) is in no row"),
        "",
        "| what | zoo | peer | zoo value | peer value | \\|difference\\| | zoo s | peer s | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        diff = abs(r.zoo_value - r.peer_value) if r.zoo_value is not None and r.peer_value is not None else None
        met = "—" if r.met is None else "yes" if r.met else "**no**"
        lines.append(f"| {r.what} | `{r.zoo_call}` | {r.peer} | {fmt(r.zoo_value)} | {fmt(r.peer_value)} | "
                     f"{fmt(diff, '.1e')} | {fmt(r.zoo_s, '.3f')} | {fmt(r.peer_s, '.3f')} | "
                     f"{fmt(r.ratio, '.2f')}{'×' if r.ratio else ''} | {r.target} | {met} |")
    notes = [f"- {r.what}: {r.note}" for r in rows if r.note]
    lines += ["", "## Notes", "", *notes]
    if any(r.what.startswith(("MIG of", "all scores", "`zoo scores")) for r in rows):
        lines += ["", "## Where a score cannot be 2× faster, and why", "", *limits(sizes)]
    if sweep:
        lines += ["", "## Encoder batch size (zoo.batching.encode, seconds per 10,000 images)", "", *sweep]
    if profile:
        lines += ["", "## Where zoo's MIG time goes (cProfile, top 15 by own time)", "", "```", profile, "```"]
    return "\n".join(lines) + "\n"


def limits(sizes) -> list[str]:
    """Why the per-score rows cannot all reach 2×: how many of their draws are distinct grid points, in expectation
    (n draws from a grid of N points have N(1 − e^(−n/N)) distinct ones); the code cache encodes only those."""
    grid = len(get_dataset("dsprites"))

    def distinct(n: int) -> float:
        return grid * -np.expm1(-n / grid)

    draws = {"MIG": sizes["mig"], "SAP, modularity, DCI (train + test)": sizes["train"] + sizes["eval"],
             "unsupervised": sizes["train"],
             "β-VAE score (pairs of 64 images)": 2 * 64 * (sizes["pairs_train"] + sizes["pairs_eval"]),
             "FactorVAE score (variance estimate + groups of 64)":
                 sizes["variance"] + 64 * (sizes["pairs_train"] + sizes["pairs_eval"])}
    # dlib draws SAP's, modularity's and DCI's rows three times; MIG's and the unsupervised rows are the first of them
    every = sum(draws.values()) + 2 * (sizes["train"] + sizes["eval"])
    independent = every - draws["MIG"] - draws["unsupervised"] - 2 * (sizes["train"] + sizes["eval"])
    lines = ["Images a score draws from dSprites' 737,280-point grid, and how many of them are distinct in expectation "
             "— dlib encodes every draw, zoo's code cache each distinct point once (`zoo scores` shares one cache "
             "for all the scores):", "", "| score | draws | distinct | most zoo can save |", "| --- | ---: | ---: | ---: |"]
    for what, n, m in [*((w, n, n) for w, n in draws.items()), ("every score of `zoo scores`", every, independent)]:
        lines.append(f"| {what} | {n:,} | {distinct(m):,.0f} | {n / distinct(m):.2f}× |")
    lines += ["", "- A score alone that draws a few thousand images (MIG, SAP, modularity, DCI, unsupervised) pushes the "
              "same images through the same fp32 encoder on both sides: rendering and encoding are most of its time "
              "(see the profile), so its ratio is about 1× and cannot reach 2× without changing the encoder's "
              "arithmetic. zoo's own part is faster (MIG's estimator, the first row; DCI's per-factor classifiers "
              "fitted in parallel when zoo has more than one thread, identical numbers).",
              "- PPL: both sides decode the same 2 × n images in the same fp32. Decoding the two ends of a path in "
              "one batch would change their rounding differently, and the ε = 1e-4 difference is divided by ε², "
              "which turns a last-digit change into a different number; so zoo decodes each end in a batch of its "
              "own, as torchmetrics does."]
    return lines


def _sections(text: str) -> dict[str, list[str]]:
    """A report's parts: "head" (up to the table), "table" (its row lines), "## ..." sections by title."""
    parts: dict[str, list[str]] = {"head": [], "table": []}
    at = "head"
    for line in text.splitlines():
        if line.startswith("## "):
            at = line
            parts[at] = []
        elif at == "head" and line.startswith("| ") and not line.startswith(("| what ", "| --- ")):
            parts["table"].append(line)
        elif not (at == "head" and line.startswith(("| what ", "| --- "))):
            parts[at].append(line)
    return parts


def merge(text: str, earlier: str) -> str:
    """This run's report plus what the ``earlier`` one measured and this one did not: its table rows and notes (rows
    are named by their first cell) and its other sections; the earlier command lines are kept under "Also"."""
    new, old = _sections(text), _sections(earlier)
    name = lambda row: row.split(" | ")[0]  # noqa: E731 - "| what" of a table line
    measured = {name(r)[2:] for r in new["table"]}
    kept = [r for r in old["table"] if name(r)[2:] not in measured]
    notes = [n for n in old.get("## Notes", []) if n.startswith("- ") and n[2:].split(": ")[0] not in measured]
    also = " — the rows below that this run did not measure"
    commands = [line.removeprefix("Also: ").removesuffix(also) for line in old["head"]
                if line.startswith(("`python benchmarks/bench_peers.py", "Also: `"))]
    head = new["head"]
    while head and not head[-1].strip():
        head = head[:-1]
    at = next(i for i, line in enumerate(head) if line.startswith("`python")) + 1
    out = [*head[:at], *[f"Also: {c}{also}" for c in commands], *head[at:], "",
           "| what | zoo | peer | zoo value | peer value | \\|difference\\| | zoo s | peer s | ratio | target | met |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *new["table"], *kept]
    for title in dict.fromkeys([*new, *old]):
        if title.startswith("## "):
            body = new.get(title) or old[title]
            if title == "## Notes":
                body = [line for line in new.get(title, []) if line.strip()] + notes
            out += ["", title, "", *[line for line in body if line.strip() or title == "## Notes"]]
    return "\n".join(out) + "\n"


ROWS = ("mig_arrays", "scores", "quick_scores", "ppl", "jacobian", "faces", "training", "sweep", "profile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and BLAS/OpenMP threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (the median is reported)")
    parser.add_argument("--score-repeats", type=int, default=1,
                        help="timed runs per side of the score rows (minutes each at dlib's sizes)")
    parser.add_argument("--only", default=",".join(ROWS), help=f"comma-separated subset of {', '.join(ROWS)}")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "peers.md")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows and sections of --out that this run does not measure (e.g. after --only)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if only - set(ROWS) or min(args.threads, args.repeats, args.score_repeats) < 1:
        fail(f"--only takes {', '.join(ROWS)}; --threads, --repeats and --score-repeats must be positive")
    peers = import_peers()
    torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else FULL
    start = time.perf_counter()
    rows: list[Row] = []
    sweep: list[str] = []
    profile = None
    with threadpool_limits(limits=args.threads):
        t = time.perf_counter()
        model = zoo.create_model(MODEL)
        load_s = time.perf_counter() - t
        dataset = get_dataset("dsprites")
        steps = [
            ("mig_arrays", lambda: rows.extend(mig_array_rows(peers, sizes, args.repeats))),
            ("scores", lambda: rows.extend(score_rows(peers, model, dataset, sizes, args.score_repeats))),
            ("ppl", lambda: rows.extend(ppl_rows(peers, {"a toy MLP generator": toy_generator(), MODEL: model},
                                                 sizes, args.repeats))),
            ("jacobian", lambda: rows.append(jacobian_row(model, sizes, args.repeats))),
            ("quick_scores", lambda: rows.append(quick_scores_row(model, args.score_repeats))),
            ("faces", lambda: rows.append(faces_row(sizes, args.repeats))),
            ("training", lambda: rows.append(training_row(sizes, args.repeats))),
            ("sweep", lambda: sweep.extend(batch_sweep(sizes))),
        ]
        for name, step in steps:
            if name in only:
                print(f"[{time.perf_counter() - start:6.0f} s] {name}", file=sys.stderr, flush=True)
                step()
        if "profile" in only:
            profile = profile_mig(model, dataset, sizes)
    text = report(rows, args, sizes, sweep, profile, time.perf_counter() - start, load_s)
    if args.merge and args.out.is_file():
        text = merge(text, args.out.read_text())
    print(text)
    from zoo._util import atomic_file

    with atomic_file(args.out, overwrite=True) as tmp:  # a killed run leaves the earlier report whole
        tmp.write_text(text)


def toy_generator() -> ToyGenerator:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return ToyGenerator().eval()


if __name__ == "__main__":
    main()
