"""The CPU encoder batch size, with and without zoo.batching's mallopt: seconds to encode N images through
``zoo.batching.encode`` (each batch rendered from its factors on demand, as the metrics do), one thread.

Every (model, setting) runs in its own process, because mallopt is process-wide and set when ``zoo.batching`` is
imported (``ZOO_NO_MALLOPT=1`` for "off"); the two settings alternate in order from one repeat to the next, so a
change in the machine's load hits both. Each process warms up with two batches of every size, then times one pass
over the N images per batch size (in a rotated order), counting minor page faults.

    python benchmarks/bench_batch_sizes.py                       # writes benchmarks/results/batch_sizes.md
    python benchmarks/bench_batch_sizes.py --n 2000 --repeats 3  # a quicker look (prints only)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = ("betavae.dsprites", "vae.faces64", "splitvae.faces64")
BATCHES = (16, 32, 64, 256)
OUT = Path(__file__).parent / "results" / "batch_sizes.md"


def worker(model_name: str, n: int, batches: list[int], rotate: int) -> dict:
    import numpy as np
    import torch

    import zoo
    from zoo import batching

    torch.set_num_threads(1)
    model = zoo.create_model(model_name)
    data = zoo.get_dataset(model.image_spec.dataset)
    factors = data.sample_factors(n, np.random.RandomState(0))

    def render(lo: int, hi: int):
        return data.images_from_factors(factors[lo:hi])

    for b in batches:  # warm-up: the allocator's first requests and torch's first calls are not what we measure
        batching.encode(model, render, n=2 * b, batch_size=b)
    out = {"mallopt": batching.MALLOPT_APPLIED, "batches": {}}
    order = batches[rotate % len(batches):] + batches[:rotate % len(batches)]
    for b in order:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        wall, cpu = time.perf_counter(), time.process_time()
        batching.encode(model, render, n=n, batch_size=b)
        out["batches"][b] = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                             "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults}
    return out


def run_worker(model: str, mallopt: bool, n: int, batches: list[int], rotate: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("ZOO_NO_MALLOPT", None)
    if not mallopt:
        env["ZOO_NO_MALLOPT"] = "1"
    cmd = [sys.executable, __file__, "--worker", model, "--n", str(n), "--batches", ",".join(map(str, batches)),
           "--rotate", str(rotate)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["mallopt"] != mallopt:
        raise SystemExit(f"{model}: asked for mallopt={mallopt}, the worker ran with {result['mallopt']}")
    return result["batches"]


def cell(values: list[float], scale: float, digits: int = 2) -> str:
    """Median (min–max) of ``values`` × ``scale``."""
    v = sorted(x * scale for x in values)
    return f"{statistics.median(v):.{digits}f} ({v[0]:.{digits}f}–{v[-1]:.{digits}f})"


def report(runs: dict, args, elapsed: float) -> str:
    per = 10_000 / args.n  # seconds per 10,000 images
    load = os.getloadavg()
    head = "| encoder | mallopt | " + " | ".join(f"batch {b}" for b in args.batches) + " |"
    rule = "| --- | --- | " + " | ".join("---" for _ in args.batches) + " |"
    lines = [
        "# CPU encoder batch size, with and without mallopt",
        "",
        (f"`python benchmarks/bench_batch_sizes.py --n {args.n} --repeats {args.repeats}` ({elapsed / 60:.0f} min): "
         f"`zoo.batching.encode` of {args.n:,} images rendered on demand (the metrics' path), one thread, "
         f"{args.repeats} runs in separate processes per cell, scaled to 10,000 images."),
        "",
        (f"- machine: {platform.platform()}, {os.cpu_count()} CPUs shared with other jobs; load average at the end "
         f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}"),
    ]
    cpu_title = ("CPU seconds per 10,000 images (the process's CPU time: what the work costs, whatever else runs), "
                 "median (min–max)")
    for title, key, scale in ((cpu_title, "cpu", per),
                              ("Wall seconds per 10,000 images, median (min–max)", "wall", per),
                              ("Minor page faults per 1,000 images, median (min–max)", "faults", 1000 / args.n)):
        lines += ["", f"{title}:", "", head, rule]
        for model in MODELS:
            for mallopt in (False, True):
                r = runs[model][mallopt]
                cells = [cell(r[str(b)][key], scale, 0 if key == "faults" else 2) for b in args.batches]
                lines.append(f"| {model} | {'on' if mallopt else 'off'} | " + " | ".join(cells) + " |")
    noise = {key: [(max(v[key]) - min(v[key])) / statistics.median(v[key]) for m in runs.values()
                   for r in m.values() for v in r.values()] for key in ("cpu", "wall")}
    lines += ["", (f"Noise, (max − min) / median of a cell's runs: CPU time median "
                   f"{statistics.median(noise['cpu']):.0%} (largest {max(noise['cpu']):.0%}), wall time median "
                   f"{statistics.median(noise['wall']):.0%} (largest {max(noise['wall']):.0%})."), "",
              "Fastest batch size by median CPU time (then the others, as a ratio to it):", ""]
    for model in MODELS:
        for mallopt in (False, True):
            cpu = {b: statistics.median(runs[model][mallopt][str(b)]["cpu"]) for b in args.batches}
            best = min(cpu, key=cpu.get)
            others = ", ".join(f"{b}: {cpu[b] / cpu[best]:.2f}" for b in args.batches if b != best)
            lines.append(f"- {model}, mallopt {'on' if mallopt else 'off'}: {best} ({others})")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--raw", help="also write every run's numbers to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rotate", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.batches, args.rotate)))
        return
    start = time.perf_counter()
    runs = {m: {s: {str(b): {"wall": [], "cpu": [], "faults": []} for b in args.batches} for s in (False, True)}
            for m in MODELS}
    for r in range(args.repeats):
        for model in MODELS:
            for mallopt in ((True, False) if r % 2 else (False, True)):
                for b, v in run_worker(model, mallopt, args.n, args.batches, rotate=r).items():
                    for key in ("wall", "cpu", "faults"):
                        runs[model][mallopt][b][key].append(v[key])
                print(f"[{time.perf_counter() - start:6.0f} s] repeat {r + 1}, {model}, mallopt "
                      f"{'on' if mallopt else 'off'}", file=sys.stderr, flush=True)
    if args.raw:
        Path(args.raw).write_text(json.dumps({m: {str(k): v for k, v in r.items()} for m, r in runs.items()}))
    text = report(runs, args, time.perf_counter() - start)
    print(text)
    if (args.n, args.repeats, args.batches) == (10_000, 5, list(BATCHES)):
        OUT.write_text(text)


if __name__ == "__main__":
    main()
