"""The seed slides' tables (De Nardin, "Latent Representation Disentanglement: beta and factor VAEs", Tables 01/02),
re-run with short trainings on procedural dSprites:

- β sweep of ``betavae``: validation reconstruction error and KL. Expected: reconstruction error grows with β, KL falls.
- γ sweep of ``factorvae``: validation reconstruction error, KL, TC estimate, D(z_real), D(z_perm). Expected: the TC
  estimate falls with γ and the discriminator's outputs on real and permuted codes approach 0.5 (it is confused).
- MIG (disentanglement_lib's) of every sweep value, as the slides report it next to the losses.

    python benchmarks/bench_vae_sweeps.py        # ~15 min on 2 CPU cores; writes benchmarks/results/vae_sweeps.md, .png
    python benchmarks/bench_vae_sweeps.py --steps 50 --betas 1,16 --gammas 0,100 --out /tmp/smoke.md   # smoke run
    # a long budget over several sessions, one sweep per core; rerun the same commands to continue, then both:
    python benchmarks/bench_vae_sweeps.py --steps 20000 --threads 1 --workdir benchmarks/runs/sweeps --sweeps beta
    python benchmarks/bench_vae_sweeps.py --steps 20000 --threads 1 --workdir benchmarks/runs/sweeps --sweeps gamma

Every model is trained by zoo's engine (``zoo.train.train``, the code path of ``zoo train``) with the same seed,
batches and architecture (disentanglement_lib's conv nets, latent 10, FactorVAE discriminator 6 × 1000); only β or γ
changes. Validation: 1000 held-out images (seed 10,000, never a training seed), one posterior draw per image (torch
seed 0), loss terms averaged over batches of 100 (the FactorVAE permutation is within each batch of 100). Units are
the slides': reconstruction error is the Bernoulli NLL in nats per image (BCE summed over the 64×64 pixels), KL in nats
per image, TC = mean log D(z)/(1 − D(z)) in nats. Runs are far shorter than the slides' (thousands of steps, not
300,000), so absolute values are higher; the trends are what the table checks, and the verdicts printed under each
table are computed from the numbers, not asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

import zoo
from zoo.data import get_dataset
from zoo.train import train

ROOT = Path(__file__).resolve().parents[1]
VAL_SEED, VAL_N, VAL_BATCH = 10_000, 1000, 100


@torch.no_grad()
def evaluate(model: zoo.ZooModel, x_val: torch.Tensor) -> dict[str, float]:
    """Mean loss terms of ``model.loss_terms`` over the validation images (batches of VAL_BATCH, torch seed 0)."""
    model.eval()
    torch.manual_seed(0)
    sums: dict[str, float] = {}
    batches = x_val.split(VAL_BATCH)
    for xb in batches:
        for k, v in model.loss_terms(xb).items():
            if k != "z":
                sums[k] = sums.get(k, 0.0) + float(v)
    return {k: v / len(batches) for k, v in sums.items()}


def trained(arch: str, key: str, value: float, args: argparse.Namespace, workdir: Path) -> tuple[zoo.ZooModel, float]:
    """The model of one sweep value and the seconds its training took: trained to ``args.steps`` in
    ``workdir/ARCH-KEYVALUE`` — loaded when an earlier invocation finished it, continued from its checkpoint when
    one was killed on the way."""
    out = workdir / f"{arch}-{key}{value:g}"
    if (out / "weights" / "config.json").is_file():
        model = zoo.create_model(f"local-dir:{out / 'weights'}")
    else:
        model = train(arch, "dsprites", steps=args.steps, out=out, seed=args.seed, batch_size=args.batch_size,
                      lr=args.lr, model_args={key: value}, checkpoint_every=min(args.steps, 2000),
                      log_every=max(1, min(args.steps // 10, 500)), resume=(out / "checkpoint").is_dir())
    provenance = json.loads((out / "weights" / "config.json").read_text())["provenance"]
    if provenance["steps"] != args.steps:
        sys.exit(f"error: {out} was trained for {provenance['steps']} steps, not --steps {args.steps}; "
                 f"use another --workdir")
    return model, provenance["wall_time_s"]


def sweep(arch: str, key: str, values: list[float], args: argparse.Namespace, x_val: torch.Tensor,
          workdir: Path) -> list[dict[str, float]]:
    """One row per sweep value. A finished value leaves its row in ``ARCH-KEYVALUE/result.json`` (small, committed
    with the run's README): later invocations read it, so the tables survive the run folder's weights and
    checkpoints, which are too big for the repository."""
    from zoo._util import atomic_file
    from zoo.metrics.mig import compute_mig

    settings = {"steps": args.steps, "lr": args.lr, "seed": args.seed, "batch_size": args.batch_size}
    rows = []
    for value in values:
        record = workdir / f"{arch}-{key}{value:g}" / "result.json"
        if record.is_file():
            saved = json.loads(record.read_text())
            if saved["settings"] != settings:
                sys.exit(f"error: {record} was measured with {saved['settings']}, not {settings}; "
                         f"use another --workdir")
            row = {**saved["row"], **({"source": saved["source"]} if "source" in saved else {})}
        else:
            model, seconds = trained(arch, key, value, args, workdir)
            mig = compute_mig(model.eval(), get_dataset("dsprites"), num_train=10000, seed=0)["discrete_mig"]
            row = {key: value, **evaluate(model, x_val), "mig": mig, "train_s": seconds}
            if args.workdir is not None:
                with atomic_file(record, overwrite=True) as tmp:
                    tmp.write_text(json.dumps({"arch": arch, "settings": settings, "row": row}, indent=1))
        rows.append(row)
        print(f"{arch} {key}={value:g}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                        if k != key and isinstance(v, float)), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict[str, float]], columns: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(title for _, title in columns) + " |"
    rule = "| " + " | ".join("---:" for _ in columns) + " |"
    def cell(k: str, v: float) -> str:
        # rec and KL are tens of nats: one decimal; TC two; probabilities and MIG three
        return (f"{v:g}" if k in ("beta", "gamma") else f"{v:.1f}" if k in ("rec", "kl")
                else f"{v:.2f}" if k == "tc" else f"{v:.3f}")

    body = ["| " + " | ".join(cell(k, r[k]) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def trend(values: list[float], rising: bool, label: str, tol: float = 0.0, digits: int = 2) -> str:
    """One honest line: is the sequence monotone in the expected direction, and if not, where does it break."""
    steps = list(itertools.pairwise(values))
    bad = [i for i, (a, b) in enumerate(steps) if (b < a - tol if rising else b > a + tol)]
    first, last = f"{values[0]:.{digits}f}", f"{values[-1]:.{digits}f}"
    overall = (values[-1] > values[0]) if rising else (values[-1] < values[0])
    word = "rises" if rising else "falls"
    if not bad:
        return f"- {label} {word} monotonically ({first} → {last}): as expected."
    where = ", ".join(f"between sweep values {i + 1} and {i + 2}" for i in bad)
    return (f"- {label} {word} overall ({first} → {last}) but not monotonically ({where})."
            if overall else f"- {label} does NOT {word.rstrip('s')} ({first} → {last}); breaks {where}.")


def confusion_line(rows: list[dict[str, float]]) -> str:
    gaps = [abs(r["d_real"] - 0.5) + abs(r["d_perm"] - 0.5) for r in rows]
    return trend(gaps, rising=False, label="Discriminator confidence |D(z_real) − 0.5| + |D(z_perm) − 0.5|")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=600, help="training steps per model")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4, help="VAE Adam lr (dlib: 1e-4; higher gets further in short runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--betas", default="1,2,4,8,16")
    p.add_argument("--gammas", default="0,10,40,100")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep the runs here and continue them on the next invocation (long budgets over several "
                        "sessions); default: a temporary folder")
    p.add_argument("--sweeps", default="beta,gamma", help="beta, gamma or both (two processes can share a --workdir)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "vae_sweeps.md")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    betas = [float(b) for b in args.betas.split(",")]
    gammas = [float(g) for g in args.gammas.split(",")]
    x_val, _ = get_dataset("dsprites").sample(VAL_N, VAL_SEED)

    wanted = set(args.sweeps.split(","))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zoo-vae-sweeps-") as tmp:
        workdir = args.workdir or Path(tmp)
        beta_rows = sweep("betavae", "beta", betas, args, x_val, workdir) if "beta" in wanted else []
        gamma_rows = sweep("factorvae", "gamma", gammas, args, x_val, workdir) if "gamma" in wanted else []
    wall = time.perf_counter() - t0
    if not (beta_rows and gamma_rows):
        print("one sweep run: the results file is written when both sweeps run (they load finished runs from "
              "--workdir)", file=sys.stderr)
        return
    timed = [r["train_s"] for r in beta_rows + gamma_rows if r.get("train_s") is not None]

    beta_table = table(beta_rows, [("beta", "β"), ("rec", "Rec error"), ("kl", "KL"), ("mig", "MIG")])
    gamma_table = table(gamma_rows, [("gamma", "γ"), ("rec", "Rec error"), ("kl", "KL"), ("tc", "TC"),
                                     ("d_real", "D(z_real)"), ("d_perm", "D(z_perm)"), ("mig", "MIG")])
    beta_checks = [trend([r["rec"] for r in beta_rows], True, "Reconstruction error", digits=1),
                   trend([r["kl"] for r in beta_rows], False, "KL", digits=1)]
    gamma_checks = [trend([r["tc"] for r in gamma_rows], False, "TC estimate"), confusion_line(gamma_rows),
                    trend([r["rec"] for r in gamma_rows], True, "Reconstruction error (cost of the TC penalty)",
                          digits=1),
                    trend([r["kl"] for r in gamma_rows], False, "KL (the slides make no claim; reported as measured)",
                          digits=1)]
    sources = {}  # rows read from a record that says where its numbers came from
    for r in beta_rows + gamma_rows:
        if "source" in r:
            sources.setdefault(r["source"], []).append("β = {:g}".format(r["beta"]) if "beta" in r
                                                       else "γ = {:g}".format(r["gamma"]))
    provenance = "".join(f"\n\nRows {', '.join(rows)}: {source}" for source, rows in sources.items())
    command = "python benchmarks/bench_vae_sweeps.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = f"""# VAE-family sweeps on procedural dSprites

Reproduce: `{command.strip()}`

{args.steps} steps per model, batch {args.batch_size}, VAE Adam lr {args.lr:g} (discriminator: Adam lr 1e-4,
betas (0.5, 0.9)), seed {args.seed}; disentanglement_lib conv encoder/decoder, latent 10, Bernoulli decoder;
FactorVAE discriminator 6 × 1000. Validation: {VAL_N} held-out images (seed {VAL_SEED}). Rec error = Bernoulli NLL
(nats per image), KL in nats, TC = mean log D/(1 − D); MIG: disentanglement_lib's, 10,000 samples, seed 0.
Training: {sum(timed) / 60:.1f} min for the {len(timed)} of {len(beta_rows + gamma_rows)} models whose record has
its time; this invocation {wall / 60:.1f} min on {platform.machine()} with {args.threads} torch threads, torch
{torch.__version__}.{provenance}

## β-VAE: β sweep (slides' Table 01)

{beta_table}

{chr(10).join(beta_checks)}

## FactorVAE: γ sweep (slides' Table 02)

{gamma_table}

{chr(10).join(gamma_checks)}

![MIG of each sweep value]({args.out.with_suffix(".png").name})

These are short runs (the slides' models trained for far longer), so absolute numbers are not comparable with the
slides'; the verdict lines above are computed from the table by the script.
"""
    print(text)
    from zoo._util import atomic_file
    from zoo.image import save_bar_chart

    with atomic_file(args.out, overwrite=True) as tmp:  # a killed run leaves the earlier tables whole
        tmp.write_text(text)
    png = args.out.with_suffix(".png")
    save_bar_chart([f"beta = {r['beta']:g}" for r in beta_rows] + [f"gamma = {r['gamma']:g}" for r in gamma_rows],
                   [r["mig"] for r in beta_rows + gamma_rows], png, overwrite=True,
                   vmax=max(0.2, *(r["mig"] for r in beta_rows + gamma_rows)),
                   title=f"MIG (disentanglement_lib) of each sweep value, {args.steps:,} steps")
    print(f"written to {args.out} and {png}", file=sys.stderr)


if __name__ == "__main__":
    main()
