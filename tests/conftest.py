from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import zoo.plugins
from zoo.testing import make_fake_dist

TOY = Path(__file__).parent / "toy"
os.environ.setdefault("ZOO_NO_PROGRESS", "1")
# One intra-op thread: the tests' models are tiny, and a second thread competing with any other process for two cores
# slows torch down by orders of magnitude (spin-waiting).
torch.set_num_threads(int(os.environ.get("ZOO_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _fresh_plugins():
    """Every test starts and ends with a freshly built plugin manager and registry."""
    zoo.plugins.reset()
    yield
    zoo.plugins.reset()


@pytest.fixture
def toy_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Installs the ``zoo-toy`` test plugin (a tiny autoencoder ``toyae`` and dataset ``toybars``) as a fake
    distribution on sys.path; returns its folder (put it on PYTHONPATH for subprocesses)."""
    root = make_fake_dist(tmp_path / "site", "zoo-toy", {"toy": "zoo_toy"},
                          {"zoo_toy.py": TOY / "zoo_toy.py", "zoo_toy_model.py": TOY / "zoo_toy_model.py"})
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    zoo.plugins.reset()
    return root


@pytest.fixture
def cli():
    """``cli("list", "--json")`` runs the zoo command line in-process and returns click's Result."""
    from click.testing import CliRunner

    from zoo_cli.main import make_cli

    return lambda *args: CliRunner().invoke(make_cli(), [str(a) for a in args])
