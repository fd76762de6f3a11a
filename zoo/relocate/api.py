"""Relocation between two models' latent spaces, in steps a user can call on their own::

    rel = fit_relocation("vae.faces64", "svae", method="ridge")   # a map fitted on a fit set of their dataset
    result = evaluate_relocation(rel)                             # measured on held-out images of that dataset
    elsewhere = evaluate_relocation(rel, "faces64", seed=7)       # or on other images, of any dataset
    rel.save("maps/vae-svae")
    relocation_png(rel, images, "relocation.png")

:func:`relocate` chains them as the seed paper does (Asperti & Tonelli 2022, Table 2); it is the ``relocate`` task
behind ``zoo relocate``. Errors, on held-out images x never used for fitting, as mean ± std over groups of 100 images
(at least two groups, so that the ± is a spread):
  R-MSE = mse(x, D₁(E₁(x)))          the source model's own reconstruction
  L-MSE = mse(E₂(x), M(E₁(x)))       the map's error in the target latent space
  M-MSE = mse(x, D₂(M(E₁(x))))       the image after relocation into the target
next to the target's own reconstruction error mse(x, D₂(E₂(x))) and the dataset's mean inter-image MSE between each
test image and another one (the error of a map that ignored its input). Images are adapted (``zoo.image.adapt``) to
each model's resolution and compared there.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from zoo import batching, distributed, registry
from zoo._util import check_target
from zoo.errors import UnknownName, ZooError
from zoo.image import adapt, save_rows
from zoo.invert import refine_codes
from zoo.progress import track
from zoo.protocol import ZooModel, require
from zoo.relocate.maps import LatentMap, fit_map, map_files, map_spec, min_fit_points, save_map
from zoo.relocate.support import fit_set_spec, reconstruction_gain, select

# Images per group of the reported mean ± std: the paper's batches of 100 (fewer when there are fewer than 200 test
# images, so that there are always two groups). A statistical choice, independent of the compute batch size.
EVAL_GROUP = 100
N_GAIN = 128  # pool images the support set's reconstruction gains are measured on
# Target codes refined together: refine_codes' loss is the mean over its batch, so Adam's steps (through its ε) depend
# on how many codes share it; a fixed group keeps the result independent of --batch-size.
REFINE_GROUP = 100
PNG_IMAGES = 8
PNG_ROWS = ("original", "source reconstruction", "relocated into target", "target reconstruction")
STATS = ("l_mse", "r_mse", "m_mse", "target_r_mse")


@dataclass
class Relocation:
    """A map from ``source``'s latent space into ``target``'s and how it was fitted: ``relocation(codes)`` carries
    source codes into the target's space, ``save(folder)`` writes the map (config.json + map.safetensors)."""

    source: ZooModel
    target: ZooModel
    map: LatentMap
    dataset: Any  # the zoo.data.ImageDataset the fit set came from
    fit: str
    method: str
    seed: int
    pool: np.ndarray = field(repr=False)  # indices of `dataset` the fit set was chosen from: never test images
    fit_images: np.ndarray | None = field(repr=False)  # indices of the images fitted on (None: generated samples)
    refine_targets: int = 0

    @property
    def n_fit(self) -> int:
        return self.map.config["n_fit"]

    def __call__(self, codes: Tensor) -> Tensor:
        return self.map(codes.flatten(1).to(self.map.A.device)).view(-1, *self.target.latent_spec.shape)

    def save(self, folder: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """An earlier map in ``folder`` is replaced; a folder holding other files is refused unless ``overwrite``,
        which replaces zoo's files and keeps the others."""
        return save_map(self.map, folder, overwrite=overwrite)


@dataclass
class RelocationResult:
    source: str
    target: str
    data: str
    fit: str
    method: str
    n_fit: int
    n_test: int
    seed: int
    l_mse: tuple[float, float]  # (mean, std) over groups of test images
    r_mse: tuple[float, float]
    m_mse: tuple[float, float]
    target_r_mse: tuple[float, float]
    baseline: float
    map: LatentMap | None = field(default=None, repr=False)
    files: dict[str, str] = field(default_factory=dict)
    test_indices: np.ndarray | None = field(default=None, repr=False)  # the images of `data` it was measured on

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("map", "test_indices")}
        for k in STATS:
            d[k] = {"mean": d[k][0], "std": d[k][1]}
        d["files"] = dict(self.files)
        d["map_config"] = dict(self.map.config) if self.map is not None else None
        return d


