"""The task contract from a third party's side: a plugin registers a TaskSpec and gets ``zoo.run``, ``zoo run TASK``
with typed options, ``--device``/``--batch-size``, and one-line errors before any work; the built-in metric commands
are the same generated commands."""

import json
import re

import pytest

import zoo
from zoo.testing import make_fake_dist

REGISTER = '''
import zoo
from zoo import Option, TaskSpec


@zoo.hookimpl
def zoo_register_models(register):
    register(zoo.ModelSpec(arch="probeae", factory="zoo_probe_model:ProbeAE", description="records its batches"))
    register(zoo.ModelSpec(arch="probedec", factory="zoo_probe_model:ProbeDecoder", description="decoder only"))


@zoo.hookimpl
def zoo_register_datasets(register):
    register(zoo.DatasetSpec(name="probebars", factory="zoo_probe_model:ProbeBars", description="8x8 bars"))
    register(zoo.DatasetSpec(name="probenoise", factory="zoo_probe_model:ProbeNoise", description="no factors"))


@zoo.hookimpl
def zoo_register_tasks(register):
    register(TaskSpec("probe", "zoo_probe_model:probe", "Mean code of the first K images; says what it was given.",
                      data="images", needs=("encode",),
                      options=(Option("k", "int", 20, "Images to encode.", min=1),
                               Option("scale", "float", 1.0, "Multiplies the mean code.", min=0),
                               Option("mode", "str", "mean", choices=("mean", "max")),
                               Option("flag", "bool", False, "A switch."))))
'''

MODELS = '''
import numpy as np
import torch
from torch import nn

import zoo
from zoo.data import GroundTruthDataset, ImageDataset

CALLS = []  # one entry per run of the task: the tests check that refused runs never get here


class ProbeAE(zoo.ZooModel):
    """A linear autoencoder of 8x8 grey images that records the size of every batch it encodes."""

    def __init__(self, latent_dim=2, dataset="probebars"):
        super().__init__()
        self.image_spec = zoo.ImageSpec(1, (8, 8), dataset=dataset)
        self.latent_spec = zoo.LatentSpec((latent_dim,))
        self.enc, self.dec = nn.Linear(64, latent_dim), nn.Linear(latent_dim, 64)
        self.batches = []

    def encode(self, x):
        self.batches.append(len(x))
        return self.enc(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)


class ProbeDecoder(zoo.ZooModel):
    """No encoder: the capability checks must refuse it."""

    def __init__(self, latent_dim=2, dataset="probebars"):
        super().__init__()
        self.image_spec = zoo.ImageSpec(1, (8, 8), dataset=dataset)
        self.latent_spec = zoo.LatentSpec((latent_dim,))
        self.dec = nn.Linear(latent_dim, 64)

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)


class ProbeBars(GroundTruthDataset):
    name, factor_names, factor_sizes, factor_values = "probebars", ("position",), (8,), (np.arange(8.0),)
    image_spec = zoo.ImageSpec(1, (8, 8), dataset="probebars")

    def _render(self, factors):
        x = torch.zeros(len(factors), 1, 8, 8)
        x[torch.arange(len(factors)), 0, :, torch.as_tensor(factors[:, 0])] = 1.0
        return x


class ProbeNoise(ImageDataset):
    """Images without factors of variation."""

    name, image_spec = "probenoise", zoo.ImageSpec(1, (8, 8), dataset="probenoise")

    def __len__(self):
        return 16

    def __getitem__(self, index):
        return torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(int(index)))


def probe(run, *, k, scale, mode, flag):
    CALLS.append(k)
    codes = run.encode(run.model, lambda lo, hi: run.data.images(np.arange(lo, hi) % len(run.data)), n=k)
    value = codes.mean() if mode == "mean" else codes.max()
    return {"value": float(value) * scale, "k": k, "scale": scale, "mode": mode, "flag": flag,
            "batch_size": run.batch_size, "device": str(run.device), "model_device": str(run.model.device),
            "batches": list(run.model.batches), "data_name": run.data.name}
'''


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """Installs the ``zoo-probe`` plugin; returns (its model module, a saved probeae, a saved probedec)."""
    root = make_fake_dist(tmp_path / "site", "zoo-probe", {"probe": "zoo_probe"},
                          {"zoo_probe.py": REGISTER, "zoo_probe_model.py": MODELS})
    monkeypatch.syspath_prepend(str(root))
    zoo.plugins.reset()
    import zoo_probe_model

    zoo_probe_model.CALLS.clear()
    saved = {arch: f"local-dir:{zoo.save_pretrained(zoo.create_model(arch, pretrained=False), tmp_path / arch)}"
             for arch in ("probeae", "probedec")}
    return zoo_probe_model, saved["probeae"], saved["probedec"]


