"""The architecture-agnostic training engine: ``zoo train ARCH --data NAME --steps N --out DIR``.

Each plugin supplies ``configure_optimizers`` and ``train_step(x, step, update)``; the engine supplies the data, the
per-step seeding, checkpoints, resume, non-finite-loss guard, multi-process gradient averaging and the final weights.

Determinism: the batch of step ``s`` on rank ``r`` and the global torch RNG during that step are both seeded from
``(seed, s, r)``, so a run resumed from a checkpoint repeats exactly the draws of an uninterrupted run and ends with
bit-identical weights.

Multi-process (``torchrun --nproc_per_node=K``): every rank builds the same seeded model, draws its own batches, and
``update`` averages each optimiser's gradients across ranks with ``all_reduce`` before stepping — the data-parallel
scheme of DistributedDataParallel, applied per optimiser because plugins own multi-optimiser steps (GAN D/G, FactorVAE
VAE/discriminator). Backend: gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import platform
import shlex
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import zoo
from zoo import registry
from zoo._util import atomic_file, atomic_folder, check_target, clean_leftovers, import_object, run_lock
from zoo.errors import TrainingError, ZooError
from zoo.image import adapt
from zoo.progress import err_console, log_line, progress_bar
from zoo.protocol import ZooModel

CHECKPOINT = "checkpoint"
WEIGHTS = "weights"
HISTORY = "history.json"
CHECKPOINT_FILES = {"state.json", "model.safetensors", "optimizers.safetensors"}


@dataclass
class TrainConfig:
    """Everything that determines the weights a run produces (a resumed run must match it exactly)."""

    arch: str
    data: str
    steps: int
    seed: int = 0
    batch_size: int = 64
    lr: float | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    data_args: dict[str, Any] = field(default_factory=dict)
    world_size: int = 1
    init: str | None = None  # weights the run starts from (fine-tuning), as a model name


def _step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _batch(dataset: Any, n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    if hasattr(dataset, "images_from_factors"):
        return dataset.images_from_factors(dataset.sample_factors(n, rng))
    items = [dataset[int(i)] for i in rng.integers(len(dataset), size=n)]
    return torch.stack([it[0] if isinstance(it, (tuple, list)) else it for it in items])


def _fill_data_args(arch: str, model_args: Mapping[str, Any], data: str, dataset: Any) -> dict[str, Any]:
    """Pass the dataset's image format to factories that take ``channels`` / ``image_size`` / ``dataset``."""
    args = dict(model_args)
    entry = registry.models.get(arch)
    params = inspect.signature(import_object(entry.spec.factory)).parameters  # a class: its __init__
    known = {"dataset": data, "channels": dataset.image_spec.channels, "image_size": dataset.image_spec.size[0]}
    for k, v in known.items():
        if k in params and k not in args and k not in entry.spec.default_args:
            args[k] = v
    return args


# --- checkpoints: tensors in safetensors, everything else in JSON; nothing is pickled ------------------------
def checkpoint_files(folder: Path) -> set[str] | None:
    """The files of a zoo checkpoint folder; None if ``folder`` is not one."""
    return CHECKPOINT_FILES if (folder / "state.json").is_file() else None


def run_files(folder: Path) -> set[str] | None:
    """The files of a zoo run folder (``--out``): its checkpoint, weights, history and lock."""
    ours = (HISTORY, ".zoo.lock", CHECKPOINT, WEIGHTS)
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    # a writer's temporary copies (.checkpoint.tmp-PID-…) are ours too
    return {f for f in present if f.split("/", 1)[0].split(".tmp-")[0].lstrip(".") in ours
            or f.split("/", 1)[0] in ours}


def _save_checkpoint(folder: Path, model: ZooModel, opts: Mapping[str, torch.optim.Optimizer], state: dict) -> None:
    from safetensors.torch import save_file

    with atomic_folder(folder, checkpoint_files, "checkpoint", overwrite=True) as tmp:
        save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
        tensors, meta = {}, {}
        for name, opt in opts.items():
            sd = opt.state_dict()
            meta[name] = {"param_groups": sd["param_groups"], "scalars": {}}
            for idx, pstate in sd["state"].items():
                for key, val in pstate.items():
                    if torch.is_tensor(val):
                        tensors[f"{name}/{idx}/{key}"] = val.detach().contiguous().clone()
                    else:
                        meta[name]["scalars"][f"{idx}/{key}"] = val
        save_file(tensors, tmp / "optimizers.safetensors")
        (tmp / "state.json").write_text(json.dumps({**state, "optimizers": meta}, indent=1))


def _read_state(folder: Path) -> dict:
    try:
        state = json.loads((folder / "state.json").read_text())
        if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
            raise TypeError("no run configuration in state.json")
        return state
    except (OSError, ValueError, TypeError) as exc:
        raise TrainingError(f"the checkpoint in {folder} is damaged ({exc}); it cannot be resumed — start a new "
                            f"run with another --out (or --overwrite)") from None


