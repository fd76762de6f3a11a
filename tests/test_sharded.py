"""Evaluation sharded over torchrun processes (zoo.distributed: PPL, the scores' encoding, the relocation fit and evaluation):
two ranks give one process's numbers, one JSON document and one report; each rank computes only its shard and gets every row back in order; the sharding helpers on
their own; a WORLD_SIZE without torchrun is one error line."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from zoo import distributed
from zoo.errors import ZooError

RUNS = {  # name: (zoo arguments, a line the report prints once on stderr, or None)
    "ppl": (["ppl", "vae.faces64", "--n", "40"], None),
    "mig": (["mig", "betavae.dsprites", "--num-train", "1000"], None),
    # the encoding-heavy scores share one code cache, whose new rows every rank encodes a shard of
    "scores": (["scores", "betavae.dsprites", "--quick", "--only", "mig,sap,modularity,unsupervised"], None),
    "relocate": (["relocate", "splitvae.faces64", "vae.faces64", "--n-test", "60", "--n-pool", "200", "--n-fit", "80",
                  "--fit", "random"], "relocation on faces64"),
    # the fit sharded too: the pool's codes, the support set's reconstruction gains, the targets and their refinement
    "relocate-support": (["relocate", "betavae.dsprites", "vae.dsprites", "--n-test", "60", "--n-pool", "150",
                          "--n-fit", "70", "--refine-targets", "3"], "relocation on dsprites"),
    "relocate-generated": (["relocate", "gan.faces64", "vae.faces64", "--n-test", "40", "--n-fit", "70", "--fit",
                            "generated"], "relocation on faces64"),
}


def _launch(cmd: list[str], cwd, processes: int = 1) -> subprocess.CompletedProcess:
    """``cmd`` in ``cwd`` (made here) on the CPU, one process or ``processes`` under torchrun; it must succeed."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", ZOO_DEVICE="cpu")
    if processes > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
               "--standalone", "--no-python", "--", *cmd]  # --: torchrun would take zoo's --n
    cwd.mkdir()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _zoo(args: list[str], cwd, processes: int = 1) -> subprocess.CompletedProcess:
    return _launch([shutil.which("zoo") or "zoo", *args], cwd, processes)


def _documents(text: str) -> list:
    """Every JSON document in ``text``, one after the other."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
    return docs


def _leaves(obj, path: str = "") -> dict:
    if isinstance(obj, dict):
        return {k: v for key, value in obj.items() for k, v in _leaves(value, f"{path}.{key}").items()}
    return {path: obj}


@pytest.mark.parametrize("name", RUNS)
def test_two_ranks_give_one_process_numbers(name, tmp_path):
    args, report = RUNS[name]
    one = _documents(_zoo([*args, "--json"], tmp_path / "one").stdout)
    two = _zoo([*args, "--json"], tmp_path / "two", processes=2)
    docs = _documents(two.stdout)
    assert len(one) == 1 and len(docs) == 1, two.stdout[-2000:]  # rank 1 prints nothing
    expected, got = _leaves(one[0]), _leaves(docs[0])
    assert got.keys() == expected.keys()
    numbers = {k for k, v in expected.items() if isinstance(v, float)}
    assert numbers, "the run must report numbers"
    assert {k: got[k] for k in numbers} == pytest.approx({k: expected[k] for k in numbers}, rel=1e-6)
    assert {k: got[k] for k in got.keys() - numbers} == {k: expected[k] for k in expected.keys() - numbers}
    if report is not None:
        assert two.stderr.count(report) == 1, two.stderr[-2000:]
    assert "Traceback" not in two.stderr


# Each rank records how many rows it computed and what it got back, in a file named after its rank ("one" alone).
RANK_SCRIPT = """
import json, os, torch, zoo
from zoo import distributed
from zoo.data import get_dataset
from zoo.metrics._sampling import CodeCache
from zoo.metrics.ppl import ppl_samples

computed, gather = [], distributed.gather_rows
def spy(values, device=None):
    computed.append(len(values))
    return gather(values, device)
distributed.gather_rows = spy

