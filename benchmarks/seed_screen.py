"""Screen training seeds of a dSprites model by their early MIG: Locatello et al. (2019) found the random seed
matters more for disentanglement than the hyperparameters, and a run's code structure (which factor gets a latent of
its own) is set within its first few thousand steps. Each seed is trained to ``--screen`` steps in its own run
folder (a normal `zoo train` run of ``--steps`` in total, so the chosen one continues with `zoo train ... --resume`)
and its checkpoint scored; the table lists every seed, chosen or not.

    python benchmarks/seed_screen.py betavae --arg beta=16 --lr 0.0005 --seeds 2,3,4,5 --screen 3000 \\
        --workdir benchmarks/runs/screen-betavae16

Selection by MIG uses the ground-truth factors: it is supervised model selection, reported as such.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("arch")
    p.add_argument("--arg", action="append", default=[], help="KEY=VALUE model argument (a JSON value)")
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--seeds", required=True, help="comma-separated")
    p.add_argument("--screen", type=int, default=3000, help="steps each seed trains before it is scored")
    p.add_argument("--steps", type=int, default=100000, help="the runs' full length (for --resume later)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workdir", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    from mig_curve import score

    from zoo._util import atomic_file
    from zoo.train import train

    model_args = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args.arg)}
    results_path = args.workdir / "screen.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for seed in (int(s) for s in args.seeds.split(",")):
        run = args.workdir / f"seed{seed}"
        if str(seed) not in results:
            train(args.arch, "dsprites", steps=args.steps, out=run, seed=seed, batch_size=args.batch_size, lr=args.lr,
                  model_args=model_args, tag="dsprites", checkpoint_every=args.screen, stop_after=args.screen,
                  resume=(run / "checkpoint").is_dir())
            results[str(seed)] = score(run, 10000)
            with atomic_file(results_path, overwrite=True) as tmp:
                tmp.write_text(json.dumps(results, indent=1))
        r = results[str(seed)]
        gaps = ", ".join(f"{n} {g:.3f}" for n, g in zip(r["factor_names"], r["per_factor"]))
        print(f"seed {seed}: MIG {r['mig']:.4f} at {r['step']:,} steps ({gaps})", flush=True)


if __name__ == "__main__":
    main()