def one_error_line(result, *needles):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and len(lines) == 1, result.stderr
    for n in needles:
        assert n in errors[0], errors[0]


def test_a_plugin_task_runs_through_zoo_run(probe):
    module, _, _ = probe
    r = zoo.run("probe", zoo.create_model("probeae", pretrained=False), k=10, scale="2.5", mode="max",
                device="cpu", batch_size=4)
    assert (r["k"], r["scale"], r["mode"], r["flag"]) == (10, 2.5, "max", False)  # "2.5" coerced to the declared float
    assert r["batches"] == [4, 4, 2] and r["batch_size"] == 4 and r["model_device"] == "cpu"
    assert r["data_name"] == "probebars"  # the model's own training data
    out = r.to_dict()
    assert (out["task"], out["models"], out["data"]) == ("probe", ["probeae"], "probebars")
    assert out["options"] == {"k": 10, "scale": 2.5, "mode": "max", "flag": False}
    assert module.CALLS == [10]


def test_a_plugin_task_runs_through_the_cli_with_typed_options(probe, cli):
    module, ae, _ = probe
    result = cli("run", "probe", ae, "--k", 9, "--scale", 0.5, "--mode", "max", "--flag", "--device", "cpu",
                 "--batch-size", 7, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["k"], out["scale"], out["mode"], out["flag"]) == (9, 0.5, "max", True)
    assert out["batch_size"] == 7 and out["batches"] == [7, 2]  # --batch-size reached the task and its encoder
    assert out["device"] == out["model_device"] == "cpu"
    human = cli("run", "probe", ae, "--data", "probebars")
    assert human.exit_code == 0, human.output
    assert "probe of probeae" in human.stderr  # the default report: a table of the numbers
    assert re.search(r"│ k +│ 20 +│", human.stderr) and re.search(r"│ scale +│ 1 +│", human.stderr)
    assert module.CALLS == [9, 20]


@pytest.mark.parametrize("models, options, needles", [
    (0, {}, ["task 'probe' takes one model, got 0"]),
    (2, {}, ["takes one model, got 2"]),
    (1, {"nope": 1}, ["task 'probe' has no option 'nope'", "its options: k, scale, mode, flag"]),
    (1, {"k": "many"}, ["option 'k' takes int, got 'many'"]),
    (1, {"k": 2.5}, ["option 'k' takes int, got 2.5"]),
    (1, {"k": 0}, ["option 'k' must be at least 1"]),
    (1, {"mode": "median"}, ["option 'mode' must be one of mean, max"]),
    ("dec", {}, ["has no encoder (probe needs it)"]),
], ids=["no-model", "two-models", "unknown-option", "wrong-type", "float-for-int", "below-minimum", "not-a-choice",
        "missing-capability"])
def test_zoo_run_refuses_before_any_work(probe, models, options, needles):
    module, _, _ = probe
    args = [zoo.create_model("probedec", pretrained=False)] if models == "dec" else \
        [zoo.create_model("probeae", pretrained=False)] * models
    with pytest.raises(zoo.ZooError) as err:
        zoo.run("probe", *args, **options)
    assert "\n" not in str(err.value) and all(n in str(err.value) for n in needles), str(err.value)
    assert module.CALLS == []


