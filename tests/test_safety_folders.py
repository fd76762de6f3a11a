"""Nothing lost: no command deletes or overwrites a user's files; folder writes are atomic for readers, writers and
crashes; a second writer of a run folder is refused; written weights are readable by colleagues (umask)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import zoo
from zoo.errors import ZooError
from zoo.train import state_digest

TRAIN = ["train", "toyae", "--data", "toybars", "--seed", "1", "--batch-size", "8"]


def zoo_cmd(*args: str) -> list[str]:
    return [shutil.which("zoo") or "zoo", *map(str, args)]


def user_files(folder: Path) -> dict[str, bytes]:
    """A user's folder with a file and a file in a sub-folder; returns their contents."""
    files = {"thesis.tex": b"\\documentclass{article} my thesis", "sub/results.csv": b"a,b\n1,2\n"}
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return files


def assert_intact(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (folder / rel).read_bytes() == data, f"{rel} was changed or deleted"


def no_leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]


def log_env() -> dict[str, str]:
    """The environment of a command whose stderr is a log: its plain progress lines on (the tests silence them), one
    thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("ZOO_NO_PROGRESS", None)
    return env


def one_error_line(result) -> str:
    text = result.stderr if hasattr(result, "stderr") else result.output
    assert result.exit_code != 0 if hasattr(result, "exit_code") else result.returncode != 0
    assert "Traceback" not in text, text
    lines = [line for line in text.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    return lines[0]


@pytest.fixture
def toy(toy_plugin):
    return zoo.create_model("toyae", pretrained=False, seed=3)


# --- writing into a user's folder ------------------------------------------------------------------------------
WRITERS = {
    "save_pretrained": lambda model, d, ow: zoo.save_pretrained(model, d, overwrite=ow),
    "save_map": lambda model, d, ow: __import__("zoo.relocate.maps", fromlist=["x"]).save_map(
        __import__("zoo.relocate.maps", fromlist=["x"]).LatentMap(3, 2), d, overwrite=ow),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_folder_with_user_files_is_refused_then_kept_with_overwrite(toy, tmp_path, writer):
    mydir = tmp_path / "mydir"
    files = user_files(mydir)
    with pytest.raises(ZooError, match="--overwrite") as err:
        WRITERS[writer](toy, mydir, False)
    assert "\n" not in str(err.value) and "thesis.tex" in str(err.value) or "results.csv" in str(err.value)
    assert_intact(mydir, files)
    WRITERS[writer](toy, mydir, True)  # replaces zoo's files, carries the user's over
    assert_intact(mydir, files)
    assert (mydir / "config.json").is_file() and no_leftovers(tmp_path) == []


def test_an_earlier_artefact_of_the_same_kind_is_replaced_without_overwrite(toy, tmp_path):
    zoo.save_pretrained(toy, tmp_path / "w", tag="one", card="# one")
    zoo.save_pretrained(toy, tmp_path / "w", tag="two")
    config = json.loads((tmp_path / "w" / "config.json").read_text())
    assert config["tag"] == "two" and not (tmp_path / "w" / "README.md").exists()  # the old card went with it
    (tmp_path / "w" / "notes.txt").write_text("mine")  # now it holds a user file: refused again
    with pytest.raises(ZooError, match="notes.txt"):
        zoo.save_pretrained(toy, tmp_path / "w", tag="three")


def test_a_file_in_the_way_is_refused(toy, tmp_path):
    (tmp_path / "w").write_text("not a folder")
    with pytest.raises(ZooError, match="not a folder"):
        zoo.save_pretrained(toy, tmp_path / "w")
    assert (tmp_path / "w").read_text() == "not a folder"


def test_written_weights_follow_the_umask(toy, tmp_path):
    old = os.umask(0o022)
    try:
        folder = zoo.save_pretrained(toy, tmp_path / "w")
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert (folder / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_convert_cli_keeps_user_files(toy_plugin, tmp_path, cli):
    from test_convert import tiny_stylegan, write_nvlabs_pickle

    pkl = tmp_path / "net.pkl"
    write_nvlabs_pickle(pkl, tiny_stylegan().generator, marker="x")
    mydir = tmp_path / "mydir"
    files = user_files(mydir)
    line = one_error_line(cli("convert", "stylegan2", pkl, mydir))
    assert "--overwrite" in line
    assert_intact(mydir, files)
    assert cli("convert", "stylegan2", pkl, mydir, "--overwrite").exit_code == 0
    assert_intact(mydir, files)
    assert zoo.create_model(f"local-dir:{mydir}").arch == "stylegan"


def test_convert_of_a_bad_file_creates_nothing(tmp_path, cli):
    bad = tmp_path / "net.pkl"
    bad.write_bytes(b"not a pickle")
    one_error_line(cli("convert", "stylegan2", bad, tmp_path / "out"))
    assert not (tmp_path / "out").exists() and no_leftovers(tmp_path) == []


# --- training runs ----------------------------------------------------------------------------------------------
def test_train_refuses_an_earlier_run_and_user_files(toy_plugin, tmp_path, cli):
    out = tmp_path / "run"
    # steps <= checkpoint interval: the earlier run leaves weights but no checkpoint
    assert cli(*TRAIN, "--steps", "4", "--out", out).exit_code == 0
    before = (out / "weights" / "model.safetensors").read_bytes()
    line = one_error_line(cli(*TRAIN, "--steps", "4", "--seed", "2", "--out", out))
    assert "--resume" in line and "--overwrite" in line
    assert (out / "weights" / "model.safetensors").read_bytes() == before
    line = one_error_line(cli(*TRAIN, "--steps", "4", "--out", out, "--resume"))
    assert "nothing to resume" in line and "finished" in line
    assert cli(*TRAIN, "--steps", "4", "--seed", "2", "--out", out, "--overwrite").exit_code == 0
    assert (out / "weights" / "model.safetensors").read_bytes() != before

    mydir = tmp_path / "mydir"
    files = user_files(mydir)
    assert "--overwrite" in one_error_line(cli(*TRAIN, "--steps", "4", "--out", mydir))
    assert_intact(mydir, files)
    assert not (mydir / ".zoo.lock").exists()
    assert cli(*TRAIN, "--steps", "4", "--out", mydir, "--overwrite").exit_code == 0
    assert_intact(mydir, files)


def test_a_second_writer_of_a_run_folder_is_refused(toy_plugin, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(zoo_cmd(*TRAIN, "--steps", "100000", "--checkpoint-every", "50", "--out", out),
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoint").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        second = subprocess.run(zoo_cmd(*TRAIN, "--steps", "100000", "--out", out, "--resume"), capture_output=True,
                                text=True, timeout=120, check=False)
        assert second.returncode != 0 and "Traceback" not in second.stderr
        assert "in use by a training run" in second.stderr and str(first.pid) in second.stderr
    finally:
        first.kill()
        first.wait()


def test_nan_advice_names_only_a_checkpoint_that_exists(toy_plugin, tmp_path, cli):
    line = one_error_line(cli(*TRAIN, "--steps", "30", "--checkpoint-every", "20", "--arg", "nan_at=3",
                              "--out", tmp_path / "r"))
    assert "No checkpoint was written yet" in line and "lower --lr" in line
    line = one_error_line(cli(*TRAIN, "--steps", "30", "--checkpoint-every", "4", "--arg", "nan_at=10",
                              "--out", tmp_path / "s"))
    assert "(step 8)" in line and "--resume" in line


def test_resume_with_a_lower_lr_is_allowed_and_recorded(toy_plugin, tmp_path, cli):
    out = tmp_path / "r"
    assert cli(*TRAIN, "--steps", "12", "--checkpoint-every", "4", "--out", out, "--arg", "nan_at=6").exit_code
    # the NaN run stopped at step 6 with a checkpoint at 4; a fixed model cannot resume it (other --arg), so
    # resume the healthy part of a run with the same arguments instead:
    out = tmp_path / "healthy"
    from zoo.train import train

    train("toyae", "toybars", steps=12, out=out, seed=1, batch_size=8, checkpoint_every=4, stop_after=4)
    assert cli(*TRAIN, "--steps", "12", "--checkpoint-every", "4", "--out", out, "--resume", "--lr", "0.001"
               ).exit_code == 0
    prov = json.loads((out / "weights" / "config.json").read_text())["provenance"]
    assert prov["lr_changes"] == [{"step": 4, "lr": 0.001}]


def test_a_damaged_checkpoint_is_one_line(toy_plugin, tmp_path, cli):
    from zoo.train import train

    out = tmp_path / "r"
    train("toyae", "toybars", steps=12, out=out, seed=1, batch_size=8, checkpoint_every=4, stop_after=4)
    (out / "checkpoint" / "model.safetensors").write_bytes(b"garbage")
    assert "damaged" in one_error_line(cli(*TRAIN, "--steps", "12", "--checkpoint-every", "4", "--out", out,
                                           "--resume"))
    (out / "checkpoint" / "state.json").write_text("{not json")
    assert "damaged" in one_error_line(cli(*TRAIN, "--steps", "12", "--checkpoint-every", "4", "--out", out,
                                           "--resume"))


# --- atomicity: kills, concurrent readers and writers -----------------------------------------------------------
@pytest.mark.slow
def test_twenty_kills_during_checkpointing_always_resume(toy_plugin, tmp_path):
    """Kill -9 at random instants of a run that checkpoints every step; each time the run must resume from a
    complete checkpoint, and the end result must equal an uninterrupted run's, with no temporary folder left."""
    cmd = [*TRAIN, "--steps", "600", "--checkpoint-every", "1"]  # 20 kills end far before 600 steps
    env = log_env()
    subprocess.run(zoo_cmd(*cmd, "--out", tmp_path / "full"), check=True, capture_output=True, env=env)
    out, rng, steps_seen = tmp_path / "killed", random.Random(0), []
    for _ in range(20):
        resume = ["--resume"] if (out / "checkpoint").exists() else []
        proc = subprocess.Popen(zoo_cmd(*cmd, "--out", out, *resume), stderr=subprocess.PIPE, text=True, env=env)
        for line in proc.stderr:  # a log file gets a line per checkpoint: kill once checkpointing is under way
            if "checkpoint saved" in line:
                break
        time.sleep(rng.uniform(0, 0.05))  # a few checkpoints: a fast machine must not reach the end first
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL, "the run ended before the kill"
        assert (out / "checkpoint" / "state.json").is_file(), "a kill left no complete checkpoint"
        steps_seen.append(json.loads((out / "checkpoint" / "state.json").read_text())["step"])
    assert steps_seen == sorted(steps_seen) and steps_seen[-1] < 600, steps_seen
    subprocess.run(zoo_cmd(*cmd, "--out", out, "--resume"), check=True, capture_output=True, env=env)
    a = zoo.create_model(f"local-dir:{tmp_path / 'full' / 'weights'}")
    b = zoo.create_model(f"local-dir:{out / 'weights'}")
    assert state_digest(a) == state_digest(b)
    assert no_leftovers(tmp_path) == []


