"""The seed paper's Table 2 on our data: every ordered pair of the shipped faces64 models, L/R/M-MSE on held-out
images, next to the inter-image baseline and the target's own reconstruction error.

    python benchmarks/relocation_matrix.py       # writes benchmarks/results/relocation_matrix.md (+ .json)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zoo_cli.relocate import fmt

import zoo
from zoo._util import atomic_file
from zoo.relocate.api import relocate, relocation_matrix

MODELS = ["vae.faces64", "gan.faces64", "splitvae.faces64", "splitvae.faces64-s1", "stylegan.faces64"]
PAPER = """Paper (Asperti & Tonelli 2022, CelebA 64x64; StyleGAN rows on CelebA-HQ, fitted on generated samples;
inter-image MSE 0.116):

| from | to | L-MSE | R-MSE | M-MSE |
| --- | --- | --- | --- | --- |
| VAE | VAE | 0.03 | 0.0073 | 0.0103 |
| VAE | SplitVAE | 0.72 | | 0.0105 |
| VAE | GAN | 0.49 | | 0.0339 |
| GAN | GAN | 0.43 | 0.0284 | 0.0335 |
| GAN | VAE | 0.50 | | 0.0254 |
| GAN | SplitVAE | 0.86 | | 0.0275 |
| SplitVAE | SplitVAE | 0.20 | 0.0035 | 0.0067 |
| SplitVAE | VAE | 0.20 | | 0.0125 |
| SplitVAE | GAN | 0.63 | | 0.0388 |
| SplitVAE | StyleGAN | 0.029 | | 0.076 |
| StyleGAN | SplitVAE | 0.45 | | 0.014 |
"""


REFINE_STEPS = 200  # inversion steps on the fit set's target codes for targets with a GAN recoder


def main(names: list[str]) -> None:
    available = [n for n in names if n in zoo.list_models(pretrained=True)]
    results = relocation_matrix(available, n_test=1000, seed=0)
    # A StyleGAN recoder is an approximate inverse (its own R-MSE is high): also fit those maps on refined inversions
    # of the support images (`zoo relocate SRC stylegan --refine-targets 200`).
    into_stylegan = [n for n in available if n.startswith("stylegan")]
    results += [relocate(src, tgt, n_test=1000, seed=0, refine_targets=REFINE_STEPS)
                for tgt in into_stylegan for src in available if src != tgt]
    rows = ["| from | to | fit | L-MSE | R-MSE (source) | M-MSE | target R-MSE | M-MSE / baseline |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        refined = r.map.config.get("refine_targets", 0) if r.map is not None else 0
        fit = f"{r.fit} ({r.n_fit})" + (f" + {refined} inversion steps" if refined else "")
        rows.append(f"| {r.source} | {r.target} | {fit} | {fmt(*r.l_mse)} | {fmt(*r.r_mse)} | "
                    f"{fmt(*r.m_mse)} | {fmt(*r.target_r_mse)} | {r.m_mse[0] / r.baseline:.2f} |")
    baseline = results[0].baseline if results else float("nan")
    sizes = {n: "x".join(map(str, zoo.create_model(n).image_spec.size)) for n in available}
    odd = [f"{n}: {size}" for n, size in sizes.items() if size != "64x64"]
    text = (f"# Relocation matrix on faces64\n\nCommand: `python benchmarks/relocation_matrix.py` — linear map without "
            f"bias, fitted in closed form; 1,000 held-out faces64 images (batches of 100, mean ± std over batches); "
            f"errors at each model's resolution ({'; '.join(odd) if odd else 'all 64x64'}).\nMean inter-image MSE "
            f"(baseline) at 64x64: {baseline:.4f}; the ratio column divides by each pair's own baseline (at the "
            f"target's resolution).\n\n" + "\n".join(rows) + "\n\n" + PAPER)
    out = Path(__file__).parent / "results" / "relocation_matrix.md"
    for path, content in ((out, text), (out.with_suffix(".json"), json.dumps([r.to_dict() for r in results], indent=1))):
        with atomic_file(path, overwrite=True) as tmp:  # a killed run leaves the earlier table whole
            tmp.write_text(content)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:] or MODELS)
