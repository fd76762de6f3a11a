"""The training engine: weights + provenance, bit-for-bit resume after a kill, NaN guard, two-process training."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

import zoo
from zoo.errors import TrainingError
from zoo.train import state_digest, train
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


def _zoo(*args):
    return [shutil.which("zoo") or "zoo", *args]


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
    line = result.stderr.strip()
    assert "\n" not in line and "non-finite at step 10" in line and "checkpoint" in line
    state = json.loads((tmp_path / "r" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 8 and not (tmp_path / "r" / "weights").exists()


def test_two_processes_end_with_identical_weights(toy_plugin, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
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
