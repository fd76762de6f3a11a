"""One bad plugin never breaks zoo: it is listed as broken with a one-line error, the built-ins keep working.

Each bad plugin is installed as a fake distribution next to the good ``zoo-toy`` plugin; ``zoo info`` loads the
weights it describes, so corrupt weights are an error and not an untrained model."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from zoo_cli import main as zoo_main

import zoo
import zoo.plugins
from zoo.testing import make_fake_dist

BUILTIN_MODELS = ("vae.dsprites", "splitvae.faces64")
HEADER = "import click\nimport zoo\n\n"
MODELS_HOOK = "@zoo.hookimpl\ndef zoo_register_models(register):\n"
COMMANDS_HOOK = "@zoo.hookimpl\ndef zoo_register_commands(cli):\n"


def models_plugin(*archs: str) -> str:
    return HEADER + MODELS_HOOK + "".join(f"    register(zoo.ModelSpec(arch={a!r}, factory='x:y'))\n" for a in archs)


# name → ({entry-point name: module source}, plugins that must be broken, words their error must hold)
BAD_PLUGINS = {
    # `mine` is lost too: a plugin's registrations through one hook stand or fall together
    "clash-with-builtin": ({"clash": models_plugin("mine", "vae")}, {"clash"},
                           ["'vae'", "built-in plugin 'vae'", "ZOO_DISABLE_PLUGINS=clash"]),
    "clash-between-two": ({"twina": models_plugin("twin"), "twinb": models_plugin("twin")}, {"twina", "twinb"},
                          ["'twin'", "'twina' (zoo-twina 0.1)", "'twinb' (zoo-twinb 0.1)", "neither gets it",
                           "ZOO_DISABLE_PLUGINS="]),
    "dict-instead-of-spec": ({"dicty": HEADER + MODELS_HOOK + "    register({'arch': 'dicty', 'factory': 'x:y'})\n"},
                             {"dicty"}, ["registered a dict where a ModelSpec was expected"]),
    "raising-hook": ({"boom": HEADER + MODELS_HOOK + "    raise RuntimeError('boom\\nsecond line')\n"}, {"boom"},
                     ["zoo_register_models raised RuntimeError: boom"]),
    "misspelled-hook": ({"typo": HEADER + MODELS_HOOK.replace("models", "model") + "    pass\n"}, {"typo"},
                        ["unknown hook 'zoo_register_model'", "did you mean 'zoo_register_models'"]),
    "command-named-list": ({"lister": HEADER + COMMANDS_HOOK
                            + "    cli.add_command(click.Command('hello', callback=lambda: None))\n"
                            + "    @cli.command('list')\n    def fake_list():\n        click.echo('hijacked')\n"},
                           {"lister"}, ["command name 'list' is already taken by zoo's own command"]),
    "command-named-train": ({"trainer": HEADER + COMMANDS_HOOK
                             + "    cli.add_command(click.Command('train', callback=lambda: None))\n"},
                            {"trainer"}, ["command name 'train' is already taken by built-in plugin 'cli'"]),
    # an installed entry point named like a built-in one cannot take its place
    "entry-point-named-vae": ({"vae": models_plugin("vae")}, {"zoo-vae:vae"},
                              ["entry-point name 'vae' is taken by plugin vae (latent-zoo",
                               "ZOO_DISABLE_PLUGINS=zoo-vae"]),
    "raising-command-hook": ({"cmdboom": HEADER + COMMANDS_HOOK + "    raise ValueError('no commands today')\n"},
                             {"cmdboom"}, ["zoo_register_commands raised ValueError: no commands today"]),
}


def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugins: dict[str, str]) -> None:
    """Each plugin becomes its own distribution ``zoo-<name>`` with one entry point ``<name>`` (module ``bad_<name>``,
    which shadows no built-in package)."""
    for name, source in plugins.items():
        root = make_fake_dist(tmp_path / f"site-{name}", f"zoo-{name}", {name: f"bad_{name}"},
                              {f"bad_{name}.py": source})
        monkeypatch.syspath_prepend(str(root))
    zoo.plugins.reset()


def run(*args: str):
    return CliRunner().invoke(zoo_main.make_cli(), list(args))


@pytest.mark.parametrize("case", BAD_PLUGINS)
def test_bad_plugin_is_reported_and_skipped(case, toy_plugin, tmp_path, monkeypatch):
    plugins, broken, needles = BAD_PLUGINS[case]
    install(tmp_path, monkeypatch, plugins)

    listing = run("plugins", "--json")
    assert listing.exit_code == 0, listing.output
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert {n for n, r in rows.items() if r["error"]} == broken
    for name in broken:
        error = rows[name]["error"]
        assert "\n" not in error and all(n in error for n in needles), error
        assert rows[name]["registers"] == []
    assert rows["vae"]["registers"] == ["model:vae"] and "model:toyae" in rows["toy"]["registers"]

    models = run("list", "--json")
    assert models.exit_code == 0 and "Traceback" not in models.output
    names = [r["name"] for r in json.loads(models.stdout)]
    assert set(BUILTIN_MODELS) | {"toyae.bars"} <= set(names)
    assert not {"mine", "twin", "dicty"} & set(names)
    warnings = models.stderr.strip().splitlines()
    assert sorted(warnings) == sorted(f"warning: plugin {n!r} is broken ({rows[n]['error']}); see `zoo plugins`"
                                      for n in broken)

    cli = zoo_main.make_cli()
    assert cli.commands["list"] is zoo_main.list_cmd and "hello" not in cli.commands
    assert cli.commands["train"].callback.__module__ == "zoo_cli.train"
    assert zoo.resolve_model("vae").plugin == "vae"


def test_unknown_hook_blames_only_its_plugin(tmp_path, monkeypatch):
    """pluggy's check_pending would fail every plugin registered after the misspelled one."""
    install(tmp_path, monkeypatch, {"aaatypo": BAD_PLUGINS["misspelled-hook"][0]["typo"]})
    records = {r.name: r for r in zoo.list_plugins()}
    assert records["aaatypo"].error.startswith("PluginValidationError: unknown hook")
    assert [r.name for r in records.values() if r.error] == ["aaatypo"]
    assert records["vae"].hooks == ["zoo_register_models"]


