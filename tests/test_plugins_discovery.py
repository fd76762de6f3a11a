"""Entry-point discovery for real: fake installed distributions on sys.path and a real `pip install`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo
import zoo.plugins
from zoo.testing import make_fake_dist
from zoo_cli.main import make_cli

ROOT = Path(__file__).resolve().parents[1]
BROKEN = "raise ImportError('this plugin is broken on purpose')\n"


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    root = make_fake_dist(tmp_path / "site", "zoo-broken", {"broken": "zoo_broken"}, {"zoo_broken.py": BROKEN})
    monkeypatch.syspath_prepend(str(root))
    zoo.plugins.reset()


def test_toy_plugin_is_discovered_with_its_distribution(toy_plugin):
    record = {r.name: r for r in zoo.list_plugins()}["toy"]
    assert record.distribution == "zoo-toy" and record.version == "0.1" and record.error is None
    assert record.hooks == ["zoo_register_datasets", "zoo_register_models"]
    assert "toyae.bars" in zoo.list_models()
    assert zoo.resolve_model("tae").plugin == "toy"


def test_broken_plugin_is_isolated_and_listed(broken_plugin, toy_plugin):
    records = {r.name: r for r in zoo.list_plugins()}
    assert "ImportError: this plugin is broken on purpose" in records["broken"].error
    assert "toyae.bars" in zoo.list_models()  # everything else still works
    result = CliRunner().invoke(make_cli(), ["plugins", "--json"])
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["broken"]["error"].startswith("ImportError") and rows["toy"]["registers"]


def test_strict_mode_reraises(broken_plugin, monkeypatch):
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "broken")
    zoo.plugins.reset()
    with pytest.raises(ImportError, match="broken on purpose"):
        zoo.list_plugins()


def test_load_and_disable_switches(toy_plugin, monkeypatch):
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "zoo-toy")  # a distribution name works as well as a plugin name
    zoo.plugins.reset()
    assert [r.name for r in zoo.list_plugins()] == ["toy"]
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "")
    zoo.plugins.reset()
    assert zoo.list_plugins() == []
    monkeypatch.delenv("ZOO_LOAD_PLUGINS")
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "toy")
    zoo.plugins.reset()
    assert "toy" not in {r.name for r in zoo.list_plugins()} and "toyae.bars" not in zoo.list_models()


def test_example_plugin_after_pip_install(tmp_path):
    """`pip install` the in-repo example into a fresh target folder and discover it through its entry point."""
    target = tmp_path / "target"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                    "--target", str(target), str(ROOT / "examples" / "zoo-plugin-example")],
                   check=True, capture_output=True)
    code = ("import json, zoo; r = {p.name: p for p in zoo.list_plugins()}['example'];"
            "print(json.dumps([r.distribution, r.error, zoo.list_models('linae*')]))")
    out = subprocess.run([sys.executable, "-c", code], env={**_env(), "PYTHONPATH": str(target)},
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["zoo-plugin-example", None, ["linae.dsprites"]]


def _env():
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
