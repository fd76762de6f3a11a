"""Publishing a model: ``ship`` it as a folder with a measured model card, ``push`` that folder to the Hugging Face
Hub, and start a new architecture with ``new_plugin``.

``ship(weights, out)`` works for every architecture, third-party ones included, by what the model can do:

- encode and decode: the reconstruction MSE on ``n`` held-out images of its dataset, and a picture of some of them
  above their reconstructions;
- sample: a picture of codes drawn from its latent distribution, decoded;
- ``model.card_numbers(images) -> {name: number}`` (optional): numbers only this architecture knows how to measure,
  from the held-out images (adapted to the model, on its device, under ``torch.no_grad()``; a method that needs
  gradients opens ``torch.enable_grad()``). ``len(images)`` is the sample size to use for its own draws;
- ``model.card_rows(images) -> {label: images}`` (optional): more labelled rows for the reconstruction picture, one
  image per held-out image given (8 of them), e.g. the parts a decoder composes its output from;
- ``model.without_training_parts() -> model`` (optional): the model as published, without what only training
  needs (e.g. FactorVAE's discriminator); ``ship`` writes that model's weights instead of copying the files;
- ``tasks``: registered tasks (``zoo run TASK``) run with their default options, whose numbers (top-level floats and
  those of a ``summary`` mapping, labelled by its ``headline`` mapping where the task gives one) join the table.

Held-out images are drawn by the dataset with ``seed`` ≥ 10,000, the range zoo's tools keep for held-out draws
(training draws its batches from other seeds; a procedural grid may still hold an image both ways).
"""

from __future__ import annotations

import json
import keyword
import math
import os
import shutil
import string
import tempfile
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from zoo.errors import ZooError
from zoo.ref import HUB, LOCAL, NAME, ModelRef, parse_ref

HELD_OUT_SEED = 10_000  # the first seed of held-out draws
PICTURE_COLUMNS = 8  # held-out images in the reconstruction picture
SAMPLE_COUNT = 16  # decoded samples in the samples picture
SAMPLES_PNG, RECONSTRUCTIONS_PNG = "samples.png", "reconstructions.png"
CARD_KEY = "card"  # config.json: what the card measured and which pictures are its (zoo.hub.owned_files reads it)


# --- where the weights are --------------------------------------------------------------------------------------


def weights_ref(weights: str | os.PathLike[str] | ModelRef) -> ModelRef:
    """A model reference for ``ship``/``push``: a registered name, ``local-dir:PATH``, ``hf-hub:ORG/REPO@REV``, or a
    plain folder path (anything with a slash, or an existing folder)."""
    if isinstance(weights, ModelRef):
        ref = weights
    elif isinstance(weights, os.PathLike):
        ref = ModelRef(LOCAL, os.fspath(weights))
    else:
        text = str(weights)
        plain_path = ":" not in text and ("/" in text or os.sep in text or Path(text).is_dir())
        ref = ModelRef(LOCAL, text) if plain_path else parse_ref(text)
    if ref.kind not in (NAME, LOCAL, HUB):
        raise ZooError(f"{ref} is loaded in place by a plugin, not a zoo weights folder; save it with "
                       f"zoo.save_pretrained(model, FOLDER) and publish FOLDER")
    return ref


def _copy_weights(ref: ModelRef, dest: Path, *, with_card: bool = False) -> Mapping[str, str]:
    """Copy config.json and the weight files of ``ref`` into ``dest`` (``with_card``: its model card and the
    card's pictures too); returns the sha256 the registry expects of them.

    Only zoo's files are copied: nothing else in the folder (notes, tokens, a lock) travels with the weights."""
    from zoo import factory
    from zoo._util import pinned_folder
    from zoo.hub import CONFIG_NAME, owned_files, read_config, safe_relpath, weight_files

    folder, _, sha256 = factory.weights_folder(ref)
    with pinned_folder(folder) as (root, _):  # one version of the folder, even if a writer swaps it meanwhile
        config = read_config(root, shown=folder)
        files = [CONFIG_NAME, *weight_files(config).values()]
        if with_card:
            files += sorted(rel for rel in (owned_files(root) or set()) - set(files) if (root / rel).is_file())
        for rel in files:
            target = dest / safe_relpath(rel, str(folder / CONFIG_NAME))
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(root / rel, target)
            except FileNotFoundError:
                raise ZooError(f"{folder} is missing {rel}; it is not a complete weights folder") from None
    return sha256