def _load_checkpoint(folder: Path, model: ZooModel, opts: Mapping[str, torch.optim.Optimizer]) -> dict:
    try:
        return _restore(folder, model, opts)
    except TrainingError:
        raise
    except Exception as exc:  # noqa: BLE001 - any damage (truncated tensors, edited JSON): one line, no traceback
        raise TrainingError(f"the checkpoint in {folder} is damaged ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}); it cannot be resumed — start a new "
                            f"run with another --out (or --overwrite)") from None


def _restore(folder: Path, model: ZooModel, opts: Mapping[str, torch.optim.Optimizer]) -> dict:
    from safetensors.torch import load_file

    state = _read_state(folder)
    weights = load_file(folder / "model.safetensors")
    bad = [k for k, v in weights.items() if v.is_floating_point() and bool(torch.isnan(v).any())]
    if bad:
        raise TrainingError(f"the checkpoint in {folder} holds NaN values in {bad[0]!r}; it cannot be resumed")
    model.load_state_dict(weights, strict=True)
    tensors = load_file(folder / "optimizers.safetensors")
    for name, opt in opts.items():
        meta = state["optimizers"][name]
        per_param: dict[int, dict[str, Any]] = {}
        for key, val in tensors.items():
            oname, idx, k = key.split("/", 2)
            if oname == name:
                per_param.setdefault(int(idx), {})[k] = val
        for key, val in meta["scalars"].items():
            idx, k = key.split("/", 1)
            per_param.setdefault(int(idx), {})[k] = val
        fresh_lrs = [g["lr"] for g in opt.param_groups]
        opt.load_state_dict({"state": per_param, "param_groups": meta["param_groups"]})
        for g, lr in zip(opt.param_groups, fresh_lrs):  # this invocation's --lr wins (resume with a lower lr)
            g["lr"] = lr
    return state


