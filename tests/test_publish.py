"""Publishing: `zoo ship` copies weights with a measured model card, `zoo push` uploads a folder zoo has loaded and
prints its pinned name (the Hub client is mocked; an unreachable Hub fails in one line), `zoo new-plugin` scaffolds a
package whose own tests pass as generated."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from test_safety_hub import blackhole

import zoo
import zoo.plugins
from zoo import hub
from zoo.image import written_by_zoo
from zoo.testing import make_fake_dist

COMMIT = "a" * 40
N = 64  # held-out images in these tests
TOY_ARGS = {"hidden": 16}
OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ZOO_OFFLINE")


@pytest.fixture
def cli():
    """The zoo command line in-process, with the publishing commands (until zoo_cli.commands lists them)."""
    from click.testing import CliRunner

    return lambda *args: CliRunner().invoke(_make_cli(), [str(a) for a in args])


def _make_cli():
    from zoo_cli import publish
    from zoo_cli.main import make_cli

    root = make_cli()
    for cmd in (publish.ship, publish.push, publish.new_plugin):
        if cmd.name not in root.commands:
            root.add_command(cmd)
    return root


# `zoo ...` in a fresh process (huggingface_hub reads HF_ENDPOINT when imported)
CLI_SCRIPT = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from test_publish import _make_cli; "
              f"_make_cli()(prog_name='zoo')")


def assert_one_error_line(result, *needles):
    """A click Result or a finished subprocess: non-zero exit, one `error:` line on stderr, no traceback."""
    code = getattr(result, "exit_code", getattr(result, "returncode", None))
    stderr = result.stderr
    assert code != 0, stderr
    assert "Traceback" not in stderr + result.stdout
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# --- ship -------------------------------------------------------------------------------------------------------


@pytest.fixture
def toy_runs(toy_plugin, tmp_path):
    """Two chained toy runs: the second starts from the first (`--init`); returns the second run's folder."""
    from zoo.train import train

    first, second = tmp_path / "run1", tmp_path / "run2"
    train("toyae", "toybars", steps=3, out=first, batch_size=8, model_args=TOY_ARGS, log_every=1)
    train("toyae", "toybars", steps=2, out=second, batch_size=8, model_args=TOY_ARGS, seed=1, log_every=1,
          init=f"local-dir:{first / 'weights'}")
    return second


def test_ship_writes_a_card_with_every_command_numbers_and_pictures(toy_runs, tmp_path, cli):
    out = tmp_path / "card"
    result = cli("ship", toy_runs / "weights", out, "--n", N)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"  # data on stdout: the folder, nothing else
    text = (out / "README.md").read_text()
    config = json.loads((out / "config.json").read_text())
    # provenance: both training commands, first run first, and the command that measured the card
    commands = [line for line in text.splitlines() if line.startswith("zoo train ")]
    assert len(commands) == 2 and "--init" not in commands[0] and f"--init local-dir:{tmp_path / 'run1'}" in commands[1]
    assert f"zoo ship {toy_runs / 'weights'} {out} --n {N}" in text
    assert "Final training losses" in text and '"hidden": 16' in text
    # the held-out numbers, as measured and recorded in config.json
    numbers = config["card"]["numbers"]
    mse = numbers[f"reconstruction MSE ({N} held-out images)"]
    assert 0 < mse < 1 and f"| reconstruction MSE ({N} held-out images) | {mse:.5g} |" in text
    assert config["card"]["seed"] >= 10_000 and config["card"]["n"] == N
    # pictures: written by zoo, listed in config.json, linked relative to the folder, and the links resolve
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert sorted(links) == sorted(config["card"]["files"]) == ["reconstructions.png", "samples.png"]
    for link in links:
        assert (out / link).is_file() and written_by_zoo(out / link)
    assert hub.owned_files(out) == {"config.json", "README.md", "model.safetensors", *links}
    # the weights are the run's, byte for byte, and load
    assert (out / "model.safetensors").read_bytes() == (toy_runs / "weights" / "model.safetensors").read_bytes()
    assert zoo.create_model(f"local-dir:{out}").arch == "toyae"


def test_ship_a_registered_model(tmp_path, cli):
    out = tmp_path / "card"
    result = cli("ship", "vae.dsprites", out, "--n", N, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["folder"] == str(out) and report["name"] == "vae.dsprites"
    assert report["numbers"] == json.loads((out / "config.json").read_text())["card"]["numbers"]
    assert report["numbers"][f"reconstruction MSE ({N} held-out images)"] < 0.02  # a trained model, not noise
    text = (out / "README.md").read_text()
    assert "zoo train vae --data dsprites" in text and "zoo ship vae.dsprites" in text
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "README.md", "samples.png",
                                              "reconstructions.png"}