def _model(m: Any, device: torch.device | None = None) -> ZooModel:
    from zoo.factory import create_model

    return m if isinstance(m, ZooModel) else create_model(m, device=device or batching.default_device())


def _dataset(data: Any, models: tuple[ZooModel, ...]) -> Any:
    """``data`` (a dataset, a name, or None for the models' common training data) as a dataset."""
    if data is None or isinstance(data, str):
        from zoo.data import dataset_for

        return dataset_for(*models, data=data)
    return data


def _draw(dataset: Any, n_pool: int, n_test: int, seed: int) -> np.ndarray:
    """``n_pool + n_test`` distinct image indices of ``dataset``: the draw both the fit (its pool is the start) and the
    evaluation (the rest) make with one seed, so a relocation's pool and test images never overlap."""
    if len(dataset) < n_pool + n_test:
        raise ZooError(f"{dataset.name} has {len(dataset):,} images, fewer than the {n_pool:,} pool + {n_test:,} test "
                       f"images asked for; lower --n-pool or --n-test")
    return np.random.default_rng(seed).choice(len(dataset), size=n_pool + n_test, replace=False)


def resolve_fit(fit: str) -> str:
    """``auto`` → ``support``; any other name must be a registered fit set (else one line with a did-you-mean)."""
    # The paper fits StyleGAN maps on generated samples only because its StyleGAN was trained on another dataset
    # (CelebA-HQ); when both models know the data, its support set of real images is the better choice (compare
    # `zoo relocate stylegan svae` with and without `--fit generated` on the shipped weights).
    if fit == "auto":
        return "support"
    if fit not in registry.fit_sets.entries:
        raise UnknownName(registry.fit_sets.unknown_message(fit, [*registry.fit_sets.names(), "auto"]))
    return fit


def check_n_test(n_test: int) -> None:
    if n_test < 2:
        raise ZooError(f"--n-test {n_test}: the baseline is the mean MSE between pairs of distinct test images, so it "
                       f"needs at least 2")


def check_sizes(fit: str, method: str, d_source: int, n_fit: int, n_pool: int) -> None:
    """Refuse fit sizes that would make a relocation's numbers meaningless, before any model runs."""
    fit_set = fit_set_spec(fit)
    if not (fit_set.generated or fit_set.whole_pool) and n_fit > n_pool:
        raise ZooError(f"--n-fit {n_fit} is more than the {n_pool} pool images the {fit} set is chosen from; lower "
                       f"--n-fit or raise --n-pool")
    what, points = ("--n-pool", n_pool) if fit_set.whole_pool else ("--n-fit", n_fit)
    need = min_fit_points(method, d_source)
    if points < need:
        raise ZooError(f"{what} {points}: the {method} map from {d_source}-dimensional codes needs at least {need} fit "
                       f"points (fewer leave it underdetermined: it would fit them exactly and be arbitrary "
                       f"elsewhere); raise {what} or use --method ridge")