rows = distributed.gather_rows(torch.arange(10.0)[distributed.shard(10, 3)]).tolist()
empty = distributed.gather_rows(torch.arange(2.0)[distributed.shard(2, 2)]).tolist()  # rank 0 of 2 has no rows
values = ppl_samples(zoo.create_model("vae.faces64", device="cpu"), n=40, batch_size=32).tolist()
dsprites = get_dataset("dsprites")
factors = dsprites.sample_factors(50, 0)
beta = zoo.create_model("betavae.dsprites", device="cpu")
codes = CodeCache(beta, dsprites, batch_size=32)(factors).ravel().tolist()
from zoo.relocate.api import correspondence
pool = dsprites.images(list(range(0, 737280, 10000)))  # 74 images
fit = correspondence(beta, zoo.create_model("vae.dsprites", device="cpu"), "support", pool, 30, batch_size=32)
with open(f"rank{os.environ.get('RANK', '-one')}.json", "w") as f:
    json.dump({"rows": rows, "empty": empty, "computed": computed[2:], "ppl": values, "codes": codes,
               "fit": [t.ravel().tolist() for t in fit]}, f)
"""


def test_ranks_compute_their_shard_and_get_every_row_in_order(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    _launch([sys.executable, str(script)], tmp_path / "one")
    _launch([sys.executable, str(script)], tmp_path / "two", processes=2)
    one = json.loads((tmp_path / "one" / "rank-one.json").read_text())
    ranks = [json.loads((tmp_path / "two" / f"rank{r}.json").read_text()) for r in range(2)]
    # PPL's paths, 50 distinct grid points filled to two batches of 32, then the relocation fit's pool codes (74
    # images), reconstruction gains (10 latents) and target codes (30 images)
    assert one["computed"] == [40, 64, 74, 10, 30]
    # whole batches: rank 0 the first, rank 1 the rest
    assert [r["computed"] for r in ranks] == [[32, 32, 32, 5, 0], [8, 32, 42, 5, 30]]
    for r in ranks:
        assert r["rows"] == list(range(10)) and r["empty"] == [0.0, 1.0]
        assert r["ppl"] == pytest.approx(one["ppl"], rel=1e-6)  # every path's value, in path order
        assert r["codes"] == pytest.approx(one["codes"], rel=1e-6)  # every row's code, in row order
        assert [pytest.approx(t, rel=1e-6) for t in one["fit"]] == r["fit"]  # the same pairs and chosen images


@pytest.mark.parametrize("n, block, size", [
    pytest.param(40, 32, 2, id="fewer-rows-than-two-batches"),
    pytest.param(1000, 100, 3, id="uneven-groups"),
    pytest.param(60, 30, 4, id="more-ranks-than-blocks"),
    pytest.param(7, 1, 7, id="one-row-each"),
    pytest.param(0, 5, 2, id="nothing"),
])
def test_shards_are_whole_blocks_in_row_order(monkeypatch, n, block, size):
    slices = []
    for rank in range(size):
        monkeypatch.setenv("WORLD_SIZE", str(size))
        monkeypatch.setenv("RANK", str(rank))
        slices.append(distributed.shard(n, block))
    assert [i for s in slices for i in range(n)[s]] == list(range(n))  # every row once, in rank order
    assert all(s.start % block == 0 for s in slices)
    counts = [len(range(n)[s]) for s in slices]
    assert max(counts) - min(counts) <= block


def test_one_process_is_everything_and_gathers_nothing(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    values = torch.arange(5.0)
    assert distributed.world() == distributed.World(0, 1) and distributed.is_main()
    assert distributed.shard(5, 2) == slice(0, 5)
    assert distributed.gather_rows(values) is values
    assert distributed.rank_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("env, words", [
    pytest.param({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a whole number", id="not-a-number"),
    pytest.param({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 with WORLD_SIZE=2", id="rank-outside"),
])
def test_a_broken_environment_is_one_error(monkeypatch, env, words):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ZooError, match=words):
        distributed.world()


def test_world_size_without_torchrun_is_one_error_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASTER_")}
    env.update(WORLD_SIZE="2", RANK="0", OMP_NUM_THREADS="1", ZOO_DEVICE="cpu")
    out = subprocess.run([shutil.which("zoo") or "zoo", "ppl", "vae.faces64", "--n", "10"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    lines = [line for line in out.stderr.splitlines() if not line.startswith("warning: plugin")]
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: WORLD_SIZE=2 asks for 2 processes"), out.stderr
    assert "torchrun --nproc_per_node=2" in lines[0]
