"""Train the feature network FID uses on a procedural dataset (faces64 by default, also dsprites) and ship it.

    python benchmarks/train_faces64_features.py                    # → zoo/metrics/weights/faces64_features/
    python benchmarks/train_faces64_features.py --data dsprites    # → zoo/metrics/weights/dsprites_features/

A small CNN (:class:`zoo.metrics.feature_net.FactorFeatureNet`) learns to classify every ground-truth factor of
freshly rendered images (cross-entropy summed over factors, Adam with a cosine schedule), on ONE CPU thread. Batches
of step s are drawn with ``numpy.random.default_rng([seed, s])``. Then the 128 features are standardised (zero mean,
unit variance) on 10,000 held-out images drawn with seed 30,000, and the accuracies of the model card are measured
on images drawn with seed 10,000 (the repository's held-out convention). The folder gets config.json (provenance
included), model.safetensors and a README.md model card with the command and the numbers.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zoo.data import get_dataset
from zoo.metrics.feature_net import build_for, save_feature_net

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_SEED = 10_000
STANDARDISE_SEED, STANDARDISE_N = 30_000, 10_000
NOTES = {"dsprites": "\nA neighbouring position counts as wrong; orientation is ambiguous by construction (the square looks the "
                     "same every 90°, the ellipse every 180°), so its exact accuracy cannot reach 1.\n"}


@torch.no_grad()
def factor_accuracy(net, dataset, n: int, seed: int) -> dict[str, float]:
    """Fraction of held-out images whose factor value the network predicts exactly, per factor."""
    factors = dataset.sample_factors(n, np.random.default_rng(seed))  # the draws of dataset.sample(n, seed)
    hits = np.zeros(dataset.num_factors)
    for lo in range(0, n, 500):
        logits = net(dataset.images_from_factors(factors[lo:lo + 500]))
        hits += [(lg.argmax(1).numpy() == factors[lo:lo + 500, i]).sum() for i, lg in enumerate(logits)]
    return {name: float(h / n) for name, h in zip(dataset.factor_names, hits)}


def train(data: str, steps: int, batch_size: int, lr: float, seed: int) -> tuple:
    dataset = get_dataset(data)
    torch.manual_seed(seed)
    net = build_for(dataset)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    start, losses = time.time(), []
    for step in range(steps):
        factors = dataset.sample_factors(batch_size, np.random.default_rng([seed, step]))
        logits = net(dataset.images_from_factors(factors))
        target = torch.from_numpy(factors)
        loss = sum(F.cross_entropy(lg, target[:, i]) for i, lg in enumerate(logits))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 200 == 0:
            print(f"step {step + 1}/{steps}: loss {np.mean(losses[-200:]):.4f} ({time.time() - start:.0f} s)",
                  file=sys.stderr, flush=True)
    net.eval()
    with torch.no_grad():
        factors = dataset.sample_factors(STANDARDISE_N, np.random.default_rng(STANDARDISE_SEED))
        net.standardise(torch.cat([net.raw_embedding(dataset.images_from_factors(factors[lo:lo + 500]))
                                   for lo in range(0, STANDARDISE_N, 500)]))
    return dataset, net, time.time() - start, float(np.mean(losses[-200:]))


def card(data: str, command: str, acc: dict[str, float], n_eval: int, minutes: float, params: int) -> str:
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in acc.items())
    return f"""# {data}-features: zoo's feature space for FID on {data}

A small CNN trained by zoo to classify the {len(acc)} ground-truth factors of `{data}`; FID on {data} (`zoo fid
MODEL`) reads its 128-d embedding (the linear layer before the factor classifiers, taken before its ReLU), each
feature standardised to zero mean and unit variance on {STANDARDISE_N:,} held-out images (seed {STANDARDISE_SEED}): FIDs
are in units of the data's own spread. Four 3×3 stride-2 convolutions with ReLU, {params:,} parameters. FIDs in this
space compare zoo models with each other; they are not comparable with Inception FIDs in papers (`--features
inception --features-weights pt_inception-2015-12-05-6726825d.pth` gives those).

Trained on one CPU thread in {minutes:.1f} min by

```bash
{command}
```

Factor accuracy (exact value, argmax) on {n_eval:,} held-out images (seed {HELD_OUT_SEED}), mean {np.mean(list(acc.values())):.3f}:

| factor | accuracy |
| --- | --- |
{rows}
{NOTES.get(data, "")}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="faces64")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-n", type=int, default=5000)
    parser.add_argument("--out", default=None, help="default: zoo/metrics/weights/DATA_features")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared 2-core machine: one thread, as the model card says
    out = Path(args.out) if args.out else ROOT / "zoo" / "metrics" / "weights" / f"{args.data}_features"
    command = shlex.join(["python", "benchmarks/train_faces64_features.py", *sys.argv[1:]])
    dataset, net, seconds, loss = train(args.data, args.steps, args.batch_size, args.lr, args.seed)
    acc = factor_accuracy(net, dataset, args.eval_n, HELD_OUT_SEED)
    params = sum(p.numel() for p in net.parameters())
    provenance = {"command": command, "data": args.data, "steps": args.steps, "batch_size": args.batch_size,
                  "lr": args.lr, "seed": args.seed, "threads": 1, "seconds": round(seconds, 1),
                  "final_loss": round(loss, 5), "torch": torch.__version__,
                  "held_out_accuracy": {k: round(v, 4) for k, v in acc.items()}, "held_out_images": args.eval_n,
                  "held_out_seed": HELD_OUT_SEED, "standardised_on": {"images": STANDARDISE_N,
                                                                      "seed": STANDARDISE_SEED}}
    save_feature_net(net, out, provenance=provenance,
                     card=card(args.data, command, acc, args.eval_n, seconds / 60, params))
    print(f"{out}: mean held-out factor accuracy {np.mean(list(acc.values())):.4f}, "
          f"{', '.join(f'{k} {v:.3f}' for k, v in acc.items())}")


if __name__ == "__main__":
    main()
