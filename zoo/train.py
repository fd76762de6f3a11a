"""The architecture-agnostic training engine: ``zoo train ARCH --data NAME --steps N --out DIR``.

Each plugin supplies ``configure_optimizers`` and ``train_step(x, step, update)``; the engine supplies the data, the
per-step seeding, checkpoints, resume, non-finite-loss guard, multi-process gradient averaging and the final weights.
A model fitted in closed form (a PCA whose ``train_step`` sets buffers from the batch) returns no optimisers and never
calls ``update``.

:class:`TrainingRun` is one run in its folder: ``resume()`` from the checkpoint, ``step()`` by step, ``checkpoint()``
now and then, ``finish()`` with the weights and their provenance. :func:`train` (and ``zoo train``) compose them,
holding the run folder's lock.

Determinism: the batch of step ``s`` on rank ``r`` and the global torch RNG during that step are both seeded from
``(seed, s, r)``, so a run resumed from a checkpoint repeats exactly the draws of an uninterrupted run and ends with
bit-identical weights.

Multi-process (``torchrun --nproc_per_node=K``): every rank builds the same seeded model, draws its own batches, and
``update`` averages each optimiser's gradients across ranks with ``all_reduce`` before stepping — the data-parallel
scheme of DistributedDataParallel, applied per optimiser because plugins own multi-optimiser steps (GAN D/G, FactorVAE
VAE/discriminator). Backend: gloo on CPU, nccl on CUDA (one GPU per rank).
"""

from __future__ import annotations

import dataclasses
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
from zoo.batching import resolve_device
from zoo.errors import DataError, TrainingError, ZooError
from zoo.image import adapt
from zoo.progress import err_console, log_line, progress_bar
from zoo.protocol import ZooModel

CHECKPOINT = "checkpoint"
WEIGHTS = "weights"
HISTORY = "history.json"
CHECKPOINT_FILES = {"state.json", "model.safetensors", "optimizers.safetensors"}


@dataclass
class TrainConfig:
    """Everything that determines the weights a run produces. A resumed run must match it exactly, except ``lr``
    (recorded as a change) and ``steps``: every draw is seeded per step, so a run's first k steps do not depend on
    its total, and a resumed run may end earlier or later than first planned."""

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

    def __post_init__(self) -> None:  # before the run folder is touched
        if self.steps <= 0:
            raise ZooError(f"--steps must be positive, got {self.steps}")
        if self.batch_size <= 0:
            raise ZooError(f"--batch-size must be positive, got {self.batch_size}")


def _step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _fill_data_args(entry: registry.Entry, model_args: Mapping[str, Any], data: str, dataset: Any) -> dict[str, Any]:
    """Pass the dataset's image format to factories that take ``channels`` / ``image_size`` / ``dataset`` (or any
    keyword: ``build(**kwargs)``), unless the run's or the spec's arguments set them."""
    args = dict(model_args)
    params = inspect.signature(import_object(entry.spec.factory)).parameters  # a class: its __init__
    any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    known = {"dataset": data, "channels": dataset.image_spec.channels, "image_size": dataset.image_spec.size[0]}
    for k, v in known.items():
        if (k in params or any_keyword) and k not in args and k not in entry.spec.default_args:
            args[k] = v
    return args


def _run_device(device: str | torch.device | None) -> torch.device:
    """``None`` → zoo's default (CUDA when there is one). Under torchrun a bare ``cuda`` becomes this rank's own GPU,
    ``cuda:LOCAL_RANK``: NCCL needs one device per rank."""
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and "LOCAL_RANK" in os.environ:
        dev = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if dev.type == "cuda" and dev.index is not None:
        torch.cuda.set_device(dev)
    return dev


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