def test_extras_and_tasks_join_the_card(toy_plugin, toy_runs, tmp_path, monkeypatch):
    """An architecture's own numbers (card_numbers), picture rows (card_rows) and registered tasks reach the card
    without ship knowing the architecture."""
    import zoo_toy_model

    from zoo.publish import ship

    seen = []

    def card_numbers(self, images):
        seen.append(images.shape)
        return {"mean pixel": images.mean()}  # a tensor scalar is a number too

    monkeypatch.setattr(zoo_toy_model.ToyAE, "card_numbers", card_numbers, raising=False)
    monkeypatch.setattr(zoo_toy_model.ToyAE, "card_rows", lambda self, x: {"inverted": 1 - x}, raising=False)
    # a task whose numbers are in a summary (as `zoo run scores`); the real one takes minutes at dlib's sizes
    monkeypatch.setattr("zoo.metrics.scores.scores_task",
                        lambda run, **options: {"model": "x", "summary": {"dci": 0.5, "sap": 0.25},
                                                "headline": {"dci": "disentanglement"}, "scores": {}})
    out = ship(toy_runs / "weights", tmp_path / "card", n=N, tasks=["mig", "scores"])
    numbers = json.loads((out / "config.json").read_text())["card"]["numbers"]
    assert seen == [(N, 1, 8, 8)]
    assert 0 < numbers["mean pixel"] < 1
    assert 0 <= numbers["discrete_mig (`zoo run mig`, default options)"] <= 1
    assert numbers["dci: disentanglement (`zoo run scores`, default options)"] == 0.5  # labelled by what it is
    assert numbers["sap (`zoo run scores`, default options)"] == 0.25
    assert "model (`zoo run scores`, default options)" not in numbers
    with Image.open(out / "reconstructions.png") as with_rows:
        height = with_rows.height
    monkeypatch.delattr(zoo_toy_model.ToyAE, "card_rows")
    plain = ship(toy_runs / "weights", tmp_path / "plain", n=N)
    with Image.open(plain / "reconstructions.png") as without:
        assert height > without.height * 1.4  # three rows instead of two


def test_pictures_and_notes_of_your_own_join_the_card(toy_plugin, toy_runs, tmp_path, cli):
    """`--picture PNG=CAPTION` (e.g. a training curve): copied with zoo's mark, captioned, listed, replaceable;
    `--notes FILE` ends the card."""
    curve = tmp_path / "loss_curve.png"
    Image.new("RGB", (40, 20), "white").save(curve)
    out = tmp_path / "card"
    notes = tmp_path / "notes.md"
    notes.write_text("The generator is still *weak*.\n")
    result = cli("ship", toy_runs / "weights", out, "--n", N, "--picture", f"{curve}=Loss against training steps",
                 "--notes", notes)
    assert result.exit_code == 0, result.output
    assert (out / "README.md").read_text().endswith("## Notes\n\nThe generator is still *weak*.\n")
    config = json.loads((out / "config.json").read_text())
    assert config["card"]["files"] == ["samples.png", "reconstructions.png", "loss_curve.png"]
    assert written_by_zoo(out / "loss_curve.png") and not written_by_zoo(curve)
    with Image.open(out / "loss_curve.png") as copied:
        assert copied.size == (40, 20)
    text = (out / "README.md").read_text()
    assert "Loss against training steps:\n\n![loss_curve](loss_curve.png)" in text
    assert f"--picture '{curve}=Loss against training steps'" in config["card"]["command"]
    assert "loss_curve.png" in hub.owned_files(out)  # so shipping again replaces it
    assert cli("ship", toy_runs / "weights", out, "--n", N).exit_code == 0
    assert not (out / "loss_curve.png").exists()
    jpeg = tmp_path / "curve.png"
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")
    for bad, says in [(jpeg, "is a JPEG, not a PNG"), (tmp_path / "none.png", "cannot be read as a PNG"),
                      (tmp_path / "samples.png", "whose name is not samples.png")]:
        result = cli("ship", toy_runs / "weights", tmp_path / "bad", "--n", N, "--picture", bad)
        assert result.exit_code != 0 and says in result.output and "Traceback" not in result.output
        assert not (tmp_path / "bad").exists()
    notes.write_bytes(b"\xff\xfe latin")
    for flags, says in [(["--picture", curve, "--notes", notes], "is not UTF-8 text")]:
        result = cli("ship", toy_runs / "weights", tmp_path / "bad", "--n", N, *flags)
        assert result.exit_code != 0 and says in result.output and "Traceback" not in result.output
        assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("dataset, flags, error", [
    pytest.param("toybars", [], None, id="records-its-data"),
    pytest.param(None, ["--data", "toybars"], None, id="data-named"),
    pytest.param(None, [], "pass --data NAME", id="data-unknown"),
])
def test_weights_without_a_training_record(dataset, flags, error, toy_plugin, tmp_path, cli):
    """Weights zoo did not train (converted, saved from Python) get a card that says so, on the data they name."""
    model = zoo.build_model("toyae", {**TOY_ARGS, "dataset": dataset})
    weights = zoo.save_pretrained(model, tmp_path / "saved", tag="raw")
    result = cli("ship", weights, tmp_path / "card", "--n", N, *flags)
    if error:
        assert_one_error_line(result, error)
        return
    assert result.exit_code == 0, result.output
    text = (tmp_path / "card" / "README.md").read_text()
    assert "record no `zoo train` command" in text and "zoo train" not in text.replace("`zoo train`", "")
    assert f"on {N} images of `toybars` drawn with seed 10000" in text