def test_sigterm_during_checkpointing_leaves_no_temporary_folder(toy_plugin, tmp_path):
    """`kill` (SIGTERM, a scheduler's time limit) unwinds the command: exit 143, the temporary checkpoint folder of
    the write under way is removed rather than left for the next writer, and the run resumes."""
    cmd = [*TRAIN, "--steps", "400", "--checkpoint-every", "1", "--out", tmp_path / "run"]
    env = log_env()
    rng = random.Random(1)
    for _ in range(3):
        resume = ["--resume"] if (tmp_path / "run" / "checkpoint").exists() else []
        proc = subprocess.Popen(zoo_cmd(*cmd, *resume), stderr=subprocess.PIPE, text=True, env=env)
        for line in proc.stderr:
            if "checkpoint saved" in line:
                break
        time.sleep(rng.uniform(0, 0.1))
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait() == 128 + signal.SIGTERM, rest
        assert "Traceback" not in rest, rest
        assert no_leftovers(tmp_path) == []
    subprocess.run(zoo_cmd(*cmd, "--resume"), check=True, capture_output=True, env=env)
    assert (tmp_path / "run" / "weights" / "config.json").is_file()


def test_an_exit_during_cleanup_still_removes_the_whole_temporary_folder(tmp_path, monkeypatch):
    """SIGTERM's exit may land while a temporary folder is being removed: the removal finishes, then the exit goes on."""
    from zoo import _util

    tmp = tmp_path / ".w.tmp-1-x"
    (tmp / "sub").mkdir(parents=True)
    (tmp / "sub" / "model.safetensors").write_bytes(b"x")
    real_rmtree, calls = shutil.rmtree, []

    def exit_half_way(path, **kwargs):
        calls.append(path)
        if len(calls) == 1:
            (Path(path) / "sub" / "model.safetensors").unlink()
            raise SystemExit(143)
        real_rmtree(path, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", exit_half_way)
    with pytest.raises(SystemExit):
        _util._remove_tree(tmp)
    assert len(calls) == 2 and not tmp.exists()


WRITER = """
import sys, torch, zoo
folder, rounds, offset = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = zoo.create_model("toyae", pretrained=False)
for i in range(rounds):
    v = float(offset + i)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(v)
    zoo.save_pretrained(model, folder, provenance={"version": v})
"""


def _writer(folder: Path, rounds: int, offset: int) -> subprocess.Popen:
    # the toy plugin reaches the subprocess through PYTHONPATH (the toy_plugin fixture sets it)
    return subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(rounds), str(offset)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_concurrent_reader_never_sees_a_mixed_folder(toy_plugin, toy, tmp_path):
    folder = tmp_path / "w"
    zoo.save_pretrained(toy, folder)
    writer = _writer(folder, 400, 1)
    loads, errors = 0, []
    while writer.poll() is None:
        try:
            m = zoo.create_model(f"local-dir:{folder}")
        except Exception as exc:  # noqa: BLE001 - counted: every load must succeed
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        version = m.weights_config["provenance"].get("version")
        if version is not None:  # the first folder was the untouched toy model
            values = {float(p.detach().flatten()[0]) for p in m.parameters()}
            assert values == {version}, f"config of version {version}, tensors of {values}"
        loads += 1
    assert writer.returncode == 0, writer.stderr.read()[-2000:]
    assert loads > 50 and errors == [], (loads, errors[:3])
    assert no_leftovers(tmp_path) == []


@pytest.mark.slow
def test_two_writers_of_one_folder_both_finish(toy_plugin, tmp_path):
    folder = tmp_path / "w"
    writers = [_writer(folder, 300, 1000 * k) for k in (1, 2)]
    for w in writers:
        w.wait(timeout=600)
        assert w.returncode == 0, w.stderr.read()[-2000:]
    assert zoo.create_model(f"local-dir:{folder}").weights_config["provenance"]["version"] in (1299.0, 2299.0)
    assert no_leftovers(tmp_path) == []


def test_reader_retries_a_folder_swapped_under_it(toy, tmp_path, monkeypatch):
    """Deterministic version of the race: the folder is replaced between reading config.json and the weights."""
    from zoo import hub

    folder = tmp_path / "w"
    zoo.save_pretrained(toy, folder, provenance={"version": 1})
    with torch.no_grad():
        for p in toy.parameters():
            p.add_(1)
    real, swapped = hub.load_state_dicts, []

    def load_and_swap(*args, **kwargs):
        if not swapped:
            swapped.append(True)
            zoo.save_pretrained(toy, folder, provenance={"version": 2})
        return real(*args, **kwargs)

    monkeypatch.setattr(hub, "load_state_dicts", load_and_swap)
    config, sds = hub.read_weights(folder)
    m = zoo.create_model("toyae", pretrained=False)
    hub.load_into(m, sds, "test")
    # the first read found the old folder emptied by the writer, saw the swap and read the new one whole
    assert swapped and config["provenance"]["version"] == 2 and state_digest(m) == state_digest(toy)
