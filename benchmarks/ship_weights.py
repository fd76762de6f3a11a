"""Ship a trained run as embedded weights: copy ``RUN/weights`` into its plugin, measure the numbers of its model
card on held-out data, and write the card and its pictures (``docs/models/``).

    python benchmarks/ship_weights.py /work/runs/splitvae.faces64/weights [more runs ...]

Held-out images are drawn with seed 10,000+, never used by ``zoo train`` (which seeds its batches from the run seed);
the procedural grids have 737,280 / 921,600 images, so a few of them may coincide with training draws.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

import zoo
from zoo import batching
from zoo.data import get_dataset
from zoo.image import adapt, save_grid, save_rows

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = {"vae": "zoo_vae", "betavae": "zoo_vae", "factorvae": "zoo_vae", "gan": "zoo_gan",
           "splitvae": "zoo_splitvae", "stylegan": "zoo_stylegan"}
DOCS = ROOT / "docs" / "models"


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).mean())


@torch.no_grad()
def measure(model, name: str) -> tuple[dict, list[str]]:
    ds = get_dataset(model.image_spec.dataset)
    x, _ = ds.sample(1000, 10_000)
    xm = adapt(x, model.image_spec)
    numbers: dict = {}
    pngs: list[str] = []
    z = batching.encode(model, xm)
    rec = batching.decode(model, z)
    numbers["reconstruction MSE (1000 held-out images)"] = mse(rec, xm)
    g = torch.Generator().manual_seed(0)
    samples = model.decode(model.sample_latent(16, generator=g))
    pngs.append(str(save_grid(samples, DOCS / f"{name}_samples.png", nrow=8, scale=2)))
    rows = [x[:8], rec[:8]]
    if model.arch == "splitvae":
        _, x1, x2, sigma = model.split_decode(z[:8])
        rows += [x1, x2, sigma.expand(-1, 3, -1, -1)]
    pngs.append(str(save_rows(rows, DOCS / f"{name}_reconstructions.png", scale=2)))
    if model.arch == "gan":
        from zoo_gan.model import recoder_imse

        numbers["recoder I-MSE (1000 generated samples)"] = recoder_imse(model, 1000, seed=1)
    if model.arch == "stylegan":
        from zoo.invert import refine_codes as refine
        from zoo.metrics.ppl import perceptual_path_length

        with torch.enable_grad():
            w = refine(model, xm[:100], steps=200)
        refined = model.decode(w)
        numbers["inversion MSE, recoder only (100 images)"] = mse(rec[:100], xm[:100])
        numbers["inversion MSE, recoder + 200 refinement steps (100 images)"] = mse(refined, xm[:100])
        wz = model.sample_latent(1000, generator=torch.Generator().manual_seed(2))
        numbers["recoder W-MSE on generated samples (I-MSE)"] = mse(batching.encode(model, batching.decode(model, wz)),
                                                                   wz)
        for space in ("z", "w"):
            numbers[f"PPL_{space.upper()} (pixel squared L2, end, 2000 paths)"] = perceptual_path_length(
                model, space=space, n=2000)["ppl"]
        pngs.append(str(save_rows([x[:8], rec[:8], refined[:8]], DOCS / f"{name}_inversion.png", scale=2)))
    if model.image_spec.dataset == "dsprites":
        from zoo.metrics.mig import compute_mig

        numbers["MIG (disentanglement_lib protocol, 10,000 samples)"] = compute_mig(model, ds)["discrete_mig"]
    return numbers, pngs


def phases(provenance: dict) -> list[dict]:
    """The training runs behind some weights, first run first (``zoo train --init`` records the earlier ones)."""
    runs = []
    while provenance:
        runs.insert(0, provenance)
        provenance = (provenance.get("init") or {}).get("provenance")
    return runs


def card(name: str, config: dict, numbers: dict, pngs: list[str]) -> str:
    prov, runs = config["provenance"], phases(config["provenance"])
    took = " + ".join(f"{r['wall_time_s']:.0f} s ({r.get('machine', '?')})" for r in runs)
    lines = [f"# {name}", "", f"Architecture `{config['architecture']}`, trained on `{config['dataset']}` by zoo's "
             f"training engine on a CPU in {took if len(runs) == 1 else f'{len(runs)} runs: {took}'}.", "",
             "Reproduce:", "", "```bash", *(r["command"] for r in runs),
             f"python benchmarks/ship_weights.py {prov['command'].split('--out ')[-1]}/weights",
             "```", "", "| quantity | value |", "| --- | --- |"]
    lines += [f"| {k} | {v:.5g} |" for k, v in numbers.items()]
    lines += ["", "Final training losses (mean of the last logging window): " +
              ", ".join(f"{k} {v:.4g}" for k, v in prov["final_losses"].items()), "",
              "Model arguments: `" + json.dumps(config["model_args"]) + "`", ""]
    lines += [f"![{Path(p).stem}](../../../../docs/models/{Path(p).name})" for p in pngs]
    lines += ["", "These are small models trained for minutes on a CPU: they show the method, not the state of the "
              "art."]
    return "\n".join(lines) + "\n"


def ship(run: Path) -> None:
    config = json.loads((run / "config.json").read_text())
    name = f"{config['architecture']}.{config['tag']}"
    dest = ROOT / "plugins" / PACKAGE[config["architecture"]] / "weights" / name
    model = zoo.create_model(f"local-dir:{run}")
    numbers, pngs = measure(model, name)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(run, dest)
    (dest / "README.md").write_text(card(name, config, numbers, pngs))
    (DOCS / f"{name}.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(f"{name}: shipped to {dest.relative_to(ROOT)}")
    for k, v in numbers.items():
        print(f"  {k}: {v:.5g}")


if __name__ == "__main__":
    torch.manual_seed(0)
    DOCS.mkdir(parents=True, exist_ok=True)
    for arg in sys.argv[1:]:
        ship(Path(arg))
