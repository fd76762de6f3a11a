"""The training engine: weights + provenance, bit-for-bit resume after a kill, NaN guard, two-process training, the
TrainingRun object train() composes, the device and the progress lines of a log file."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

import zoo
from zoo.batching import default_device
from zoo.errors import TrainingError
from zoo.train import TrainConfig, TrainingRun, state_digest, train
from zoo_cli.main import make_cli

ARGS = dict(seed=3, batch_size=16, checkpoint_every=10)


def test_train_writes_weights_with_provenance(toy_plugin, tmp_path):
    model = train("toyae", "toybars", steps=30, out=tmp_path / "run", **ARGS)
    config = json.loads((tmp_path / "run" / "weights" / "config.json").read_text())
    prov = config["provenance"]
    assert prov["steps"] == 30 and prov["seed"] == 3 and prov["data"] == "toybars"
    assert set(prov["final_losses"]) == {"loss", "rec", "kl"} and prov["wall_time_s"] >= 0
    assert prov["command"].startswith("zoo train toyae --data toybars --steps 30 --seed 3")
    assert config["dataset"] == "toybars" and config["tag"] == "toybars"
    loaded = zoo.create_model(f"local-dir:{tmp_path / 'run' / 'weights'}")
    assert state_digest(loaded) == state_digest(model)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[0]["loss"] > history[-1]["loss"], "the toy model should learn"


def test_resume_is_bit_for_bit(toy_plugin, tmp_path):
    full = train("toyae", "toybars", steps=30, out=tmp_path / "a", **ARGS)
    train("toyae", "toybars", steps=30, out=tmp_path / "b", stop_after=20, **ARGS)
    assert json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["step"] == 20
    resumed = train("toyae", "toybars", steps=30, out=tmp_path / "b", resume=True, **ARGS)
    assert state_digest(full) == state_digest(resumed)
    with pytest.raises(TrainingError, match="different seed"):
        train("toyae", "toybars", steps=30, out=tmp_path / "b", resume=True, **{**ARGS, "seed": 4})
    with pytest.raises(TrainingError, match="already holds a run"):
        train("toyae", "toybars", steps=30, out=tmp_path / "b", **ARGS)


def test_resume_without_lr_keeps_the_lr_the_run_was_started_with(toy_plugin, tmp_path):
    args = {**ARGS, "lr": 0.003}
    full = train("toyae", "toybars", steps=30, out=tmp_path / "a", **args)
    train("toyae", "toybars", steps=30, out=tmp_path / "b", stop_after=20, **args)
    resumed = train("toyae", "toybars", steps=30, out=tmp_path / "b", resume=True, **ARGS)  # no --lr
    assert state_digest(full) == state_digest(resumed)
    prov = json.loads((tmp_path / "b" / "weights" / "config.json").read_text())["provenance"]
    assert prov["lr"] == 0.003 and "lr_changes" not in prov and "--lr 0.003" in prov["command"]


def test_a_training_run_stepped_by_hand_matches_train(toy_plugin, tmp_path):
    """TrainingRun's methods are what train() composes: step, checkpoint, resume in a new process, finish."""
    full = train("toyae", "toybars", steps=30, out=tmp_path / "a", **ARGS)
    config = TrainConfig("tae", "toybars", 30, seed=3, batch_size=16)  # an alias: the run names the architecture
    first = TrainingRun(config, tmp_path / "b")
    assert first.config.arch == "toyae" and first.config.model_args["dataset"] == "toybars"
    while first.done < 12:
        first.step()
    first.checkpoint()
    second = TrainingRun(config, tmp_path / "b")
    second.resume()
    assert second.done == 12
    while second.done < 30:
        second.step()
    assert second.record()["loss"] > 0
    assert state_digest(second.finish()) == state_digest(full)
    assert json.loads((tmp_path / "b" / "weights" / "config.json").read_text())["provenance"]["steps"] == 30


