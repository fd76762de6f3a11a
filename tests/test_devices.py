"""Device handling, checked on a CPU-only machine: the default device, a clear error for a missing GPU, and batches
moved to wherever the model lives (the meta device stands in for a GPU: it runs shapes only, so a batch left on
the CPU would fail against meta weights)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo import batching
from zoo.errors import ZooError


def test_default_device_is_cuda_when_available(monkeypatch):
    monkeypatch.delenv("ZOO_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert batching.default_device() == torch.device("cpu")
    assert batching.default_batch_size(torch.device("cpu")) == batching.CPU_BATCH
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert batching.default_device() == torch.device("cuda")
    assert batching.default_batch_size(torch.device("cuda")) == batching.CUDA_BATCH
    monkeypatch.setenv("ZOO_DEVICE", "cpu")
    assert batching.default_device() == torch.device("cpu")


def test_asking_for_a_missing_gpu_is_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ZooError, match="no CUDA device") as err:
        zoo.run("jacobian", "vae.faces64", device="cuda", n=2)
    assert "\n" not in str(err.value)


def test_batches_follow_the_model_to_its_device():
    enc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    dec = nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Unflatten(1, (3, 8, 8)))
    model = zoo.wrap(encoder=enc, decoder=dec, image_spec=zoo.ImageSpec(3, (8, 8)), latent_spec=(4,)).to("meta")
    images = torch.rand(10, 3, 8, 8)  # on the CPU, as a dataset returns them
    codes = batching.encode(model, images, batch_size=3, out_device="meta")
    assert codes.device.type == "meta" and codes.shape == (10, 4)
    out = batching.decode(model, torch.zeros(5, 4), batch_size=2, out_device="meta")
    assert out.shape == (5, 3, 8, 8)


@pytest.mark.parametrize("flush_bytes, copies", [(1, 5), (10 ** 9, 1)])  # every batch / all at once
def test_outputs_leave_the_device_together(flush_bytes, copies, monkeypatch):
    """Outputs wait on the model's device and are copied out when FLUSH_BYTES of them are there (the CPU stands in
    for the GPU and the meta device for the host)."""
    monkeypatch.setattr(batching, "FLUSH_BYTES", flush_bytes)
    moved = []
    real_to = torch.Tensor.to

    def spy(self, *args, **kwargs):
        if args and str(args[0]) == "meta":
            moved.append(len(self))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", spy)
    codes = batching.map_batches(lambda x: x * 2, torch.arange(10.0), batch_size=2, out_device="meta")
    assert codes.device.type == "meta" and codes.shape == (10,)
    assert len(moved) == copies and sum(moved) == 10


def test_run_places_models_on_the_chosen_device_and_batch_size():
    seen = {}

    def probe(run):
        seen.update(device=run.device, model_device=run.model.device, batch_size=run.batch_size)
        return {"ok": 1}

    spec = zoo.TaskSpec("probe", probe, models="one")
    zoo.run(spec, "vae.faces64", device="cpu", batch_size=7)
    assert seen == {"device": torch.device("cpu"), "model_device": torch.device("cpu"), "batch_size": 7}
