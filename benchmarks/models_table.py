"""The seed thesis' Table 4.1 for zoo's shipped models: instances, latent dimension, resolution, FID, I-MSE — plus
the reconstruction MSE on held-out images.

    python benchmarks/models_table.py            # writes benchmarks/results/models.md (+ models.json)
    python benchmarks/models_table.py --n-fid 500 --out /tmp/models.md     # a quick look

- FID: ``zoo.run("fid", NAME, n=5000)`` — generated samples against held-out data in zoo's shipped offline feature
  network of the dataset (not Inception: comparable between zoo models, not with papers' FIDs); also of the
  reconstructions (``mode="reconstruction"``).
- I-MSE (the thesis' inverter error): mean over latent dimensions of (E(D(z)) − z)² for z drawn from the model's
  latent distribution (W samples for StyleGAN) — the recoder's error for GANs. The thesis writes 0 for VAEs ("their
  encoding is native"); here it is measured for every model, VAEs included, and it is not 0 for them.
- Reconstruction MSE: pixel MSE of D(E(x)) on 1,000 held-out images (seed 10,000, as the model cards).

A model type with several shipped instances (Split-VAE's two seeds) is reported as their mean, as the thesis does,
with every instance listed below the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import zoo
from zoo import batching
from zoo.publish import HELD_OUT_SEED
from zoo.registry import list_models

HERE = Path(__file__).parent
THESIS = """The thesis (Table 4.1; CelebA 64×64, StyleGAN on CelebA-HQ at 1024×1024; Inception FID):

| model | instances | latent dim | resolution | FID | I-MSE |
| --- | --- | --- | --- | --- | --- |
| GAN | 5 | 64 | 64×64 | 56.86 | 0.1971 |
| VAE | 5 | 64 | 64×64 | 60.78 | 0.0 |
| SplitVAE | 3 | 150 | 64×64 | 35.12 | 0.0 |
| StyleGAN | 1 | 512 | 1024×1024 | 5.06 | 0.0183 |
"""


@torch.no_grad()
def reconstruction_mse(model, n: int) -> float:
    from zoo.data import dataset_for
    from zoo.image import adapt

    x, _ = dataset_for(model).sample(n, HELD_OUT_SEED)
    rec = batching.decode(model, batching.encode(model, x))
    return float((rec - adapt(x, model.image_spec)).pow(2).mean())


def measure(name: str, n_fid: int, n_rec: int) -> dict:
    model = zoo.create_model(name)
    spec = model.image_spec
    row = {"name": name, "arch": model.arch, "dataset": spec.dataset,
           "latent_dim": int(torch.Size(model.latent_spec.shape).numel()), "latent_space": model.latent_spec.space,
           "resolution": "×".join(map(str, spec.size))}
    fid = zoo.run("fid", model, n=n_fid, seed=0)
    row |= {"fid_samples": fid["fid"], "fid_features": fid["features"], "fid_n": fid["n"],
            "fid_reconstructions": zoo.run("fid", model, n=n_fid, seed=0, mode="reconstruction")["fid"],
            "i_mse": zoo.run("imse", model, n=1000, seed=1)["imse"], "reconstruction_mse": reconstruction_mse(model, n_rec)}
    return row


def table(rows: list[dict]) -> list[str]:
    types: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        types.setdefault((r["dataset"], r["arch"]), []).append(r)
    lines = ["| model | data | instances | latent dim | resolution | FID samples | FID reconstructions | I-MSE | "
             "reconstruction MSE |", "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for (dataset, arch), group in sorted(types.items()):
        def mean(key: str) -> float:
            return statistics.fmean(r[key] for r in group)

        first = group[0]
        lines.append(f"| {arch} | {dataset} | {len(group)} | {first['latent_dim']} ({first['latent_space']}) | "
                     f"{first['resolution']} | {mean('fid_samples'):.1f} | {mean('fid_reconstructions'):.1f} | "
                     f"{mean('i_mse'):.4f} | {mean('reconstruction_mse'):.4f} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-fid", type=int, default=5000, help="images per FID set")
    p.add_argument("--n-rec", type=int, default=1000, help="held-out images for the reconstruction MSE")
    p.add_argument("--out", type=Path, default=HERE / "results" / "models.md")
    args = p.parse_args()
    start = time.perf_counter()
    rows = []
    for name in list_models(pretrained=True):
        model = zoo.create_model(name)
        if not (model.has("encode") and model.has("decode") and model.has("sample")):
            continue  # a model without an encoder, decoder or prior has no row in the thesis' table
        print(f"[{time.perf_counter() - start:5.0f} s] {name}", flush=True)
        rows.append(measure(name, args.n_fid, args.n_rec))
    features = sorted({f"{r['dataset']}: {r['fid_features']}" for r in rows})
    text = "\n".join([
        "# The shipped models (the seed thesis' Table 4.1)", "",
        f"`python benchmarks/models_table.py{'' if args.n_fid == 5000 else f' --n-fid {args.n_fid}'}` "
        f"({time.perf_counter() - start:.0f} s). FID: {rows[0]['fid_n'] if rows else args.n_fid:,} vs "
        f"{rows[0]['fid_n'] if rows else args.n_fid:,} images in zoo's offline feature networks "
        f"({'; '.join(features)}), comparable between zoo models only. I-MSE: mean (E(D(z)) − z)² over 1,000 "
        f"draws of the latent distribution. Reconstruction MSE: {args.n_rec:,} held-out images. A type with several "
        f"instances shows their mean.", "",
        *table(rows), "",
        "Every instance:", "",
        "| name | FID samples | FID reconstructions | I-MSE | reconstruction MSE |",
        "| --- | ---: | ---: | ---: | ---: |",
        *[f"| `{r['name']}` | {r['fid_samples']:.1f} | {r['fid_reconstructions']:.1f} | {r['i_mse']:.4f} | "
          f"{r['reconstruction_mse']:.4f} |" for r in rows], "",
        THESIS])
    from zoo._util import atomic_file

    args.out.parent.mkdir(parents=True, exist_ok=True)
    for path, content in ((args.out, text), (args.out.with_suffix(".json"), json.dumps(rows, indent=1))):
        with atomic_file(path, overwrite=True) as tmp:  # a killed run leaves the earlier table whole
            tmp.write_text(content)
    print(text)


if __name__ == "__main__":
    main()