def test_the_cli_trains_on_the_default_device(toy_plugin, tmp_path, cli):
    assert cli("train", "toyae", "--data", "toybars", "--steps", "2", "--out", tmp_path / "r").exit_code == 0
    prov = json.loads((tmp_path / "r" / "weights" / "config.json").read_text())["provenance"]
    assert prov["device"] == default_device().type


# name → (extra arguments of `zoo train toyae --data toybars --steps 2`, words of the one error line)
CLI_REFUSALS = {
    "cuda-without-cuda": (["--device", "cuda"], ["--device cuda", "no CUDA device", "--device cpu"]),
    "wrong-channels": (["--arg", "channels=3"], ["3-channel", "toybars has 1", "--arg channels=1"]),
    "zero-batch": (["--batch-size", "0"], ["--batch-size"]),
}


@pytest.mark.parametrize("case", list(CLI_REFUSALS))
def test_the_cli_refuses_in_one_line(toy_plugin, tmp_path, cli, case):
    extra, words = CLI_REFUSALS[case]
    if case == "cuda-without-cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    line = error_line(cli("train", "toyae", "--data", "toybars", "--steps", "2", "--out", tmp_path / "r", *extra))
    for word in words:
        assert word in line, line
    assert not (tmp_path / "r" / "weights").exists()