@pytest.mark.parametrize("method, value, needle", [
    pytest.param("card_numbers", lambda self, x: [1.0], "must return {name: number}", id="numbers-not-a-dict"),
    pytest.param("card_numbers", lambda self, x: {"score": "high"}, "not a number", id="number-not-a-number"),
    pytest.param("card_rows", lambda self, x: {"half": x[:4]}, "must be 8 images", id="row-of-wrong-length"),
])
def test_broken_extras_are_one_line_and_write_nothing(method, value, needle, toy_runs, tmp_path, cli, monkeypatch):
    import zoo_toy_model

    monkeypatch.setattr(zoo_toy_model.ToyAE, method, value, raising=False)
    out = tmp_path / "card"
    result = cli("ship", toy_runs / "weights", out, "--n", N)
    assert_one_error_line(result, f"toyae.{method}()", needle)
    assert not out.exists() and not list(tmp_path.glob(".card.*"))


def _user_file(out: Path) -> Path:
    out.mkdir()
    (out / "notes.txt").write_bytes(b"my notes\x00\xff")
    return out / "notes.txt"


def _earlier_card(out: Path, weights: Path) -> None:
    from zoo.publish import ship

    ship(weights, out, n=N)


def _user_png_named_like_a_picture(out: Path, weights: Path) -> Path:
    _earlier_card(out, weights)
    Image.new("L", (4, 4)).save(out / "samples.png")  # the user's own picture, without zoo's mark
    return out / "samples.png"


@pytest.mark.parametrize("case, flags, refused", [
    pytest.param("user file", [], True, id="user-file-refused"),
    pytest.param("user file", ["--overwrite"], False, id="user-file-kept-with-overwrite"),
    pytest.param("earlier card", [], False, id="earlier-card-replaced"),
    pytest.param("user png", [], True, id="user-png-refused"),
])
def test_ship_never_loses_a_users_file(case, flags, refused, toy_runs, tmp_path, cli):
    out, weights = tmp_path / "card", toy_runs / "weights"
    user = {"user file": lambda: _user_file(out), "earlier card": lambda: _earlier_card(out, weights),
            "user png": lambda: _user_png_named_like_a_picture(out, weights)}[case]()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = cli("ship", weights, out, "--n", N, *flags)
    if refused:
        assert_one_error_line(result, str(out), "--overwrite")
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing touched
        return
    assert result.exit_code == 0, result.output
    assert written_by_zoo(out / "samples.png") and (out / "README.md").is_file()
    if user is not None:
        assert user.read_bytes() == before[user.name]


@pytest.mark.parametrize("listed", [
    pytest.param(["notes.txt"], id="not-a-png"),
    pytest.param(["user.png"], id="png-zoo-did-not-write"),
    pytest.param(["../outside.png"], id="outside-the-folder"),
    pytest.param(["sub/inner.png"], id="in-a-subfolder"),
    pytest.param("user.png", id="not-a-list"),
])
def test_a_config_cannot_claim_a_users_file(listed, toy_plugin, tmp_path):
    from zoo.image import save_png

    folder = zoo.save_pretrained(zoo.build_model("toyae", TOY_ARGS), tmp_path / "weights")
    (folder / "notes.txt").write_text("mine")
    Image.new("L", (4, 4)).save(folder / "user.png")
    (folder / "sub").mkdir()
    save_png(Image.new("L", (4, 4)), folder / "sub" / "inner.png")
    save_png(Image.new("L", (4, 4)), tmp_path / "outside.png")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "card": {"files": listed}}))
    assert hub.owned_files(folder) == {"config.json", "README.md", "model.safetensors"}