def state_digest(model: torch.nn.Module) -> str:
    """sha256 over every tensor of the state dict (to compare ranks or runs)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class _Distributed:
    """torch.distributed when launched by torchrun (WORLD_SIZE > 1), a no-op otherwise."""

    def __init__(self, device: torch.device) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.active = self.world > 1
        if self.active:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.dist = dist

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        if not self.active:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p, g in zip(params, grads):
            p.grad = flat[offset:offset + g.numel()].view_as(g).clone()
            offset += g.numel()

    def gather_digests(self, digest: str) -> list[str]:
        if not self.active:
            return [digest]
        out: list[Any] = [None] * self.world
        self.dist.all_gather_object(out, digest)
        return out

    def close(self) -> None:
        if self.active:
            self.dist.barrier()  # let rank 0 finish writing before any rank tears the group down
            self.dist.destroy_process_group()


def train(arch: str, data: str, *, steps: int, out: str | os.PathLike[str], seed: int = 0, batch_size: int = 64,
          lr: float | None = None, model_args: Mapping[str, Any] | None = None,
          data_args: Mapping[str, Any] | None = None, resume: bool = False, checkpoint_every: int = 500,
          log_every: int = 25, tag: str | None = None, device: str = "cpu", command: str | None = None,
          stop_after: int | None = None, init: str | None = None, overwrite: bool = False) -> ZooModel:
    """Train ``arch`` on dataset ``data`` for ``steps`` steps; write ``out/weights`` (zoo layout) and return the model.

    ``out/checkpoint`` is rewritten atomically every ``checkpoint_every`` steps; ``resume=True`` continues from it.
    ``stop_after`` ends this invocation early (after a checkpoint) — for tests and time-boxed sessions.
    ``init`` names weights (``ARCH.TAG``, ``local-dir:PATH``, ``hf-hub:…``) to start from instead of a random
    initialisation: fine-tuning, e.g. a second training phase with other model arguments.
    ``out`` must be new or empty (or hold this run, with ``resume``); ``overwrite=True`` trains again over an
    earlier run there. A lock keeps a second process from writing the same ``out``.
    """
    args = dict(locals())
    if int(os.environ.get("RANK", "0")) != 0:  # rank 0 writes; it holds the lock for the whole group
        return _train(**args)
    check_run_folder(Path(out), resume=resume, overwrite=overwrite)
    with run_lock(Path(out), "a training run"):
        return _train(**args)


def check_run_folder(out: Path, *, resume: bool, overwrite: bool) -> None:
    """A new run needs a new or empty ``out`` (or ``overwrite``); ``resume`` needs a checkpoint there."""
    check_target(out, run_files, "run folder", overwrite=overwrite)
    earlier = (run_files(out) or set()) - {".zoo.lock"} if out.is_dir() else set()
    if resume:
        if not (out / CHECKPOINT / "state.json").is_file():
            done = " (its weights are written: the run finished)" if (out / WEIGHTS / "config.json").is_file() else ""
            raise TrainingError(f"nothing to resume: {out / CHECKPOINT} has no checkpoint{done}; run without --resume")
    elif earlier and not overwrite:
        raise TrainingError(f"{out} already holds a run; pass --resume to continue it, --overwrite to train again "
                            f"over it, or choose another --out")


def _train(arch: str, data: str, *, steps: int, out: str | os.PathLike[str], seed: int = 0, batch_size: int = 64,
          lr: float | None = None, model_args: Mapping[str, Any] | None = None,
          data_args: Mapping[str, Any] | None = None, resume: bool = False, checkpoint_every: int = 500,
          log_every: int = 25, tag: str | None = None, device: str = "cpu", command: str | None = None,
          stop_after: int | None = None, init: str | None = None, overwrite: bool = False) -> ZooModel:
    from zoo.data import get_dataset

    if steps <= 0:
        raise ZooError(f"--steps must be positive, got {steps}")
    out = Path(out)
    dev = torch.device(device)
    world = _Distributed(dev)
    entry = registry.models.get(arch)
    arch = entry.spec.arch
    dataset = get_dataset(data, **dict(data_args or {}))
    cfg = TrainConfig(arch, data, steps, seed, batch_size, lr, _fill_data_args(arch, model_args or {}, data, dataset),
                      dict(data_args or {}), world.world, init)
    model = zoo.build_model(arch, cfg.model_args, seed=seed)
    init_provenance = _load_init(model, init) if init is not None else None
    model = model.to(dev).train()
    if not model.has("train"):
        raise ZooError(f"{arch} has no training step; it cannot be trained with `zoo train`")
    if model.image_spec.channels != dataset.image_spec.channels:
        raise ZooError(f"{arch} is built for {model.image_spec.channels}-channel images but {data} has "
                       f"{dataset.image_spec.channels}; pass --arg channels={dataset.image_spec.channels}")
    resize = model.image_spec.size != dataset.image_spec.size  # e.g. a 32x32 StyleGAN on 64x64 faces
    opts = model.configure_optimizers(lr)
    start, history, elapsed, lr_changes = 0, [], 0.0, []
    ckpt = out / CHECKPOINT
    clean_leftovers(ckpt)
    clean_leftovers(out / WEIGHTS)
    if resume:
        saved = _read_state(ckpt)
        now = json.loads(json.dumps(asdict(cfg)))
        # the learning rate may change on resume (e.g. lower it after a divergence); everything else must match
        diff = [k for k in now if k != "lr" and saved["config"].get(k) != now[k]]
        if diff:
            raise TrainingError(f"cannot resume {ckpt}: it was started with different {', '.join(diff)}; "
                                f"use the same arguments or a new --out")
        state = _load_checkpoint(ckpt, model, opts)
        start, history, elapsed = state["step"], state["history"], state["elapsed_s"]
        lr_changes = list(state.get("lr_changes", []))
        if lr is not None and lr != (lr_changes[-1]["lr"] if lr_changes else saved["config"].get("lr")):
            lr_changes.append({"step": start, "lr": lr})
        cfg.lr = saved["config"].get("lr")  # the run's recorded configuration stays the one it started with

    params = {name: [p for g in opt.param_groups for p in g["params"]] for name, opt in opts.items()}
    step = start

    def update(name: str, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss).all():
            raise _NonFinite(name, step)
        opt = opts[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        world.average_gradients(params[name])
        opt.step()

    def checkpoint(at: int) -> None:
        if world.rank == 0:
            _save_checkpoint(ckpt, model, opts, {"step": at, "config": asdict(cfg), "history": history,
                                                 "lr_changes": lr_changes,
                                                 "elapsed_s": elapsed + time.perf_counter() - t0})

    t0 = time.perf_counter()
    window: dict[str, list[float]] = {}
    end = steps if stop_after is None else min(steps, stop_after)
    with progress_bar(f"training {arch} on {data}", steps) as bar:
        bar.update(bar.task_ids[0], completed=start)
        for step in range(start, end):
            torch.manual_seed(_step_seed(seed, step, world.rank))
            x = _batch(dataset, batch_size, _step_seed(seed + 1, step, world.rank)).to(dev)
            if resize:
                x = adapt(x, model.image_spec)
            try:
                logs = model.train_step(x, step, update)
            except _NonFinite as exc:
                raise TrainingError(f"loss {exc.name!r} became non-finite at step {exc.step}; weights were not "
                                    f"updated. {_restart_advice(ckpt)}") from None
            bad = [k for k, v in logs.items() if not math.isfinite(v)]
            if bad:
                raise TrainingError(f"{bad[0]!r} became non-finite at step {step}. {_restart_advice(ckpt)}")
            for k, v in logs.items():
                window.setdefault(k, []).append(v)
            if (step + 1) % log_every == 0 or step + 1 == end:
                means = {k: float(np.mean(v)) for k, v in window.items()}
                history.append({"step": step + 1, **means})
                window = {}
                bar.update(bar.task_ids[0], description=f"{arch} " + " ".join(
                    f"{k}={v:.4g}" for k, v in list(means.items())[:4]))
            bar.advance(bar.task_ids[0])
            if (step + 1) % checkpoint_every == 0 and step + 1 < steps:
                checkpoint(step + 1)
                losses = [f"{k}={v:.4g}" for k, v in (history[-1] if history else {}).items() if k != "step"]
                seconds = elapsed + time.perf_counter() - t0
                log_line(" ".join([f"step {step + 1}/{steps}", *losses, f"({seconds:.0f} s, checkpoint saved)"]))
    if end < steps:
        checkpoint(end)
        world.close()
        return model.eval()
    wall = elapsed + time.perf_counter() - t0
    digests = world.gather_digests(state_digest(model))
    if len(set(digests)) != 1:
        raise TrainingError(f"ranks ended with different weights ({len(set(digests))} distinct); please report this")
    model.eval()
    final_losses = {k: v for k, v in (history[-1] if history else {}).items() if k != "step"}
    provenance = {
        "command": command or _command(cfg, out, tag, checkpoint_every),
        "data": data, "data_args": cfg.data_args, "steps": steps, "seed": seed, "batch_size": batch_size,
        "lr": lr, "world_size": world.world, "wall_time_s": round(wall, 1), "final_losses": final_losses,
        "rank_state_sha256": digests, "torch": torch.__version__, "python": platform.python_version(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} thread{'s' * (torch.get_num_threads() > 1)}",
        "date": time.strftime("%Y-%m-%d"),
    }
    if lr_changes:  # resumed with another --lr: the command above alone does not reproduce these weights
        provenance["lr_changes"] = lr_changes
    if init is not None:  # the earlier phases, so the weights' lineage stays reproducible
        provenance["init"] = {"weights": init, "provenance": init_provenance}
    if world.rank == 0:
        zoo.save_pretrained(model, out / WEIGHTS, tag=tag or data, provenance=provenance, dataset=data,
                            overwrite=overwrite)
        with atomic_file(out / HISTORY, overwrite=True) as tmp:
            tmp.write_text(json.dumps(history, indent=1))
        err_console.print(f"weights written to {out / WEIGHTS} ({wall:.0f} s); load with "
                          f"zoo.create_model('local-dir:{out / WEIGHTS}')", highlight=False, soft_wrap=True)
    world.close()
    model.weights_source = f"local-dir:{out / WEIGHTS}"
    return model


def _restart_advice(ckpt: Path) -> str:
    if (ckpt / "state.json").is_file():
        step = _read_state(ckpt).get("step")
        return f"The last good checkpoint is {ckpt} (step {step}): continue with --resume and a lower --lr"
    return "No checkpoint was written yet: start again with a lower --lr (and --overwrite)"


def _command(cfg: TrainConfig, out: Path, tag: str | None, checkpoint_every: int) -> str:
    """The one command that reproduces this run."""
    parts = ["zoo", "train", cfg.arch, "--data", cfg.data, "--steps", str(cfg.steps), "--seed", str(cfg.seed),
             "--batch-size", str(cfg.batch_size)]
    if cfg.lr is not None:
        parts += ["--lr", repr(cfg.lr)]
    for k, v in sorted(cfg.model_args.items()):
        parts += ["--arg", f"{k}={json.dumps(v)}"]
    for k, v in sorted(cfg.data_args.items()):
        parts += ["--data-arg", f"{k}={json.dumps(v)}"]
    if cfg.init:
        parts += ["--init", cfg.init]
    if tag:
        parts += ["--tag", tag]
    parts += ["--out", str(out)]
    launcher = ["torchrun", f"--nproc_per_node={cfg.world_size}", "--no-python"] if cfg.world_size > 1 else []
    return shlex.join(launcher + parts)


def _load_init(model: ZooModel, init: str) -> dict[str, Any] | None:
    """Copy the weights named ``init`` into ``model``; returns their provenance."""
    start = zoo.create_model(init)
    if start.arch != model.arch:
        raise ZooError(f"--init {init} is a {start.arch!r} model; this run trains {model.arch!r}")
    try:
        model.load_state_dict(start.state_dict(), strict=True)
    except RuntimeError as exc:
        raise ZooError(f"--init {init} does not fit the model of this run (same --arg sizes?): "
                       f"{str(exc).splitlines()[0]}") from None
    return (start.weights_config or {}).get("provenance")


class _NonFinite(Exception):
    def __init__(self, name: str, step: int) -> None:
        self.name, self.step = name, step