def correspondence(source: ZooModel, target: ZooModel, fit: str, pool: Tensor | None, n_fit: int, *, seed: int = 0,
                   batch_size: int | None = None, refine_targets: int = 0
                   ) -> tuple[Tensor, Tensor, np.ndarray | None]:
    """Pairs (source code, target code) of the same images, flattened, and which ``pool`` images they are: ``n_fit``
    of them, chosen by the registered fit set ``fit``; or, for a generated set (no pool images: None), samples of the
    source decoded and encoded by the target (the paper's choice when StyleGAN is involved). With ``refine_targets``
    > 0 the target codes of pool images are refined by that many inversion steps (:func:`zoo.invert.refine_codes`),
    for targets whose encoder is only an approximate inverse (a GAN recoder)."""
    # Under torchrun each rank encodes, decodes and refines a shard (whole batches) and gets every row back.
    device, block = source.device, batch_size or batching.default_batch_size(source.device)

    def codes(model: ZooModel, images: Tensor) -> Tensor:
        return batching.encode(model, images, batch_size=batch_size).reshape(len(images), model.latent_spec.dim)

    if fit_set_spec(fit).generated:
        require(source, "sample", purpose=f"--fit {fit}")
        zs = source.sample_latent(n_fit, generator=torch.Generator().manual_seed(seed))
        zt = distributed.map_shards(lambda rows: codes(target, batching.decode(source, zs[rows], batch_size=batch_size)),
                                    n_fit, block=block, device=device)
        return zs.flatten(1).cpu(), zt, None
    zs = distributed.map_shards(lambda rows: codes(source, pool[rows]), len(pool), block=block, device=device)
    gains = reconstruction_gain(source, pool[:N_GAIN], batch_size) if fit_set_spec(fit).uses_gains else None
    chosen = select(fit, zs, n_fit, gains=gains, seed=seed)
    zt = distributed.map_shards(lambda rows: codes(target, pool[chosen[rows]]), len(chosen), block=block, device=device)
    if refine_targets:
        def refined(rows: slice) -> Tensor:
            groups = [slice(i, min(i + REFINE_GROUP, rows.stop)) for i in range(rows.start, rows.stop, REFINE_GROUP)]
            return torch.cat([refine_codes(target, pool[chosen[g]], steps=refine_targets,
                                           init=zt[g].view(-1, *target.latent_spec.shape).to(target.device)
                                           ).flatten(1).cpu() for g in groups] or [torch.empty(0, zt.shape[1])])

        zt = distributed.map_shards(refined, len(chosen), block=REFINE_GROUP, device=device)
    return zs[chosen], zt, chosen


def fit_relocation(source: Any, target: Any, *, data: Any = None, fit: str = "auto", method: str = "linear",
                   n_fit: int = 150, n_pool: int = 2000, hold_out: int = 1000, seed: int = 0, refine_targets: int = 0,
                   batch_size: int | None = None) -> Relocation:
    """Fit the registered ``method`` map from ``source``'s latent space to ``target``'s (models or names) on the
    registered ``fit`` set: ``n_fit`` of ``n_pool`` images of ``data`` (a dataset or its name; default: the one both
    models were trained on), or samples of the source for a generated set.

    The pool is the start of one draw of ``n_pool + hold_out`` images; :func:`evaluate_relocation` with the same seed
    and ``n_test = hold_out`` tests on the rest, so the pair makes the same split as ``zoo relocate``. Evaluations
    with other seeds or sizes also leave the pool out. ``refine_targets``: see :func:`correspondence`."""
    src, tgt = _model(source), _model(target)
    for m in (src, tgt):
        require(m, "encode", "decode", purpose="relocation")
    fit = resolve_fit(fit)
    map_spec(method)  # an unknown name is one line with a did-you-mean, before any work
    check_sizes(fit, method, src.latent_spec.dim, n_fit, n_pool)
    dataset = _dataset(data, (src, tgt))
    pool = _draw(dataset, n_pool, hold_out, seed)[:n_pool]  # drawn even for a generated set: the same test images
    images = None if fit_set_spec(fit).generated else dataset.images(pool)
    zs, zt, chosen = correspondence(src, tgt, fit, images, n_fit, seed=seed, batch_size=batch_size,
                                    refine_targets=refine_targets)
    if len(zs) < 2:
        raise ZooError(f"the {fit} set has {len(zs)} points; lower the threshold or use another --fit")
    mapping = fit_map(zs, zt, method, seed=seed)
    mapping.config.update({"source": src.display_name, "target": tgt.display_name, "fit": fit, "data": dataset.name,
                           "seed": seed, "refine_targets": refine_targets})
    return Relocation(src, tgt, mapping, dataset, fit, method, seed, pool, None if chosen is None else pool[chosen],
                      refine_targets)