def _without_training_parts(model: Any, ref: ModelRef, dest: Path, device: Any) -> Any:
    """The copied model, or, when it has parts only training needs, the model without them written over the copy in
    ``dest`` (same config, tag, dataset and provenance) and loaded back from there."""
    from zoo.hub import CONFIG_NAME, save_pretrained, weight_files

    bare = model.without_training_parts() if hasattr(model, "without_training_parts") else model
    if bare is model:
        return model
    from zoo.progress import log_line

    dropped = sum(t.numel() for t in model.state_dict().values()) - sum(t.numel() for t in bare.state_dict().values())
    log_line(f"{model.display_name}: publishing it without the {dropped:,} parameters only training needs")
    config = json.loads((dest / CONFIG_NAME).read_text())
    for rel in weight_files(config).values():
        (dest / rel).unlink()
    with tempfile.TemporaryDirectory(prefix="zoo-ship-") as staging:  # dest is being assembled atomically by ship
        staged = save_pretrained(bare, Path(staging) / "weights", tag=config.get("tag"),
                                 provenance=config.get("provenance"), dataset=config.get("dataset"))
        sha256 = _copy_weights(ModelRef(LOCAL, os.fspath(staged)), dest)
    return _load_copy(ref, dest, sha256, device)


def _load_copy(ref: ModelRef, dest: Path, sha256: Mapping[str, str], device: Any) -> Any:
    """The model in the copied folder: what is measured and published is exactly what was copied (sha256 checked,
    every tensor fits, no NaN)."""
    from zoo.factory import load_pretrained

    model = load_pretrained(dest, source=str(ref), sha256=sha256, device=device)
    config = model.weights_config or {}
    model.zoo_name = card_name(config)
    return model


def card_name(config: Mapping[str, Any]) -> str:
    return f"{config['architecture']}.{config['tag']}" if config.get("tag") else str(config["architecture"])


# --- measuring -------------------------------------------------------------------------------------------------


def _checked_numbers(model: Any, values: Any) -> dict[str, float]:
    if not isinstance(values, Mapping) or not all(isinstance(k, str) for k in values):
        raise ZooError(f"{model.arch}.card_numbers() must return {{name: number}}, got {type(values).__name__}")
    numbers = {}
    for key, value in values.items():
        try:
            numbers[key] = float(value)
        except (TypeError, ValueError, RuntimeError):
            raise ZooError(f"{model.arch}.card_numbers() gave {key!r} = {str(value)[:40]!r}, not a number") from None
    return numbers


def _checked_rows(model: Any, values: Any, count: int) -> dict[str, Any]:
    import torch

    if not isinstance(values, Mapping) or not all(isinstance(k, str) for k in values):
        raise ZooError(f"{model.arch}.card_rows() must return {{label: images}}, got {type(values).__name__}")
    for label, row in values.items():
        if not (isinstance(row, torch.Tensor) and row.dim() == 4 and row.shape[0] == count and row.shape[1] in (1, 3)):
            shape = tuple(row.shape) if isinstance(row, torch.Tensor) else type(row).__name__
            raise ZooError(f"{model.arch}.card_rows() row {label!r} must be {count} images (N, C, H, W) with 1 or 3 "
                           f"channels, got {shape}")
    return dict(values)


def check_tasks(model: Any, tasks: Sequence[str]) -> None:
    """Every task named exists and the model can do what it needs, before any measuring."""
    from zoo import registry
    from zoo.protocol import require

    for task in tasks:
        require(model, *registry.tasks.get(task).spec.needs, purpose=task)