def _load_checkpoint(folder: Path, model: ZooModel, opts: Mapping[str, torch.optim.Optimizer], *,
                     new_lr: bool) -> dict:
    try:
        return _restore(folder, model, opts, new_lr=new_lr)
    except TrainingError:
        raise
    except Exception as exc:  # noqa: BLE001 - any damage (truncated tensors, edited JSON): one line, no traceback
        raise TrainingError(f"the checkpoint in {folder} is damaged ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}); it cannot be resumed — start a new "
                            f"run with another --out (or --overwrite)") from None


def _restore(folder: Path, model: ZooModel, opts: Mapping[str, torch.optim.Optimizer], *, new_lr: bool) -> dict:
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
        if new_lr:  # this invocation's --lr wins (resume with a lower lr); else the rates in force go on
            for g, lr in zip(opt.param_groups, fresh_lrs):
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


class TrainingRun:
    """One training run in its folder ``out``: the model, its optimisers and data, and the run's record (steps
    done, loss history, learning-rate changes, time).

    ``resume()`` continues from ``out/checkpoint``; ``step()`` trains the next step; ``checkpoint()`` writes the
    checkpoint atomically; ``finish()`` writes ``out/weights`` with the provenance and returns the model. The caller
    owns the folder (:func:`check_run_folder` and :func:`zoo._util.run_lock`, as :func:`train` does); only rank 0
    writes.
    """

    def __init__(self, config: TrainConfig, out: str | os.PathLike[str], *, device: str | torch.device | None = "cpu",
                 tag: str | None = None, command: str | None = None, overwrite: bool = False) -> None:
        from zoo.data import ImageDataset, get_dataset

        self.out = Path(out)
        self.tag, self.command, self.overwrite = tag, command, overwrite
        self.device = _run_device(device)
        self.world = _Distributed(self.device)
        entry = registry.models.get(config.arch)
        self.dataset = get_dataset(config.data, **config.data_args)
        if not isinstance(self.dataset, ImageDataset):
            raise DataError(f"dataset {config.data!r} is a {type(self.dataset).__name__}, not a "
                            f"zoo.data.ImageDataset; its plugin must subclass zoo.data.ImageDataset (or "
                            f"GroundTruthDataset) to be trained on")
        self.config = dataclasses.replace(
            config, arch=entry.spec.arch, world_size=self.world.world, data_args=dict(config.data_args),
            model_args=_fill_data_args(entry, config.model_args, config.data, self.dataset))
        arch, data = self.config.arch, self.config.data
        model = zoo.build_model(arch, self.config.model_args, seed=self.config.seed)
        self.init_provenance = _load_init(model, config.init) if config.init is not None else None
        self.model = model.to(self.device).train()
        if not model.has("train"):
            raise ZooError(f"{arch} has no training step; it cannot be trained with `zoo train`")
        channels = self.dataset.image_spec.channels
        if model.image_spec.channels != channels:
            raise ZooError(f"{arch} is built for {model.image_spec.channels}-channel images but {data} has "
                           f"{channels}; pass --arg channels={channels}")
        self.resize = model.image_spec.size != self.dataset.image_spec.size  # e.g. a 32x32 StyleGAN on 64x64 faces
        self.opts = model.configure_optimizers(self.config.lr)  # {} for a model fitted in closed form
        if not self.opts and self.world.world > 1:  # nothing to average: each rank would fit its own shard
            raise ZooError(f"{arch} is fitted in closed form, which does not split across processes; "
                           f"train it in one process (without torchrun)")
        self.params = {name: [p for g in opt.param_groups for p in g["params"]] for name, opt in self.opts.items()}
        self.ckpt = self.out / CHECKPOINT
        self.done = 0  # steps trained, this run's and those of the run it resumed
        self.saved_step: int | None = None  # the step out/checkpoint holds, once this process knows it
        self.history: list[dict[str, float]] = []
        self.lr_changes: list[dict[str, Any]] = []
        self._window: dict[str, list[float]] = {}
        self._elapsed_before, self._t0 = 0.0, time.perf_counter()
        if self.world.rank == 0:  # the writer clears what killed writers left
            clean_leftovers(self.ckpt)
            clean_leftovers(self.out / WEIGHTS)

    @property
    def elapsed(self) -> float:
        """Seconds of training, over every invocation of this run."""
        return self._elapsed_before + time.perf_counter() - self._t0

    # --- the run's life -------------------------------------------------------------------------------------
    def resume(self) -> None:
        """Continue from ``out/checkpoint``: the same configuration, except that ``lr`` may change (recorded)."""
        saved = _read_state(self.ckpt)
        now = json.loads(json.dumps(asdict(self.config)))
        diff = [k for k in now if k not in ("lr", "steps") and saved["config"].get(k) != now[k]]
        if diff:
            raise TrainingError(f"cannot resume {self.ckpt}: it was started with different {', '.join(diff)}; "
                                f"use the same arguments or a new --out")
        if self.config.steps < saved["step"]:
            raise TrainingError(f"cannot resume {self.ckpt} with --steps {self.config.steps}: it is at step "
                                f"{saved['step']}; pass --steps {saved['step']} or more (--steps {saved['step']} "
                                f"writes its weights now)")
        lr, self.config.lr = self.config.lr, saved["config"].get("lr")  # the run keeps the lr it started with
        state = _load_checkpoint(self.ckpt, self.model, self.opts, new_lr=lr is not None)
        self.done, self.history, self._elapsed_before = state["step"], state["history"], state["elapsed_s"]
        self.saved_step = self.done
        self.lr_changes = list(state.get("lr_changes", []))
        if lr is not None and lr != (self.lr_changes[-1]["lr"] if self.lr_changes else self.config.lr):
            self.lr_changes.append({"step": self.done, "lr": lr})
        self._t0 = time.perf_counter()

    def batch(self, step: int) -> torch.Tensor:
        """The images of ``step`` on this rank, drawn by the dataset from a seed of (seed + 1, step, rank)."""
        images, _ = self.dataset.sample(self.config.batch_size, _step_seed(self.config.seed + 1, step, self.world.rank))
        x = images.to(self.device)
        return adapt(x, self.model.image_spec) if self.resize else x

    def step(self) -> dict[str, float]:
        """Train the next step; returns the terms the model logged."""
        step = self.done
        torch.manual_seed(_step_seed(self.config.seed, step, self.world.rank))
        x = self.batch(step)
        try:
            logs = self.model.train_step(x, step, self._update)
        except _NonFinite as exc:
            raise TrainingError(f"loss {exc.name!r} became non-finite at step {step}; weights were not "
                                f"updated. {_restart_advice(self.ckpt)}") from None
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad:
            raise TrainingError(f"{bad[0]!r} became non-finite at step {step}. {_restart_advice(self.ckpt)}")
        for k, v in logs.items():
            self._window.setdefault(k, []).append(v)
        self.done = step + 1
        return logs

    def _update(self, name: str, loss: torch.Tensor) -> None:
        """The ``update`` a model's ``train_step`` calls: backward, average gradients across ranks, step."""
        if not torch.isfinite(loss).all():
            raise _NonFinite(name)
        opt = self.opts[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        self.world.average_gradients(self.params[name])
        opt.step()

    def record(self) -> dict[str, float]:
        """Append the mean of each logged term since the last record to the history; returns those means."""
        means = {k: float(np.mean(v)) for k, v in self._window.items()}
        self.history.append({"step": self.done, **means})
        self._window = {}
        return means

    def checkpoint(self) -> None:
        """Write ``out/checkpoint`` (atomically) and a progress line for log files."""
        self.saved_step = self.done
        if self.world.rank != 0:
            return
        _save_checkpoint(self.ckpt, self.model, self.opts, {
            "step": self.done, "config": asdict(self.config), "history": self.history,
            "lr_changes": self.lr_changes, "elapsed_s": self.elapsed})
        log_line(" ".join([f"step {self.done}/{self.config.steps}", *_losses(self.history),
                           f"({self.elapsed:.0f} s, checkpoint saved)"]))

    def finish(self) -> ZooModel:
        """Check that every rank ended with the same weights, write ``out/weights`` and the history; the model in
        eval mode."""
        digests = self.world.gather_digests(state_digest(self.model))
        if len(set(digests)) != 1:
            raise TrainingError(f"ranks ended with different weights ({len(set(digests))} distinct); "
                                f"please report this")
        model = self.model.eval()
        weights = self.out / WEIGHTS
        if self.world.rank == 0:
            zoo.save_pretrained(model, weights, tag=self.tag or self.config.data, provenance=self.provenance(digests),
                                dataset=self.config.data, overwrite=self.overwrite)
            with atomic_file(self.out / HISTORY, overwrite=True) as tmp:
                tmp.write_text(json.dumps(self.history, indent=1))
            err_console.print(f"weights written to {weights} ({self.elapsed:.0f} s); load with "
                              f"zoo.create_model('local-dir:{weights}')", highlight=False, soft_wrap=True)
        self.close()
        model.weights_source = f"local-dir:{weights}"
        return model

    def close(self) -> None:
        """End this process's part in a multi-process run (after rank 0 wrote); nothing in a single process."""
        self.world.close()

    def provenance(self, digests: list[str]) -> dict[str, Any]:
        """How these weights came about: the command that reproduces them and what it ran on."""
        cfg, threads = self.config, torch.get_num_threads()
        provenance = {
            "command": self.command or _command(cfg, self.out, self.tag),
            "data": cfg.data, "data_args": cfg.data_args, "steps": cfg.steps, "seed": cfg.seed,
            "batch_size": cfg.batch_size, "lr": cfg.lr, "world_size": cfg.world_size, "device": self.device.type,
            "wall_time_s": round(self.elapsed, 1),
            "final_losses": {k: v for k, v in (self.history[-1] if self.history else {}).items() if k != "step"},
            "rank_state_sha256": digests, "torch": torch.__version__, "python": platform.python_version(),
            "machine": f"{platform.machine()}, {threads} thread{'s' * (threads > 1)}",
            "date": time.strftime("%Y-%m-%d"),
        }
        if self.lr_changes:  # resumed with another --lr: the command above alone does not reproduce these weights
            provenance["lr_changes"] = self.lr_changes
        if cfg.init is not None:  # the earlier phases, so the weights' lineage stays reproducible
            provenance["init"] = {"weights": cfg.init, "provenance": self.init_provenance}
        return provenance


def train(arch: str, data: str, *, steps: int, out: str | os.PathLike[str], seed: int = 0, batch_size: int = 64,
          lr: float | None = None, model_args: Mapping[str, Any] | None = None,
          data_args: Mapping[str, Any] | None = None, resume: bool = False, checkpoint_every: int = 500,
          log_every: int = 25, tag: str | None = None, device: str | torch.device | None = "cpu",
          command: str | None = None, stop_after: int | None = None, init: str | None = None,
          overwrite: bool = False) -> ZooModel:
    """Train ``arch`` on dataset ``data`` for ``steps`` steps; write ``out/weights`` (zoo layout) and return the model.

    ``out/checkpoint`` is rewritten atomically every ``checkpoint_every`` steps; ``resume=True`` continues from it.
    ``stop_after`` ends this invocation early (after a checkpoint) — for tests and time-boxed sessions.
    ``init`` names weights (``ARCH.TAG``, ``local-dir:PATH``, ``hf-hub:…``) to start from instead of a random
    initialisation: fine-tuning, e.g. a second training phase with other model arguments.
    ``out`` must be new or empty (or hold this run, with ``resume``); ``overwrite=True`` trains again over an
    earlier run there. A lock keeps a second process from writing the same ``out``. ``device=None`` picks CUDA when
    there is one (:func:`zoo.batching.default_device`).
    """
    out = Path(out)
    config = TrainConfig(arch, data, steps, seed, batch_size, lr, dict(model_args or {}), dict(data_args or {}),
                         init=init)

    def run() -> ZooModel:
        training = TrainingRun(config, out, device=device, tag=tag, command=command, overwrite=overwrite)
        if resume:
            training.resume()
        return _drive(training, checkpoint_every=checkpoint_every, log_every=log_every, stop_after=stop_after)

    if int(os.environ.get("RANK", "0")) != 0:  # rank 0 writes; it holds the lock for the whole group
        return run()
    check_run_folder(out, resume=resume, overwrite=overwrite)
    with run_lock(out, "a training run"):
        return run()


def _drive(run: TrainingRun, *, checkpoint_every: int, log_every: int, stop_after: int | None) -> ZooModel:
    """Step ``run`` to its end (or to ``stop_after``) under a progress bar, recording and checkpointing on the way."""
    steps, arch = run.config.steps, run.config.arch
    end = steps if stop_after is None else min(steps, stop_after)
    with progress_bar(f"training {arch} on {run.config.data}", steps) as bar:
        task = bar.task_ids[0]
        bar.update(task, completed=run.done)
        while run.done < end:
            run.step()
            if run.done % log_every == 0 or run.done == end:
                means = run.record()
                bar.update(task, description=f"{arch} " + " ".join(
                    f"{k}={v:.4g}" for k, v in list(means.items())[:4]))
            bar.advance(task)
            if run.done % checkpoint_every == 0 and run.done < steps:
                run.checkpoint()
    if end < steps:
        if run.saved_step != run.done:
            run.checkpoint()
        run.close()
        return run.model.eval()
    return run.finish()


def check_run_folder(out: Path, *, resume: bool, overwrite: bool) -> None:
    """A new run needs a new or empty ``out`` (or ``overwrite``); ``resume`` needs a checkpoint there (notes a user
    put beside a run do not stop it: training writes only its own checkpoint/, weights/ and history)."""
    if not resume:
        check_target(out, run_files, "run folder", overwrite=overwrite)
    earlier = (run_files(out) or set()) - {".zoo.lock"} if out.is_dir() else set()
    if resume:
        if not (out / CHECKPOINT / "state.json").is_file():
            done = " (its weights are written: the run finished)" if (out / WEIGHTS / "config.json").is_file() else ""
            raise TrainingError(f"nothing to resume: {out / CHECKPOINT} has no checkpoint{done}; run without --resume")
    elif earlier and not overwrite:
        raise TrainingError(f"{out} already holds a run; pass --resume to continue it, --overwrite to train again "
                            f"over it, or choose another --out")


def _losses(history: list[dict[str, float]]) -> list[str]:
    """``["loss=0.1", ...]`` of the last history entry."""
    return [f"{k}={v:.4g}" for k, v in (history[-1] if history else {}).items() if k != "step"]


def _restart_advice(ckpt: Path) -> str:
    if (ckpt / "state.json").is_file():
        step = _read_state(ckpt).get("step")
        return f"The last good checkpoint is {ckpt} (step {step}): continue with --resume and a lower --lr"
    return "No checkpoint was written yet: start again with a lower --lr (and --overwrite)"


def _command(cfg: TrainConfig, out: Path, tag: str | None) -> str:
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
        model.load_init(start)
    except RuntimeError as exc:
        raise ZooError(f"--init {init} does not fit the model of this run (same --arg sizes?): "
                       f"{str(exc).splitlines()[0]}") from None
    return (start.weights_config or {}).get("provenance")


class _NonFinite(Exception):
    """A loss handed to ``update`` is NaN or infinite (caught by :meth:`TrainingRun.step`)."""

    def __init__(self, name: str) -> None:
        self.name = name