@pytest.mark.parametrize("args, needle", [
    pytest.param(["local-dir:{tmp}/nowhere"], "does not exist", id="missing-folder"),
    pytest.param(["{tmp}/nowhere"], "does not exist", id="missing-plain-folder"),
    pytest.param(["vae.dsprites", "--seed", "3"], "seeds from 10,000", id="seed-below-held-out"),
    pytest.param(["vae.dsprites", "--task", "nosuchtask"], "nosuchtask", id="unknown-task"),
    pytest.param(["nosuchmodel"], "nosuchmodel", id="unknown-name"),
])
def test_bad_ship_input_is_one_line(args, needle, tmp_path, cli):
    args = [a.format(tmp=tmp_path) for a in args]
    result = cli("ship", args[0], tmp_path / "card", "--n", N, *args[1:])
    assert_one_error_line(result, needle)
    assert not (tmp_path / "card").exists()


# --- push -------------------------------------------------------------------------------------------------------


@pytest.fixture
def online(monkeypatch):
    for switch in OFFLINE_SWITCHES:
        monkeypatch.delenv(switch, raising=False)


@pytest.fixture
def fake_hub_api(monkeypatch, online):
    """huggingface_hub's HfApi with its repo, branch and upload calls recorded instead of sent."""
    from huggingface_hub import HfApi

    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))

    def create_branch(self, repo_id, **kwargs):
        calls.append(("create_branch", repo_id, kwargs))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        from huggingface_hub import constants

        folder = Path(folder_path)
        files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        # uploads go through the bounded HTTP client (LFS), not hf_xet
        calls.append(("upload_folder", repo_id, {**kwargs, "files": files, "xet": not constants.HF_HUB_DISABLE_XET}))
        return SimpleNamespace(oid=COMMIT)

    for name, fn in [("create_repo", create_repo), ("create_branch", create_branch),
                     ("upload_folder", upload_folder)]:
        monkeypatch.setattr(HfApi, name, fn)
    return calls


@pytest.fixture
def shipped(tmp_path):
    """A shipped card folder with a file of the user's in it (which must never be uploaded)."""
    from zoo.publish import ship

    out = ship("vae.dsprites", tmp_path / "card", n=N)
    (out / "notes.txt").write_text("private")
    return out


@pytest.mark.parametrize("flags, branch", [
    pytest.param([], None, id="main"),
    pytest.param(["--revision", "v1", "--private"], "v1", id="branch-private"),
])
def test_push_uploads_zoos_files_and_prints_the_pinned_name(flags, branch, shipped, fake_hub_api, cli):
    from huggingface_hub import constants

    xet_switch = constants.HF_HUB_DISABLE_XET
    result = cli("push", shipped, "me/vae.dsprites", *flags)
    assert result.exit_code == 0, result.output
    assert constants.HF_HUB_DISABLE_XET == xet_switch  # restored after the push
    assert result.stdout == f"hf-hub:me/vae.dsprites@{COMMIT}\n"
    names = [c[0] for c in fake_hub_api]
    assert names == ["create_repo", *(["create_branch"] if branch else []), "upload_folder"]
    assert fake_hub_api[0][2]["exist_ok"] is True and fake_hub_api[0][2]["private"] == (True if branch else None)
    upload = fake_hub_api[-1][2]
    assert upload["revision"] == branch and upload["xet"] is False
    assert set(upload["files"]) == {"config.json", "model.safetensors", "README.md", "samples.png",
                                    "reconstructions.png"}  # not the user's notes.txt
    for name, content in upload["files"].items():
        assert content == (shipped / name).read_bytes()


def test_push_json(shipped, fake_hub_api, cli):
    result = cli("push", f"local-dir:{shipped}", "me/vae.dsprites", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"name": f"hf-hub:me/vae.dsprites@{COMMIT}", "repo": "me/vae.dsprites",
                                         "branch": "main", "commit": COMMIT}


def _truncate_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])


@pytest.mark.parametrize("repo, flags, damage, env, needle", [
    pytest.param("me/vae", [], _truncate_weights, {}, "sha256", id="truncated-weights"),
    pytest.param("not-a-repo", [], None, {}, "malformed Hub", id="malformed-repo"),
    pytest.param("me/vae", ["--revision", COMMIT], None, {}, "not to a commit", id="commit-as-branch"),
    pytest.param("me/vae", ["--revision", "../x"], None, {}, "'..'", id="escaping-branch"),
    pytest.param("me/vae", [], None, {"HF_HUB_OFFLINE": "1"}, "offline mode is on", id="offline"),
])
def test_push_refuses_before_any_upload(repo, flags, damage, env, needle, shipped, fake_hub_api, cli, monkeypatch):
    if damage is not None:
        damage(shipped)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = cli("push", shipped, repo, *flags)
    assert_one_error_line(result, needle)
    assert fake_hub_api == []  # nothing was sent