@pytest.mark.parametrize("args, needles", [
    (["run", "probe"], ["Missing argument 'NAME'"]),
    (["run", "probe", "{ae}", "{ae}"], ["unexpected extra argument"]),
    (["run", "probe", "{ae}", "--nope", 1], ["No such option '--nope'"]),
    (["run", "probe", "{ae}", "--k", "many"], ["'many' is not a valid integer"]),
    (["run", "probe", "{ae}", "--k", 0], ["--k", "x>=1"]),
    (["run", "probe", "{ae}", "--mode", "median"], ["'median' is not one of 'mean', 'max'"]),
    (["run", "probe", "{dec}"], ["has no encoder (probe needs it)"]),
    (["run", "probe", "{ae}", "--data", "dsprites_typo"], ["unknown dataset 'dsprites_typo'"]),
    (["run", "probe", "{ae}", "--device", "cuda:7"], ["--device cuda:7"]),
    (["run", "no_such_task", "{ae}"], ["No such command 'no_such_task'"]),
    (["mig", "{dec}", "--data", "probebars"], ["has no encoder (mig needs it)"]),
    (["mig", "{ae}", "--data", "probenoise"], ["probenoise has no ground-truth factors"]),
    (["jacobian", "{dec}", "--n", 0], ["--n", "x>=1"]),
    (["scores", "{ae}", "--only", "mig_chen"], ["probeae has no Gaussian encoder (Chen's MIG needs it)"]),
    (["scores", "{ae}", "--only", "sap,irs"], ["unknown score 'irs'; choose from mig, mig_chen, beta_vae"]),
], ids=["no-model", "two-models", "unknown-option", "wrong-type", "below-minimum", "not-a-choice",
        "missing-capability", "unknown-data", "no-such-device", "unknown-task", "builtin-missing-capability",
        "builtin-needs-factors", "builtin-below-minimum", "builtin-asked-for-missing-capability",
        "builtin-unknown-score"])
def test_cli_refuses_in_one_line_before_any_work(probe, cli, args, needles, monkeypatch):
    import torch

    module, ae, dec = probe
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    one_error_line(cli(*(str(a).format(ae=ae, dec=dec) for a in args)), *needles)
    assert module.CALLS == []


def test_zoo_run_help_lists_every_task(probe, cli):
    result = cli("run", "--help")
    assert result.exit_code == 0
    listed = set(re.findall(r"^  (\w+)", result.stdout.split("Commands:")[1], re.MULTILINE))
    assert listed == set(zoo.registry.tasks.names())
    assert {"probe", "mig", "mig_chen", "scores", "ppl", "jacobian", "hz", "distances", "stats"} <= listed


def flags(help_text):
    return set(re.findall(r"^\s+(?:-h, )?(--[a-z][a-z-]*)", help_text.split("Options:")[1], re.MULTILINE))


# the flags of the hand-written commands these replaced, then those every generated command adds (and --data-arg
# where it reads data)
BEFORE = {"mig": {"--data", "--num-train", "--seed", "--out"},
          "scores": {"--data", "--only", "--quick", "--dci-mode", "--seed", "--out", "--overwrite"},
          "ppl": {"--space", "--sampling", "--n", "--epsilon", "--crop", "--seed", "--distance", "--distance-weights"},
          "jacobian": {"--n", "--seed", "--out"},
          "stats": {"--data", "--n", "--seed", "--distances"}}


@pytest.mark.parametrize("command", sorted(BEFORE))
def test_builtin_commands_keep_their_flags_and_are_their_tasks(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0, result.output
    added = {"--device", "--batch-size", "--json", "--help"} | ({"--data-arg"} if "--data" in BEFORE[command] else set())
    assert flags(result.stdout) == BEFORE[command] | added
    same = cli("run", command, "--help")
    assert same.stdout.replace(f"run {command}", command) == result.stdout


@pytest.mark.parametrize("command, option, minimum, default", [
    ("mig", "num_train", 100, 10000), ("ppl", "n", 10, 2000), ("jacobian", "n", 1, 64), ("stats", "n", 3, 1000),
])
def test_builtin_option_ranges(command, option, minimum, default):
    from zoo_cli.main import make_cli

    param = next(p for p in make_cli().commands[command].params if p.name == option)
    assert (param.type.min, param.default) == (minimum, default)


def test_builtin_command_and_zoo_run_give_the_same_numbers(cli):
    args = ["betavae.dsprites", "--num-train", 100, "--batch-size", 50, "--json"]
    direct, generic = cli("mig", *args), cli("run", "mig", *args)
    assert direct.exit_code == 0 and generic.exit_code == 0, direct.output + generic.output
    a, b = json.loads(direct.stdout), json.loads(generic.stdout)
    assert a == b and a["num_train"] == 100 and a["options"] == {"num_train": 100, "seed": 0, "out": None}
    again = zoo.run("mig", "betavae.dsprites", num_train=100, batch_size=7)  # the codes do not depend on the batch
    assert again["discrete_mig"] == a["discrete_mig"] and again["per_factor"] == a["per_factor"]
