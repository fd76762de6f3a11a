"""``zoo.run``: one typed path from a task name to a result, for every metric and tool any plugin registers.

A plugin registers a :class:`zoo.TaskSpec` (inputs, data, capabilities, typed options) and one function
``f(run, **options) -> dict``. The runner resolves the models and the dataset once, checks capabilities and options
before any work, and hands the function a :class:`TaskRun` with everything it needs — including the one batched
encode/decode helper (:mod:`zoo.batching`) on the chosen device and batch size.

>>> r = zoo.run("mig", "betavae.dsprites", num_train=1000)
>>> r["discrete_mig"], r.to_dict()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from zoo import batching, registry
from zoo._util import import_object
from zoo.errors import ZooError
from zoo.protocol import ZooModel, require
from zoo.spec import TaskSpec

ARITY = {"one": 1, "pair": 2, "none": 0}


@dataclass
class TaskRun:
    """What a task function receives: resolved models (on ``device``), the dataset (or None), the batch size."""

    spec: TaskSpec
    models: tuple[ZooModel, ...]
    data: Any
    device: torch.device
    batch_size: int

    @property
    def model(self) -> ZooModel:
        return self.models[0]

    def encode(self, model: ZooModel, images: batching.Source, **kwargs: Any) -> torch.Tensor:
        return batching.encode(model, images, batch_size=self.batch_size, **kwargs)

    def decode(self, model: ZooModel, codes: batching.Source, **kwargs: Any) -> torch.Tensor:
        return batching.decode(model, codes, batch_size=self.batch_size, **kwargs)


@dataclass
class TaskResult(Mapping):
    """A task's numbers (``result["key"]``), with what produced them; ``to_dict()`` for JSON, ``__rich__`` for a
    table."""

    task: str
    models: list[str]
    data: str | None
    options: dict[str, Any]
    numbers: dict[str, Any] = field(default_factory=dict)  # what the task returned (not `values`: Mapping has one)

    def __getitem__(self, key: str) -> Any:
        return self.numbers[key]

    def __iter__(self):
        return iter(self.numbers)

    def __len__(self) -> int:
        return len(self.numbers)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "models": self.models, "data": self.data, "options": self.options,
                **self.numbers}

    def __rich__(self) -> Any:
        from rich.table import Table

        title = f"{self.task} of {' → '.join(self.models) or '-'}" + (f" on {self.data}" if self.data else "")
        table = Table("value", "number", title=title, title_justify="left")
        for key, value in self.numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue  # lists, matrices and texts are in to_dict()
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        return table


def task_options(spec: TaskSpec, options: Mapping[str, Any]) -> dict[str, Any]:
    """The declared options with defaults filled in and values coerced; an unknown one is one line naming the
    known ones."""
    unknown = sorted(set(options) - {o.name for o in spec.options})
    if unknown:
        known = ", ".join(o.name for o in spec.options) or "none"
        raise ZooError(f"task {spec.name!r} has no option {unknown[0]!r}; its options: {known}")
    return {o.name: o.coerce(options.get(o.name, o.default), spec.name) for o in spec.options}


def _model(ref: Any, device: torch.device) -> ZooModel:
    if isinstance(ref, ZooModel):
        return ref.to(device).eval()
    from zoo.factory import create_model

    return create_model(ref, device=device)


def run(task: str | TaskSpec, *models: Any, data: Any = None, data_args: Mapping[str, Any] | None = None,
        device: str | torch.device | None = None, batch_size: int | None = None, **options: Any) -> TaskResult:
    """Run a registered task on ``models`` (names, ``ModelRef``s or models) and ``data`` (a dataset name, a dataset,
    or None for the models' own training data).

    ``device``: default CUDA when available, else CPU. ``batch_size``: default per device
    (:func:`zoo.batching.default_batch_size`). Every check (number of models, capabilities, options, data) happens
    before the task starts."""
    spec = task if isinstance(task, TaskSpec) else registry.tasks.get(task).spec
    if len(models) != ARITY[spec.models]:
        what = {"one": "one model", "pair": "two models (source and target)", "none": "no model"}[spec.models]
        raise ZooError(f"task {spec.name!r} takes {what}, got {len(models)}")
    opts = task_options(spec, options)
    dev = batching.resolve_device(device)
    loaded = tuple(_model(m, dev) for m in models)
    for m in loaded:
        require(m, *spec.needs, purpose=spec.name)
    dataset = None
    if spec.data is not None:
        from zoo.data import dataset_for

        dataset = data if data is not None and not isinstance(data, str) else \
            dataset_for(*loaded, data=data, need_factors=spec.data == "factors", **dict(data_args or {}))
    elif data is not None:
        raise ZooError(f"task {spec.name!r} reads no dataset; drop --data")
    size = batch_size or batching.default_batch_size(dev)
    values = import_object(spec.function)(TaskRun(spec, loaded, dataset, dev, size), **opts)
    return TaskResult(spec.name, [m.display_name for m in loaded], getattr(dataset, "name", None), opts,
                      dict(values))
