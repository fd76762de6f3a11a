"""``zoo ship``, ``zoo push`` and ``zoo new-plugin``: thin wrappers over :mod:`zoo.publish`.

Data on stdout (the folder written, or the pinned Hub name), everything else on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from zoo_cli.output import emit_json, info, json_option, table


@click.command()
@click.argument("weights")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--n", type=click.IntRange(min=1), default=1000, show_default=True, help="Held-out images to measure on.")
@click.option("--seed", type=int, default=10_000, show_default=True, help="Seed of the held-out draw (10,000 or more).")
@click.option("--data", default=None, help="Dataset to measure on (default: the one the weights were trained on).")
@click.option("--data-arg", "data_args", multiple=True, metavar="KEY=VALUE", help="Dataset argument (repeatable).")
@click.option("--task", "tasks", multiple=True, metavar="TASK",
              help="Also run this registered task (`zoo run`) with its defaults and add its numbers (repeatable).")
@click.option("--device", default=None, help="cuda, cpu, ... [default: CUDA when there is one, else cpu]")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Images per batch (default: per device).")
@click.option("--picture", "pictures", multiple=True, metavar="PNG=CAPTION",
              help="Add a PNG of your own to the card, e.g. a training curve (repeatable).")
@click.option("--notes", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A Markdown file whose text ends the card under 'Notes' (what the numbers do not say).")
@click.option("--overwrite", is_flag=True, help="Write into OUT even if it holds other files (they are kept).")
@json_option
def ship(weights: str, out: str, n: int, seed: int, data: str | None, data_args: tuple[str, ...],
         tasks: tuple[str, ...], pictures: tuple[str, ...], notes: str | None, device: str | None,
         batch_size: int | None, overwrite: bool, as_json: bool) -> None:
    """Copy WEIGHTS (a folder, local-dir:PATH, hf-hub:ORG/REPO@REV or a registered name) to the folder OUT with a
    model card: training commands, held-out numbers and pictures."""
    from zoo.errors import ZooError
    from zoo.hub import read_config
    from zoo.publish import CARD_KEY, card_name
    from zoo.publish import ship as ship_folder
    from zoo_cli.train import parse_args

    captions = dict(p.partition("=")[::2] for p in pictures)
    try:
        text = Path(notes).read_text(encoding="utf-8") if notes else None
    except UnicodeDecodeError:
        raise ZooError(f"--notes {notes} is not UTF-8 text; give a Markdown file") from None
    folder = ship_folder(weights, out, n=n, seed=seed, data=data, data_args=parse_args(data_args), tasks=tasks,
                         device=device, batch_size=batch_size, pictures=captions,
                         notes=text, overwrite=overwrite)
    config = read_config(folder)
    measured = config[CARD_KEY]
    if as_json:
        return emit_json({"folder": str(folder), "name": card_name(config), "numbers": measured["numbers"],
                          "pictures": measured["files"], "card": str(folder / "README.md")})
    table(f"{card_name(config)} on {measured['n']:,} held-out images", ["quantity", "value"],
          [[k, f"{v:.5g}"] for k, v in measured["numbers"].items()])
    info(f"wrote {folder}/README.md and {', '.join(measured['files']) or 'no pictures'}; publish with "
         f"`zoo push {folder} ORG/REPO`")
    click.echo(str(folder))


@click.command()
@click.argument("source", metavar="NAME|DIR")
@click.argument("repo", metavar="ORG/REPO")
@click.option("--revision", default=None, metavar="BRANCH", help="Branch to push to (created if missing; default main).")
@click.option("--private", is_flag=True, help="Create the repo private (an existing repo keeps its visibility).")
@click.option("--token", default=None, help="Hub write token (default: HF_TOKEN or `hf auth login`).")
@click.option("--message", default=None, help="Commit message.")
@json_option
def push(source: str, repo: str, revision: str | None, private: bool, token: str | None, message: str | None,
         as_json: bool) -> None:
    """Upload a weights folder (or a registered model's weights) to the Hub repo ORG/REPO and print its pinned name
    hf-hub:ORG/REPO@COMMIT. The folder is loaded by zoo first: broken weights are never published."""
    from zoo.publish import push as push_folder

    name = push_folder(source, repo, revision=revision, private=private, token=token, commit_message=message)
    if as_json:
        return emit_json({"name": name, "repo": repo, "branch": revision or "main", "commit": name.rpartition("@")[2]})
    info(f"pushed to {repo}" + (f" (branch {revision})" if revision else "") + "; load it pinned with "
         f"zoo.create_model({json.dumps(name)})")
    click.echo(name)


@click.command("new-plugin")
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder to create (new or empty) [default: ./zoo-NAME].")
def new_plugin(name: str, out: str | None) -> None:
    """Start a plugin package for a new architecture NAME: registration, a small working model, conformance tests
    and a README with the next commands."""
    from zoo.publish import new_plugin as scaffold

    folder = scaffold(name, out)
    info(f"wrote the plugin package {folder}; next: cd {folder} && pip install -e '.[test]' && python -m pytest")
    click.echo(str(folder))
