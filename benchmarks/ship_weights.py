"""Ship a trained run as embedded weights of a built-in plugin: `zoo ship` into ``plugins/<package>/weights/NAME``.

    python benchmarks/ship_weights.py /work/runs/splitvae.faces64/weights [more runs ...] [--tasks scores,ppl]

The card (held-out numbers, pictures, every training command) is written by :func:`zoo.publish.ship`, exactly as
for any user's model; this script only picks the destination inside the package that registers the architecture,
and adds the disentanglement scores (`zoo run scores`: MIG, β-VAE, FactorVAE, DCI, SAP, ...) for models of a dataset
with factors (a FactorVAE without its discriminator, as ``zoo ship`` publishes it). A run watched by
`benchmarks/mig_curve.py` ships with its MIG curve up to the shipped step (a PNG on the card); ``RUN/card_notes.md``
beside ``RUN/weights`` ends the card under "Notes".
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

import zoo
from zoo.data import get_dataset
from zoo.publish import ship


def destination(config: dict) -> Path:
    """``plugins/<package>/weights/ARCH.TAG`` of the package whose plugin registers the architecture."""
    module = zoo.registry.models.get(config["architecture"]).spec.factory.split(":")[0].split(".")[0]
    package = Path(importlib.util.find_spec(module).origin).parent
    # relative to the working folder, so the ship command on the card reads the same on every clone
    return Path(os.path.relpath(package / "weights" / f"{config['architecture']}.{config['tag']}"))


def mig_curve(run: Path, config: dict) -> dict[Path, str]:
    """The run's MIG curve (``RUN/mig_curve.json`` beside ``RUN/weights``) up to the shipped step, as a picture
    ``RUN/mig_curve.atSTEP.png`` (a path that stays, so the card's ship command can be rerun)."""
    recorded = run.parent / "mig_curve.json"
    if not recorded.is_file():
        return {}
    from mig_curve import plot

    steps = config["provenance"]["steps"]
    curve = [c for c in json.loads(recorded.read_text()) if c["step"] <= steps]
    name = f"{config['architecture']}.{config['tag']}"
    png = run.parent / f"mig_curve.at{steps}.png"
    plot(curve, f"MIG of {name} against training steps", png)
    return {png: f"MIG (disentanglement_lib protocol, {curve[0]['num_train']:,} points) of every checkpoint up to "
                 f"the shipped step {steps:,}, with the gap of each factor (`python benchmarks/mig_curve.py`)"}


def notes(run: Path) -> str | None:
    path = run.parent / "card_notes.md"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="RUN/weights folders")
    p.add_argument("--tasks", default=None,
                   help="comma-separated tasks whose numbers join the card (default: scores for a dataset with "
                        "factors; '' for none)")
    args = p.parse_args()
    for run in args.runs:
        config = json.loads((Path(run) / "config.json").read_text())
        if args.tasks is None:
            tasks = ("scores",) if get_dataset(config["dataset"]).has_factors else ()
        else:
            tasks = tuple(t for t in args.tasks.split(",") if t)
        dest = ship(f"local-dir:{run}", destination(config), tasks=tasks, pictures=mig_curve(Path(run), config),
                    notes=notes(Path(run)), overwrite=True)
        print(f"shipped {run} to {dest}")


if __name__ == "__main__":
    main()