class Measurement(NamedTuple):
    numbers: dict[str, float]
    pictures: list[str]  # file names in the folder
    data: str | None  # the dataset the held-out images came from (None: none were drawn)


def measure(model: Any, folder: Path, *, n: int = 1000, seed: int = HELD_OUT_SEED, data: str | None = None,
            data_args: Mapping[str, Any] | None = None, tasks: Sequence[str] = (),
            batch_size: int | None = None) -> Measurement:
    """The held-out numbers of ``model`` and its pictures, written into ``folder``."""
    import torch

    from zoo import batching, registry
    from zoo.data import dataset_for
    from zoo.image import adapt, save_grid, save_rows
    from zoo.progress import log_line
    from zoo.tasks import run

    name, numbers, pictures = model.display_name, {}, []
    reconstructs = model.has("encode") and model.has("decode")
    extra_numbers, extra_rows = getattr(model, "card_numbers", None), getattr(model, "card_rows", None)
    dataset = None
    if reconstructs or extra_numbers is not None:
        dataset = dataset_for(model, data=data, **dict(data_args or {}))
        log_line(f"{name}: drawing {n:,} held-out images of {dataset.name} (seed {seed})")
        x, _ = dataset.sample(n, seed)
        target = adapt(x, model.image_spec)  # the images as the model sees them
    with torch.no_grad():
        if model.has("sample"):
            codes = model.sample_latent(SAMPLE_COUNT, generator=torch.Generator(model.device).manual_seed(seed))
            save_grid(batching.decode(model, codes, batch_size=batch_size), folder / SAMPLES_PNG, nrow=8, scale=2)
            pictures.append(SAMPLES_PNG)
        if reconstructs:
            z = batching.encode(model, x, batch_size=batch_size, label=f"{name}: encoding held-out images")
            rec = batching.decode(model, z, batch_size=batch_size, label=f"{name}: decoding their codes")
            numbers[f"reconstruction MSE ({n:,} held-out images)"] = float((rec - target).pow(2).mean())
            shown = target[:PICTURE_COLUMNS].to(model.device)
            rows = {"held-out": x[:PICTURE_COLUMNS], "reconstruction": rec[:PICTURE_COLUMNS]}
            if extra_rows is not None:
                rows |= _checked_rows(model, extra_rows(shown), len(shown))
            save_rows(list(rows.values()), folder / RECONSTRUCTIONS_PNG, scale=2, labels=list(rows))
            pictures.append(RECONSTRUCTIONS_PNG)
        if extra_numbers is not None:
            log_line(f"{name}: measuring {model.arch}'s own card numbers")
            numbers |= _checked_numbers(model, extra_numbers(target.to(model.device)))
    for task in tasks:
        log_line(f"{name}: running task {task}")
        reads_data = registry.tasks.get(task).spec.data is not None
        result = run(task, model, data=data if reads_data else None, data_args=data_args if reads_data else None,
                     device=model.device, batch_size=batch_size)
        headline = {**result, **(result.get("summary") or {})}  # e.g. every score of `zoo run scores`
        what = result.get("headline") or {}  # which number of a score the summary holds, e.g. its Gaussian TC
        for key, value in headline.items():
            if isinstance(value, float):
                named = f"{key}: {what[key]}" if what.get(key, key) != key else key
                numbers[f"{named} (`zoo run {task}`, default options)"] = value
    return Measurement(numbers, pictures, getattr(dataset, "name", None))


# --- the card --------------------------------------------------------------------------------------------------


