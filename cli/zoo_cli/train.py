"""``zoo train``: a thin wrapper over :func:`zoo.train.train`."""

from __future__ import annotations

import json

import click

from zoo.errors import ZooError


def parse_args(pairs: tuple[str, ...]) -> dict:
    """``("latent_dim=10", "beta=4")`` → ``{"latent_dim": 10, "beta": 4}`` (values parsed as JSON when they can be)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ZooError(f"--arg takes KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@click.command()
@click.argument("arch")
@click.option("--data", required=True, help="Dataset name (see `zoo data list`).")
@click.option("--steps", type=click.IntRange(min=1), required=True,
              help="Optimisation steps in total (with --resume it may change: the checkpoint's step ends the run now).")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Run folder: checkpoint/ and weights/.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=float, default=None, help="Learning rate (default: the architecture's).")
@click.option("--arg", "args", multiple=True, metavar="KEY=VALUE", help="Model constructor argument (repeatable).")
@click.option("--data-arg", "data_args", multiple=True, metavar="KEY=VALUE", help="Dataset argument (repeatable).")
@click.option("--tag", default=None, help="Weights tag recorded in config.json (default: the dataset name).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True,
              help="Train again over an earlier run in --out (files zoo did not write there are kept).")
@click.option("--device", default=None,
              help="cuda, cuda:1, cpu, ... [default: CUDA when there is one, else cpu; ZOO_DEVICE overrides]")
@click.option("--init", default=None, metavar="NAME",
              help="Start from these weights instead of a random initialisation (fine-tuning).")
def train(arch: str, data: str, steps: int, out: str, seed: int, batch_size: int, lr: float | None,
          args: tuple[str, ...], data_args: tuple[str, ...], tag: str | None, checkpoint_every: int, resume: bool,
          device: str | None, init: str | None, overwrite: bool) -> None:
    """Train ARCH on a dataset; works unchanged under `torchrun --nproc_per_node=K`."""
    from zoo.train import train as run

    run(arch, data, steps=steps, out=out, seed=seed, batch_size=batch_size, lr=lr, model_args=parse_args(args),
        data_args=parse_args(data_args), resume=resume, checkpoint_every=checkpoint_every, tag=tag, device=device,
        init=init, overwrite=overwrite)
