"""Every registered tool and a short training run on CUDA, when there is a GPU; a clean message and exit 0 when not.

    python benchmarks/gpu_smoke.py [--device cuda:0]

Each task runs through ``zoo.run`` on a shipped model with small sizes, once on the GPU and once on the CPU, and the
two results are compared (same seeds: the numbers must agree to float tolerance). A failure prints one line per task
and the script exits 1.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time

import torch

import zoo

# task → (models, small options)
CASES = {
    "mig": (["betavae.dsprites"], {"num_train": 500}),
    "scores": (["betavae.dsprites"], {"quick": True, "dci_mode": "fast", "only": "sap,modularity"}),
    "ppl": (["vae.faces64"], {"n": 200}),
    "jacobian": (["vae.faces64"], {"n": 4}),
    "stats": (["vae.faces64"], {"n": 300, "distances": True}),
    "relocate": (["stylegan", "svae"], {"n_test": 200}),
}


def numbers(result: dict) -> dict[str, float]:
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to check (run this on a machine with a GPU)")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 everywhere, as the metrics need
    torch.backends.cudnn.allow_tf32 = False
    failures = []
    for task, (models, options) in CASES.items():
        if task not in zoo.registry.tasks.names():
            failures.append(f"{task}: not registered")
            continue
        try:
            t0 = time.perf_counter()
            gpu = numbers(zoo.run(task, *models, device=args.device, **options).numbers)
            t1 = time.perf_counter()
            cpu = numbers(zoo.run(task, *models, device="cpu", **options).numbers)
            t2 = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 - a smoke test reports every failure and goes on
            failures.append(f"{task}: {type(exc).__name__}: {exc}")
            continue
        off = [k for k in gpu if k in cpu and not math.isclose(gpu[k], cpu[k], rel_tol=1e-3, abs_tol=1e-5)]
        print(f"{task}: {args.device} {t1 - t0:.1f} s, cpu {t2 - t1:.1f} s; "
              f"{'agree' if not off else 'DIFFER in ' + ', '.join(off)}")
        if off:
            failures.append(f"{task}: cuda and cpu differ in {', '.join(off)}")
    from zoo.train import train

    with tempfile.TemporaryDirectory() as out:
        try:
            train("vae", "dsprites", steps=20, out=f"{out}/run", device=args.device, checkpoint_every=10)
            print(f"train: 20 steps on {args.device} ok")
        except Exception as exc:  # noqa: BLE001
            failures.append(f"train: {type(exc).__name__}: {exc}")
    for f in failures:
        print("FAILED", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
