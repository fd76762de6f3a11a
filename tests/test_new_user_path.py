"""The README's own-data path, command for command, on a folder of images the test writes (with smaller sizes, and
the Hub client mocked for `zoo push`): each command must finish with a readable result."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest

README = Path(__file__).parents[1] / "README.md"
COMMIT = "c" * 40
# the README's sizes are for real folders; these keep the test to seconds
SMALLER = {"--steps 3000": "--steps 30", "weights cards/myvae\n": "weights cards/myvae --n 64\n",
           "--data folder:my_faces\n": "--data folder:my_faces --n-pool 100 --n-test 40 --n-fit 40\n"}


def readme_commands() -> list[list[str]]:
    text = README.read_text()
    block = re.search(r"<!-- new-user-path[^>]*-->\s*```bash\n(.*?)```", text, re.S).group(1)
    for old, new in SMALLER.items():
        block = block.replace(old, new)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


@pytest.fixture
def my_faces(tmp_path, monkeypatch):
    """150 face pictures as PNG files in nested folders, as a user would have them."""
    from zoo.data import get_dataset
    from zoo.image import to_pil

    images, _ = get_dataset("faces64").sample(150, 123)
    for i, x in enumerate(images):
        folder = tmp_path / "my_faces" / f"batch{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        to_pil(x).save(folder / f"face{i:03d}.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def hub_recorder(monkeypatch):
    from huggingface_hub import HfApi

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)
    uploads = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: None)
    monkeypatch.setattr(HfApi, "create_branch", lambda self, repo_id, **kw: None)

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        uploads.append((repo_id, sorted(p.name for p in Path(folder_path).rglob("*") if p.is_file())))
        return SimpleNamespace(oid=COMMIT)

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return uploads


@pytest.mark.slow
def test_the_readme_path_from_an_image_folder_to_a_published_model(my_faces, hub_recorder, cli):
    commands = readme_commands()
    assert 4 <= len(commands) <= 10 and all(c[0] == "zoo" for c in commands)
    outputs = {}
    for command in commands:
        result = cli(*command[1:])
        assert result.exit_code == 0, f"{shlex.join(command)}\n{result.output}"
        assert "Traceback" not in result.output
        outputs[command[1]] = result
    assert (my_faces / "my_faces.png").is_file()
    assert (my_faces / "runs" / "myvae" / "weights" / "config.json").is_file()
    card = (my_faces / "cards" / "myvae" / "README.md").read_text()
    assert "zoo train vae --data folder:my_faces" in card and "reconstruction" in card.lower()
    assert "M-MSE" in outputs["relocate"].stderr
    assert outputs["push"].stdout.strip() == f"hf-hub:ORG/myvae@{COMMIT}"
    assert hub_recorder and "config.json" in hub_recorder[0][1]
