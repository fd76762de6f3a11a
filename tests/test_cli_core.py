"""The core commands: data on stdout, one clear line and a non-zero exit on bad input, no torch for listings."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import zoo
from zoo_cli.main import make_cli


def run(*args):
    return CliRunner().invoke(make_cli(), list(args))


def assert_one_line_error(result, *needles):
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for n in needles:
        assert n in lines[0]


def test_list_json_and_no_weights(toy_plugin):
    result = run("list", "toy*", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [(r["name"], r["weights"], r["plugin"]) for r in rows] == [("toyae.bars", "no weights", "toy (zoo-toy 0.1)")]
    human = run("list", "toy*")
    assert "no weights" in human.stdout


def test_info_of_untrained_and_saved_model(toy_plugin, tmp_path):
    result = run("info", "tae", "--json")
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert out["arch"] == "toyae" and out["capabilities"] == ["decode", "encode", "encode_dist", "sample", "train"]
    assert out["weights"].startswith("no weights")
    folder = zoo.save_pretrained(zoo.create_model("toyae", pretrained=False), tmp_path / "w", provenance={"k": 1})
    out = json.loads(run("info", f"local-dir:{folder}", "--json").stdout)
    assert out["provenance"] == {"k": 1} and out["latent"]["shape"] == [3]


@pytest.mark.parametrize("args, needle", [
    (["info", "toyea"], "did you mean 'toyae'"),
    (["info", "hf-hub:not a repo"], "malformed Hub reference"),
    (["info", "local-dir:/no/such/folder"], "does not exist"),
    (["pull", "hf-hub:zoo-models/absent@" + "0" * 40], "no network"),
    (["train", "toyae", "--data", "toybars", "--steps", "2", "--out", "x", "--arg", "oops"], "KEY=VALUE"),
])
def test_bad_input_is_one_line(toy_plugin, args, needle, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert_one_line_error(run(*args), needle)


def test_listing_does_not_import_torch(toy_plugin):
    code = ("import sys; from zoo_cli.main import make_cli; cli = make_cli();"
            "[cli.main([c, '--json'], standalone_mode=False) for c in ('list', 'plugins')];"
            "print('torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().endswith("False")
    json.loads(out.stdout.split("]\n")[0] + "]")


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and zoo.__version__ in result.stdout


def test_the_default_vae_is_the_one_the_readme_names(cli):
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    named = re.search(r"`(vae\.\w+)` \(default `vae`\)", readme).group(1)
    assert zoo.create_model("vae").zoo_name == named
    assert f"name: {named}" in cli("info", "vae").output.replace("  ", " ").replace("  ", " ")
