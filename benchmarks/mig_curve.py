"""MIG against training steps: watch a `zoo train` run folder and score each new checkpoint as it appears.

    python benchmarks/mig_curve.py RUN_FOLDER [--num-train 10000] [--every 60] [--until STEPS]
    python benchmarks/mig_curve.py RUN_FOLDER --plot RUN_FOLDER/mig_curve.png

Each checkpoint's model is scored with disentanglement_lib's MIG (``zoo.metrics.mig.compute_mig``, seed 0) and the
step, MIG and per-factor gaps are appended to ``RUN_FOLDER/mig_curve.json`` (written atomically; kept across
restarts, so a run resumed in a later session extends the same curve). ``--plot`` draws the curve as a PNG.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch


def load_checkpoint(checkpoint: Path) -> tuple:
    """The model of a `zoo train` checkpoint folder and its state.json, read as one (a writer may swap the folder)."""
    from safetensors.torch import load_file

    import zoo
    from zoo._util import pinned_folder

    with pinned_folder(checkpoint) as (folder, _):
        state = json.loads((folder / "state.json").read_text())
        model = zoo.build_model(state["config"]["arch"], state["config"]["model_args"])
        model.load_state_dict(load_file(folder / "model.safetensors"))
    return model.eval(), state


def score(run: Path, num_train: int, final: bool = False) -> dict:
    """MIG of the run's checkpoint, or with ``final`` of its weights (a run that reaches its last step writes weights
    there, no checkpoint)."""
    import zoo
    from zoo.data import get_dataset
    from zoo.metrics.mig import compute_mig

    if final:
        provenance = json.loads((run / "weights" / "config.json").read_text())["provenance"]
        model = zoo.create_model(f"local-dir:{run / 'weights'}")
        step, data, lr = provenance["steps"], provenance["data"], provenance["lr"]
    else:
        model, state = load_checkpoint(run / "checkpoint")
        step, data = state["step"], state["config"]["data"]
        # the learning rate of the steps that led here (a run resumed with another --lr records the change)
        lr = next((c["lr"] for c in reversed(state.get("lr_changes", [])) if c["step"] < state["step"]),
                  state["config"]["lr"])
    result = compute_mig(model, get_dataset(data), num_train=num_train, seed=0)
    return {"step": step, "mig": result["discrete_mig"], "per_factor": result["per_factor"],
            "factor_names": result["factor_names"], "num_train": num_train, "lr": lr}


FACTOR_COLOURS = [(230, 159, 0), (0, 158, 115), (204, 121, 167), (213, 94, 0), (86, 180, 233), (120, 120, 120)]


def plot(curve: list[dict], title: str, path: Path) -> None:
    """MIG (thick) and each factor's gap (thin, labelled) against steps; a learning-rate change as a grey line."""
    from PIL import Image, ImageDraw

    from zoo.image import _font, save_png

    w, h, left, right, bottom, top = 640, 320, 48, 132, 34, 24
    img = Image.new("RGB", (w, h), "white")
    d, font = ImageDraw.Draw(img), _font()
    names = curve[0].get("factor_names", [])
    ymax = max(0.1, *(max(c["mig"], *c.get("per_factor", [])) for c in curve)) * 1.1
    xmax = max(c["step"] for c in curve)

    def xy(step: float, v: float) -> tuple[float, float]:
        return left + (w - left - right) * step / xmax, h - bottom - (h - bottom - top) * v / ymax

    d.line([xy(0, 0), xy(xmax, 0)], fill="black")
    d.line([xy(0, 0), xy(0, ymax)], fill="black")
    for k in range(5):
        v, step = ymax * k / 4, xmax * k / 4
        d.text((4, xy(0, v)[1] - 6), f"{v:.2f}", fill="black", font=font)
        d.text((xy(step, 0)[0] - 12, h - bottom + 4), f"{step / 1000:g}k", fill="black", font=font)
    d.text((left + (w - left - right) // 2 - 40, h - 14), "training steps", fill="black", font=font)
    d.text((left, 4), title, fill="black", font=font)
    for before, c in itertools.pairwise(curve):
        if "lr" in before and "lr" in c and c["lr"] != before["lr"]:
            x = xy(before["step"], 0)[0]
            d.line([(x, xy(0, 0)[1]), (x, xy(0, ymax)[1])], fill=(170, 170, 170))
            d.text((x + 3, top + 2), f"lr {c['lr']:g}", fill=(110, 110, 110), font=font)
    legend = [(f"gap {name}", FACTOR_COLOURS[i % len(FACTOR_COLOURS)], 1, [c["per_factor"][i] for c in curve])
              for i, name in enumerate(names)]
    for k, (label, colour, width, values) in enumerate([*legend, ("MIG", (51, 102, 204), 3, [c["mig"] for c in curve])]):
        points = [xy(c["step"], v) for c, v in zip(curve, values)]
        if len(points) > 1:
            d.line(points, fill=colour, width=width)
        for x, y in points:
            d.ellipse([x - width, y - width, x + width, y + width], fill=colour)
        ly = top + 8 + 16 * k
        d.line([(w - right + 10, ly + 6), (w - right + 26, ly + 6)], fill=colour, width=width)
        d.text((w - right + 30, ly), label, fill="black", font=font)
    save_png(img, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--num-train", type=int, default=10000)
    p.add_argument("--every", type=float, default=60.0, help="seconds between looks at the checkpoint")
    p.add_argument("--until", type=int, default=None, help="stop once a checkpoint at this step was scored")
    p.add_argument("--plot", type=Path, default=None, help="draw the curve recorded so far and exit")
    args = p.parse_args()
    torch.set_num_threads(1)
    if not args.run.is_dir():
        raise SystemExit(f"error: {args.run} is not a folder; pass the --out folder of a `zoo train` run")
    path = args.run / "mig_curve.json"
    curve = json.loads(path.read_text()) if path.is_file() else []
    if args.plot:
        plot(curve, f"MIG of {args.run.name} against training steps", args.plot)
        print(args.plot)
        return
    from zoo._util import atomic_file

    while True:
        state, weights = args.run / "checkpoint" / "state.json", args.run / "weights" / "config.json"
        step = json.loads(state.read_text())["step"] if state.is_file() else None
        last = json.loads(weights.read_text())["provenance"]["steps"] if weights.is_file() else None
        for at, final in ((step, False), (last, True)):
            if at is not None and at not in {c["step"] for c in curve}:
                point = score(args.run, args.num_train, final)
                curve = sorted([*curve, point], key=lambda c: c["step"])
                with atomic_file(path, overwrite=True) as tmp:
                    tmp.write_text(json.dumps(curve, indent=1))
                print(f"step {at}{' (final weights)' if final else ''}: MIG {point['mig']:.4f}", flush=True)
        if args.until is not None and max(step or 0, last or 0) >= args.until:
            return
        time.sleep(args.every)


if __name__ == "__main__":
    main()