def _decodings(rel: Relocation, x: Tensor, batch_size: int | None) -> dict[str, Tensor]:
    """Images ``x`` at each model's resolution, their codes, and the three decodings relocation compares."""
    src, tgt = rel.source, rel.target
    xs, xt = adapt(x, src.image_spec), adapt(x, tgt.image_spec)
    z_source = batching.encode(src, xs, batch_size=batch_size)
    z_target = batching.encode(tgt, xt, batch_size=batch_size)
    z_relocated = rel(z_source)
    return {"x_source": xs, "x_target": xt, "z_target": z_target, "z_relocated": z_relocated,
            "source_reconstruction": batching.decode(src, z_source, batch_size=batch_size),
            "relocated": batching.decode(tgt, z_relocated, batch_size=batch_size),
            "target_reconstruction": batching.decode(tgt, z_target, batch_size=batch_size)}


def _mse(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).pow(2).flatten(1).mean(1)


def evaluate_relocation(relocation: Relocation, data: Any = None, *, n_test: int = 1000, seed: int | None = None,
                        batch_size: int | None = None) -> RelocationResult:
    """L-, R-, M-MSE and the target's R-MSE of ``relocation`` on ``n_test`` images of ``data`` (a dataset or its
    name; default: the dataset it was fitted on), next to the inter-image baseline. Images of the dataset it was
    fitted on are never taken from its pool. ``seed`` (default: the fit's) draws the test images and the baseline's
    pairs.

    Under torchrun every rank draws the same test images, measures its shard of whole groups and gathers every
    rank's per-image errors (:mod:`zoo.distributed`), so the numbers are one process's: every rank must call it."""
    check_n_test(n_test)
    rel = relocation
    seed = rel.seed if seed is None else seed
    dataset = rel.dataset if data is None else _dataset(data, (rel.source, rel.target))
    exclude = rel.pool if dataset.name == rel.dataset.name else np.empty(0, dtype=np.int64)
    order = _draw(dataset, len(exclude), n_test, seed)
    test = order[~np.isin(order, exclude)][:n_test]
    images = dataset.images(test)
    group = min(EVAL_GROUP, math.ceil(n_test / 2))  # at least two groups: a std over one would print as 0

    def errors_of(images_at: slice) -> Tensor:  # per image, one column per STATS
        rows = []
        for lo in track(range(images_at.start, images_at.stop, group), "relocation: held-out groups"):
            d = _decodings(rel, images[lo:lo + group], batch_size)
            rows.append(torch.stack([_mse(d["z_target"], d["z_relocated"]),
                                     _mse(d["source_reconstruction"], d["x_source"]),
                                     _mse(d["relocated"], d["x_target"]),
                                     _mse(d["target_reconstruction"], d["x_target"])], 1))
        return torch.cat(rows) if rows else torch.empty(0, len(STATS))

    # whole groups, each decoded in the batches of one process; each group summed contiguously, as before
    errors = distributed.map_shards(errors_of, n_test, block=group, device=rel.source.device).T.contiguous()
    per_group = {k: [errors[i, lo:lo + group].mean().item() for lo in range(0, n_test, group)]
                 for i, k in enumerate(STATS)}
    xt = adapt(images, rel.target.image_spec)
    other = np.random.default_rng(seed + 1).permutation(n_test)
    itself = other == np.arange(n_test)
    other[itself] = (other[itself] + 1) % n_test  # pairs of distinct images: a fixed point would add an MSE of 0
    baseline = _mse(xt, xt[torch.from_numpy(other)]).mean().item()
    stats = {k: (float(np.mean(v)), float(np.std(v))) for k, v in per_group.items()}
    return RelocationResult(rel.source.display_name, rel.target.display_name, dataset.name, rel.fit, rel.method,
                            rel.n_fit, n_test, seed, **stats, baseline=baseline, map=rel.map, test_indices=test)