def test_push_to_an_unreachable_hub_fails_in_one_line(tmp_path, online):
    env = {k: v for k, v in os.environ.items() if k not in (*OFFLINE_SWITCHES, "ZOO_HUB_TIMEOUT")}
    env |= {"HF_HOME": str(tmp_path), "HF_TOKEN": "hf_test_token", "ZOO_HUB_TIMEOUT": "1", "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1", "ZOO_NO_PROGRESS": "1"}
    with blackhole() as url:
        env["HF_ENDPOINT"] = url
        start = time.monotonic()
        result = subprocess.run([sys.executable, "-c", CLI_SCRIPT, "push", "vae.dsprites", "me/vae.dsprites"],
                                env=env, capture_output=True, text=True, timeout=120, check=False)
        seconds = time.monotonic() - start
    assert_one_error_line(result, "hf-hub:me/vae.dsprites", "did not answer within 1 s", "ZOO_HUB_TIMEOUT")
    assert seconds < 20, f"took {seconds:.1f} s"


# --- new-plugin -------------------------------------------------------------------------------------------------


def _install(package: Path, name: str, site: Path, monkeypatch) -> Path:
    """The generated package as an installed distribution (its entry point and module files) on ``site``."""
    files = {str(p.relative_to(package)): p for p in (package / f"zoo_{name}").rglob("*.py")}
    make_fake_dist(site, f"zoo-{name}", {name: f"zoo_{name}"}, files)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    zoo.plugins.reset()
    return site


def test_new_plugin_tests_pass_as_generated_and_it_trains_and_ships(tmp_path, cli, monkeypatch):
    name = "scaffoldvae"
    package = tmp_path / f"zoo-{name}"
    result = cli("new-plugin", name, "--out", package)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{package}\n"
    assert {str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()} == {
        "pyproject.toml", "README.md", f"zoo_{name}/__init__.py", f"zoo_{name}/model.py", f"tests/test_{name}.py"}
    pyproject = (package / "pyproject.toml").read_text()
    assert f'[project.entry-points.zoo]\n{name} = "zoo_{name}"' in pyproject and '"weights/**/*"' in pyproject
    readme = (package / "README.md").read_text()
    for command in ("pip install -e", f"zoo train {name} --data dsprites", "zoo ship", "zoo push"):
        assert command in readme
    _install(package, name, tmp_path / "site", monkeypatch)

    # its own tests, as generated, in a fresh interpreter
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=package,
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600,
                           check=False)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    passed = re.search(r"(\d+) passed", tests.stdout)
    assert passed and int(passed[1]) >= 10 and "skipped" not in tests.stdout and "failed" not in tests.stdout

    # and it is a zoo architecture like any other: train, ship
    run, card = tmp_path / "run", tmp_path / "card"
    result = cli("train", name, "--data", "dsprites", "--steps", 5, "--batch-size", 8, "--arg", "hidden=32",
                 "--out", run)
    assert result.exit_code == 0, result.output
    result = cli("ship", run / "weights", card, "--n", N)
    assert result.exit_code == 0, result.output
    numbers = json.loads((card / "config.json").read_text())["card"]["numbers"]
    assert f"reconstruction MSE ({N} held-out images)" in numbers
    assert "KL to the prior (nats per image)" in numbers  # the scaffold's card_numbers
    assert f"zoo train {name} --data dsprites --steps 5" in (card / "README.md").read_text()


def _non_empty(target: Path) -> None:
    target.mkdir()
    (target / "mine.py").write_text("print('mine')\n")


@pytest.mark.parametrize("name, prepare, needle", [
    pytest.param("My-VAE", None, "must be lower-case letters", id="bad-name"),
    pytest.param("vae", None, "already registered", id="registered-name"),
    pytest.param("freshvae", _non_empty, "already holds files zoo did not write", id="non-empty-target"),
])
def test_new_plugin_refusals_are_one_line(name, prepare, needle, tmp_path, cli):
    target = tmp_path / "target"
    if prepare is not None:
        prepare(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()} if target.exists() else None
    result = cli("new-plugin", name, "--out", target)
    assert_one_error_line(result, needle)
    assert ({p.name: p.read_bytes() for p in target.iterdir()} if target.exists() else None) == before