def test_plugin_commands_attach_through_the_decorators(tmp_path, monkeypatch):
    source = (HEADER + COMMANDS_HOOK + "    @cli.group('greet')\n    def greet():\n        pass\n"
              "    @greet.command('hi')\n    def hi():\n        click.echo('hi there')\n"
              "    assert 'list' in cli.commands\n")
    install(tmp_path, monkeypatch, {"greeter": source})
    result = run("greet", "hi")
    assert result.exit_code == 0 and result.stdout == "hi there\n" and result.stderr == ""


def test_strict_mode_raises_the_hook_error(tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, {"boom": BAD_PLUGINS["raising-hook"][0]["boom"]})
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    zoo.plugins.reset()
    with pytest.raises(RuntimeError, match="boom"):
        zoo.list_models()


def test_trace_shows_each_registration_call(monkeypatch, capsys):
    monkeypatch.setenv("ZOO_TRACE_PLUGINS", "1")
    zoo.plugins.reset()
    assert "vae.dsprites" in zoo.list_models()
    assert capsys.readouterr().err.count("zoo_register_models") >= len(BUILTIN_MODELS)


# --- zoo info loads the weights -----------------------------------------------------------------------------------

def tamper(folder: Path) -> None:
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))


def truncate_without_hash(folder: Path) -> None:
    """Truncated, and the config's sha256 gone, so the safetensors reader itself must refuse the file."""
    config = json.loads((folder / "config.json").read_text())
    config.pop("sha256", None)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:100])


@pytest.mark.parametrize("damage, needle", [(tamper, "sha256"), (truncate_without_hash, "safetensors")],
                         ids=["tampered", "truncated"])
def test_info_on_broken_weights_is_one_error_line(damage, needle, toy_plugin, tmp_path):
    folder = zoo.save_pretrained(zoo.create_model("toyae", pretrained=False), tmp_path / "w")
    good = run("info", f"local-dir:{folder}", "--json")
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["buffers"] == 1  # ToyAE's step counter
    damage(Path(folder))
    result = run("info", f"local-dir:{folder}", "--json")
    assert result.exit_code != 0 and result.stdout == "" and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr


FIXED_MODEL = '''
import torch
import zoo


class Fixed(zoo.ZooModel):
    """A decoder with no parameters: a fixed projection held in a buffer."""

    def __init__(self):
        super().__init__()
        self.image_spec = zoo.ImageSpec(1, (3, 3))
        self.latent_spec = zoo.LatentSpec((3,))
        self.register_buffer("proj", torch.eye(9, 3))

    def decode(self, z):
        return torch.sigmoid(z @ self.proj.T).view(-1, 1, 3, 3)
'''


def test_info_counts_buffers_of_a_model_without_weights(tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, {"fixed": HEADER + MODELS_HOOK
                                    + "    register(zoo.ModelSpec(arch='fixed', factory='fixed_model:Fixed'))\n"})
    (tmp_path / "site-fixed" / "fixed_model.py").write_text(FIXED_MODEL)
    result = run("info", "fixed", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["parameters"], out["buffers"]) == (0, 27) and out["weights"].startswith("no weights")
    assert out["plugin"] == "fixed" and "decode" in out["capabilities"]