def phases(provenance: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The training runs behind some weights, first run first (``zoo train --init`` records the earlier ones)."""
    runs: list[Mapping[str, Any]] = []
    while isinstance(provenance, Mapping) and provenance:
        runs.insert(0, provenance)
        init = provenance.get("init")
        provenance = init.get("provenance") if isinstance(init, Mapping) else None
    return runs


def _fmt(value: Any) -> str:
    return f"{value:.5g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _training_lines(config: Mapping[str, Any]) -> list[str]:
    """Every command behind the weights, first run first, with what each took; the final losses."""
    runs = phases(config.get("provenance"))
    commands = [r["command"] for r in runs if isinstance(r.get("command"), str)]
    if not commands:
        recorded = json.dumps(config.get("provenance") or {})
        note = "These weights record no `zoo train` command (converted, or trained outside zoo); their provenance is"
        return [f"{note} `{recorded}`."]
    took = " + ".join(f"{_number(r.get('wall_time_s')) or 0:.0f} s ({r.get('machine', '?')})" for r in runs)
    chained = " Each run after the first starts from the weights of the one before (`--init`)."
    lines = [f"Trained by zoo's training engine in {len(runs)} run{'s' * (len(runs) > 1)}: {took}."
             + (chained if len(runs) > 1 else ""), "", "```bash", *commands, "```"]
    for r in runs:
        for change in r.get("lr_changes") or []:
            if isinstance(change, Mapping):
                lines += ["", f"Resumed at step {change.get('step')} with `--resume --lr {change.get('lr')}`."]
    final = runs[-1].get("final_losses")
    losses = {k: _number(v) for k, v in final.items()} if isinstance(final, Mapping) else {}
    if any(v is not None for v in losses.values()):
        lines += ["", "Final training losses (mean of the last logging window): "
                  + ", ".join(f"{k} {v:.4g}" for k, v in losses.items() if v is not None)]
    return lines


def add_pictures(folder: Path, pictures: Mapping[str | os.PathLike[str], str]) -> dict[str, str]:
    """Copy the user's PNGs (path → caption; e.g. a training curve) into the card folder, re-saved with zoo's mark
    so a later ship may replace them; returns file name → caption."""
    from PIL import Image, UnidentifiedImageError

    from zoo.image import save_png

    added: dict[str, str] = {}
    for path, caption in pictures.items():
        path = Path(path)
        name = path.name
        if path.suffix.lower() != ".png" or name in (SAMPLES_PNG, RECONSTRUCTIONS_PNG) or name in added:
            raise ZooError(f"--picture {path}: give a .png whose name is not {SAMPLES_PNG}, {RECONSTRUCTIONS_PNG} "
                           f"or another picture's")
        try:
            with Image.open(path) as img:
                img.load()
                if img.format != "PNG":
                    raise ZooError(f"--picture {path} is a {img.format}, not a PNG; convert it first")
                save_png(img.copy(), folder / name)
        except (OSError, UnidentifiedImageError, SyntaxError) as exc:
            raise ZooError(f"--picture {path} cannot be read as a PNG ({exc}); give a PNG file") from None
        added[name] = caption
    return added


def card(config: Mapping[str, Any], measured: Measurement, *, ship_command: str, n: int, seed: int,
         capabilities: Sequence[str], captions: Mapping[str, str] | None = None, notes: str | None = None) -> str:
    """The model card (README.md) of a shipped folder; its picture links are relative to the folder."""
    import torch

    from zoo import __version__
    from zoo.protocol import CAPABILITY_WORDS

    abilities = ", ".join(CAPABILITY_WORDS[c] for c in CAPABILITY_WORDS if c in capabilities) or "no capability"
    lines = [f"# {card_name(config)}", "",
             f"Architecture `{config['architecture']}`"
             + (f", trained on `{config['dataset']}`" if config.get("dataset") else "") + f"; it has {abilities}.",
             "", "```python", "import zoo", "",
             'model = zoo.create_model("local-dir:PATH/TO/THIS/FOLDER")  # or hf-hub:ORG/REPO@COMMIT once pushed',
             "```", "", "## Training", "", *_training_lines(config), "",
             "Model arguments: `" + json.dumps(config.get("model_args") or {}) + "`", "", "## Held-out numbers", ""]
    numbers, pictures = measured.numbers, measured.pictures
    where = f" on {n:,} images of `{measured.data}` drawn with seed {seed}" if measured.data else ""
    measured_by = (f"Measured by `{ship_command}`{where} (zoo {__version__}, torch {torch.__version__}, "
                   f"{time.strftime('%Y-%m-%d')}).")
    lines += [measured_by, ""]
    if numbers:
        lines += ["| quantity | value |", "| --- | --- |", *(f"| {k} | {_fmt(v)} |" for k, v in numbers.items())]
    else:
        lines.append("No numbers: the model neither encodes and decodes nor measures numbers of its own "
                     "(`card_numbers`).")
    captions = {SAMPLES_PNG: f"{SAMPLE_COUNT} codes drawn from the latent distribution, decoded",
                RECONSTRUCTIONS_PNG: f"{PICTURE_COLUMNS} held-out images and what the model makes of them, one row "
                                     f"each", **(captions or {})}
    if pictures:
        lines += ["", "## Pictures", ""]
        for png in pictures:
            lines += [f"{captions.get(png) or png}:", "", f"![{Path(png).stem}]({png})", ""]
    if notes and notes.strip():
        lines += ["", "## Notes", "", notes.strip()]
    return "\n".join(lines).rstrip("\n") + "\n"


def _ship_command(source: str, out: Path, *, n: int, seed: int, data: str | None, data_args: Mapping[str, Any],
                  tasks: Sequence[str], pictures: Mapping[str | os.PathLike[str], str]) -> str:
    import shlex

    parts = ["zoo", "ship", source, str(out)]
    if n != 1000:
        parts += ["--n", str(n)]
    if seed != HELD_OUT_SEED:
        parts += ["--seed", str(seed)]
    if data is not None:
        parts += ["--data", data]
    for key, value in sorted(data_args.items()):
        parts += ["--data-arg", f"{key}={json.dumps(value)}"]
    for task in tasks:
        parts += ["--task", task]
    for path, caption in pictures.items():
        parts += ["--picture", f"{os.fspath(path)}={caption}"]
    return shlex.join(parts)


def ship(weights: str | os.PathLike[str] | ModelRef, out: str | os.PathLike[str], *, n: int = 1000,
         seed: int = HELD_OUT_SEED, data: str | None = None, data_args: Mapping[str, Any] | None = None,
         tasks: Sequence[str] = (), device: Any = None, batch_size: int | None = None,
         pictures: Mapping[str | os.PathLike[str], str] | None = None, notes: str | None = None,
         overwrite: bool = False) -> Path:
    """Copy the weights folder ``weights`` (a name, ``local-dir:``/``hf-hub:`` reference or a folder path) to
    ``out``, measure it on held-out data (see the module docstring) and write its model card ``out/README.md`` with
    the pictures beside it. ``data`` names the dataset when the weights do not record theirs; ``pictures`` adds
    PNGs of your own (path → caption), e.g. a training curve, and ``notes`` a Markdown section of your own.

    ``out`` is written atomically with zoo's rules: an earlier weights or card folder is replaced, a folder holding
    other files is refused unless ``overwrite`` (which keeps them)."""
    from zoo import hub
    from zoo._util import atomic_folder
    from zoo.batching import resolve_device

    if n < 1:
        raise ZooError(f"--n must be at least 1 held-out image, got {n}")
    if seed < HELD_OUT_SEED:
        raise ZooError(f"held-out draws use seeds from {HELD_OUT_SEED:,} on (smaller ones belong to other tools); "
                       f"pass --seed {HELD_OUT_SEED} or more")
    ref, out = weights_ref(weights), Path(out)
    tasks = tuple(tasks)
    dev = resolve_device(device)
    with atomic_folder(out, hub.owned_files, "model card folder", overwrite=overwrite) as tmp:
        sha256 = _copy_weights(ref, tmp)
        model = _without_training_parts(_load_copy(ref, tmp, sha256, dev), ref, tmp, dev)
        check_tasks(model, tasks)
        captions = add_pictures(tmp, pictures or {})
        measured = measure(model, tmp, n=n, seed=seed, data=data, data_args=data_args, tasks=tasks,
                           batch_size=batch_size)
        measured = measured._replace(pictures=[*measured.pictures, *captions])
        source = str(ref) if isinstance(weights, ModelRef) else os.fspath(weights)  # as the user named it
        command = _ship_command(source, out, n=n, seed=seed, data=data, data_args=dict(data_args or {}), tasks=tasks,
                                pictures=pictures or {})
        config = json.loads((tmp / hub.CONFIG_NAME).read_text())
        config[CARD_KEY] = {"files": measured.pictures, "numbers": measured.numbers, "data": measured.data, "n": n,
                            "seed": seed, "tasks": list(tasks), "command": command}
        (tmp / hub.CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        (tmp / "README.md").write_text(card(config, measured, ship_command=command, n=n, seed=seed,
                                            capabilities=sorted(model.capabilities()), captions=captions,
                                            notes=notes))
    return out


# --- the Hub ---------------------------------------------------------------------------------------------------


def push(source: str | os.PathLike[str] | ModelRef, repo: str, *, revision: str | None = None, private: bool = False,
         token: str | None = None, commit_message: str | None = None) -> str:
    """Upload the weights folder ``source`` (a name, ``local-dir:``/``hf-hub:`` reference or a folder path) to the
    Hub model repo ``repo`` (created if missing) on branch ``revision`` (default main); returns the pinned name
    ``hf-hub:ORG/REPO@<40-hex commit>``.

    What goes up is zoo's files of the folder only (config.json, the weight files, the card and its pictures), copied
    first and loaded by zoo from the copy, so broken weights are never published."""
    import tempfile

    from zoo import hf_hub

    ref = weights_ref(source)
    hf_hub.parse_hf_ref(repo if revision is None else f"{repo}@{revision}")  # malformed names fail before any work
    with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
        staged = Path(tmp)
        sha256 = _copy_weights(ref, staged, with_card=True)
        _load_copy(ref, staged, sha256, "cpu")  # refuses damaged weights in one line
        commit = hf_hub.hub_upload(staged, repo, branch=revision, private=private, token=token,
                                   commit_message=commit_message)
    return f"hf-hub:{repo}@{commit}"


# --- a new plugin ----------------------------------------------------------------------------------------------

# template (in zoo/scaffold/) → where it goes in the new package
SCAFFOLD = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "init.py.tmpl": "zoo_{name}/__init__.py",
    "model.py.tmpl": "zoo_{name}/model.py",
    "test.py.tmpl": "tests/test_{name}.py",
}


def _not_yours(folder: Path) -> set[str] | None:
    """A scaffold never replaces anything: every file already in the target is the user's."""
    return None


def new_plugin(name: str, out: str | os.PathLike[str] | None = None) -> Path:
    """Write a new plugin package ``zoo-NAME`` into ``out`` (default ``./zoo-NAME``): its pyproject.toml (entry
    point, package data for shipped weights), the registration, a small working model (an MLP VAE), tests through
    zoo's conformance kit, and a README with the next commands. ``out`` must be new or empty."""
    import importlib.util

    from zoo import registry
    from zoo._util import atomic_folder
    from zoo.spec import ARCH_RE

    if not ARCH_RE.match(name):
        raise ZooError(f"plugin name {name!r} must be lower-case letters, digits and '_', starting with a letter "
                       f"(it names the architecture and the package zoo_{name}), e.g. myvae")
    if name in registry.models.entries:
        owner = registry.models.entries[name].plugin
        raise ZooError(f"architecture {name!r} is already registered (by plugin {owner!r}); choose another name")
    if importlib.util.find_spec(f"zoo_{name}") is not None:
        raise ZooError(f"a package zoo_{name} is already installed; choose another name")
    out = Path(out) if out is not None else Path(f"zoo-{name}")
    camel = "".join(part.capitalize() for part in name.split("_"))
    words = {"name": name, "Class": camel + "Model" if keyword.iskeyword(camel) else camel}  # not `class None`
    templates = resources.files("zoo") / "scaffold"
    with atomic_folder(out, _not_yours, "plugin package") as tmp:
        for template, dest in SCAFFOLD.items():
            text = string.Template(templates.joinpath(template).read_text()).substitute(words)
            target = tmp / dest.format(name=name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    return out