def test_a_log_file_gets_a_progress_line_per_checkpoint(toy_plugin, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ZOO_NO_PROGRESS"}
    log = subprocess.run(_zoo("train", "toyae", "--data", "toybars", "--steps", "55", "--checkpoint-every", "25",
                              "--out", str(tmp_path / "r")), env=env, capture_output=True, text=True, check=True)
    lines = [line for line in log.stderr.splitlines() if "checkpoint saved" in line]
    assert [line.split()[1] for line in lines] == ["25/55", "50/55"], log.stderr
    assert all(" loss=" in line for line in lines)  # the mean of the last 25 steps (the log interval)


def _zoo(*args):
    return [shutil.which("zoo") or "zoo", *args]


def error_line(result) -> str:
    """The one `error:` line of a failed CLI call (warnings about other, broken plugins aside)."""
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_kill_and_resume_gives_the_same_weights(toy_plugin, tmp_path):
    cmd = ["train", "toyae", "--data", "toybars", "--steps", "3000", "--seed", "1", "--batch-size", "32",
           "--checkpoint-every", "100", "--arg", "hidden=64"]
    subprocess.run(_zoo(*cmd, "--out", str(tmp_path / "full")), check=True, capture_output=True)
    proc = subprocess.Popen(_zoo(*cmd, "--out", str(tmp_path / "killed")), stderr=subprocess.DEVNULL)
    state = tmp_path / "killed" / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = json.loads(state.read_text())["step"]
    assert 0 < step < 3000 and not (tmp_path / "killed" / "weights").exists(), "the run must be killed mid-way"
    subprocess.run(_zoo(*cmd, "--out", str(tmp_path / "killed"), "--resume"), check=True, capture_output=True)
    a = zoo.create_model(f"local-dir:{tmp_path / 'full' / 'weights'}")
    b = zoo.create_model(f"local-dir:{tmp_path / 'killed' / 'weights'}")
    assert state_digest(a) == state_digest(b)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(toy_plugin, tmp_path):
    result = CliRunner().invoke(make_cli(), ["train", "toyae", "--data", "toybars", "--steps", "30", "--out",
                                             str(tmp_path / "r"), "--checkpoint-every", "4", "--arg", "nan_at=10"])
    assert result.exit_code == 1
    line = error_line(result)
    assert "non-finite at step 10" in line and "checkpoint" in line
    state = json.loads((tmp_path / "r" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 8 and not (tmp_path / "r" / "weights").exists()


def test_two_processes_end_with_identical_weights(toy_plugin, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           "--no-python", *_zoo("train", "toyae", "--data", "toybars", "--steps", "20", "--batch-size", "8",
                                "--out", str(tmp_path / "ddp"))]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    prov = json.loads((tmp_path / "ddp" / "weights" / "config.json").read_text())["provenance"]
    assert prov["world_size"] == 2 and len(prov["rank_state_sha256"]) == 2
    assert prov["rank_state_sha256"][0] == prov["rank_state_sha256"][1]
    assert prov["command"].startswith("torchrun --nproc_per_node=2 --no-python zoo train toyae")


def test_init_fine_tunes_from_weights_and_only_the_recoder_learns_in_its_phase(tmp_path):
    """`--init` starts from saved weights; StyleGAN's `train_parts="recoder"` phase leaves the generator untouched."""
    import torch

    args = {"z_dim": 8, "w_dim": 8, "resolution": 16, "channel_base": 64, "channel_max": 16, "recoder_width": 8}
    base = train("stylegan", "faces64", steps=2, out=tmp_path / "base", batch_size=4, model_args=args)
    tuned = train("stylegan", "faces64", steps=3, out=tmp_path / "tuned", batch_size=4,
                  model_args={**args, "train_parts": "recoder", "recoder_pixel_weight": 5.0},
                  init=f"local-dir:{tmp_path / 'base' / 'weights'}")
    for k, v in base.generator.state_dict().items():
        assert torch.equal(v, tuned.generator.state_dict()[k]), k
    assert any(not torch.equal(v, tuned.recoder.state_dict()[k]) for k, v in base.recoder.state_dict().items())
    config = json.loads((tmp_path / "tuned" / "weights" / "config.json").read_text())
    assert "--init local-dir:" in config["provenance"]["command"]
    base_config = json.loads((tmp_path / "base" / "weights" / "config.json").read_text())
    assert config["provenance"]["init"] == {"weights": f"local-dir:{tmp_path / 'base' / 'weights'}",
                                            "provenance": base_config["provenance"]}  # the lineage is kept
    with pytest.raises(zoo.ZooError, match="is a 'stylegan' model; this run trains 'vae'"):
        train("vae", "faces64", steps=1, out=tmp_path / "bad", init=f"local-dir:{tmp_path / 'base' / 'weights'}")


def test_a_resumed_run_may_end_earlier_or_later_than_first_planned(toy_plugin, tmp_path):
    """Draws are seeded per step, so a 30-step run ended at 20 equals a 20-step run, and extended again equals 30."""
    short = train("toyae", "toybars", steps=20, out=tmp_path / "short", **ARGS)
    full = train("toyae", "toybars", steps=30, out=tmp_path / "full", **ARGS)
    train("toyae", "toybars", steps=30, out=tmp_path / "b", stop_after=20, **ARGS)
    with pytest.raises(TrainingError, match="it is at step 20; pass --steps 20 or more"):
        train("toyae", "toybars", steps=19, out=tmp_path / "b", resume=True, **ARGS)
    ended = train("toyae", "toybars", steps=20, out=tmp_path / "b", resume=True, **ARGS)
    assert state_digest(ended) == state_digest(short)
    prov = json.loads((tmp_path / "b" / "weights" / "config.json").read_text())["provenance"]
    assert prov["steps"] == 20 and "--steps 20" in prov["command"]
    extended = train("toyae", "toybars", steps=30, out=tmp_path / "b", resume=True, **ARGS)
    assert state_digest(extended) == state_digest(full)


def test_a_run_that_fails_at_once_leaves_no_folder_behind(cli, tmp_path):
    result = cli("train", "nosucharch", "--data", "dsprites", "--steps", 5, "--out", tmp_path / "new")
    assert result.exit_code != 0 and "unknown model 'nosucharch'" in result.output
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert cli("train", "nosucharch", "--data", "dsprites", "--steps", 5, "--out", tmp_path / "mine").exit_code != 0
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