def relocation_png(relocation: Relocation, images: Tensor, path: str | os.PathLike[str], *,
                   batch_size: int | None = None, overwrite: bool = False) -> Path:
    """The paper's rows — original, source reconstruction, target decoding after relocation — plus the target's own
    reconstruction, one labelled row each."""
    d = _decodings(relocation, images, batch_size)
    rows = [images, d["source_reconstruction"], d["relocated"], d["target_reconstruction"]]
    return save_rows(rows, path, scale=2, labels=PNG_ROWS, overwrite=overwrite)


def relocate(source: Any, target: Any, *, data: Any = None, fit: str = "auto", method: str = "linear",
             n_fit: int = 150, n_pool: int = 2000, n_test: int = 1000, seed: int = 0, refine_targets: int = 0,
             batch_size: int | None = None, out: str | os.PathLike[str] | None = None,
             save_map_to: str | os.PathLike[str] | None = None, overwrite: bool = False) -> RelocationResult:
    """:func:`fit_relocation`, :func:`evaluate_relocation` on ``n_test`` held-out images of the same dataset, and on
    request relocation.png in ``out`` and the map in ``save_map_to`` (a folder holding other files is refused before
    any work unless ``overwrite``)."""
    check_n_test(n_test)
    if save_map_to is not None:
        check_target(save_map_to, map_files, "latent map", overwrite=overwrite)
    rel = fit_relocation(source, target, data=data, fit=fit, method=method, n_fit=n_fit, n_pool=n_pool,
                         hold_out=n_test, seed=seed, refine_targets=refine_targets, batch_size=batch_size)
    result = evaluate_relocation(rel, n_test=n_test, seed=seed, batch_size=batch_size)
    if not distributed.is_main():  # under torchrun rank 0 writes the files
        return result
    if out is not None:
        first = rel.dataset.images(result.test_indices[:PNG_IMAGES])
        result.files["png"] = str(relocation_png(rel, first, Path(out) / "relocation.png", batch_size=batch_size,
                                                 overwrite=overwrite))
    if save_map_to is not None:
        result.files["map"] = str(rel.save(save_map_to, overwrite=overwrite))
    return result


def relocation_matrix(models: list[Any], *, device: str | torch.device | None = None,
                      **kwargs: Any) -> list[RelocationResult]:
    """:func:`relocate` for every ordered pair of ``models`` (the paper's Table 2), each model loaded once."""
    dev = batching.resolve_device(device)
    loaded = {m: _model(m, dev) for m in models}
    for m in loaded.values():  # before the first pair's work
        require(m, "encode", "decode", purpose="relocation")
    return [relocate(loaded[a], loaded[b], **kwargs) for a in models for b in models if a != b]


def default_out(source: ZooModel, target: ZooModel) -> Path:
    """relocation/SOURCE-TARGET: one folder per pair, so pictures of different pairs never replace each other."""
    def slug(name: str) -> str:
        return re.sub(r"[^\w.-]+", "_", name).strip("_")

    return Path("relocation") / f"{slug(source.display_name)}-{slug(target.display_name)}"


def relocate_task(run: Any, *, out: str | None, save_map: str | None, **options: Any) -> dict[str, Any]:
    """The registered ``relocate`` task (``zoo relocate``, ``zoo run relocate``, ``zoo.run("relocate", …)``):
    :func:`relocate` on the run's models, data, batch size, with relocation.png in ``out`` (default
    :func:`default_out`)."""
    source, target = run.models
    result = relocate(source, target, data=run.data, batch_size=run.batch_size,
                      out=out if out is not None else default_out(source, target), save_map_to=save_map, **options)
    return result.to_dict()
