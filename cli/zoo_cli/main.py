"""``zoo``: list, inspect and pull models; every other command comes from plugins (built-ins included)."""

from __future__ import annotations

import signal
import sys
from types import MappingProxyType
from typing import Any

import click

import zoo
from zoo import registry
from zoo.errors import RegistrationError, ZooError
from zoo_cli.output import emit_json, info, json_option, print_table


class ZooGroup(click.Group):
    """Turns a :class:`zoo.ZooError` into one line on stderr and a non-zero exit, never a traceback; then warns, one
    line each, of the broken plugins found on the way (``zoo plugins`` shows them itself)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:  # click's three-line usage block, as one line like every other error
            where = " ".join(exc.ctx.command_path.split()[1:]) if exc.ctx else ""
            hint = f"; see `zoo {where} --help`" if where else "; see `zoo --help`"
            click.echo(f"error: {exc.format_message().rstrip('.')}{hint}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        finally:
            if ctx.invoked_subcommand not in (None, "plugins"):
                for record in zoo.list_plugins():
                    if record.error:
                        click.echo(f"warning: plugin {record.name!r} is broken ({record.error}); see `zoo plugins`",
                                   err=True)


class PluginCommands:
    """What a plugin's ``zoo_register_commands(cli)`` gets: it reads like the root group, but only collects the
    plugin's commands, so that :func:`make_cli` can refuse a name already taken (a plugin never replaces a built-in
    command) and attach all of a plugin's commands or none."""

    command = click.Group.command  # both end in self.add_command
    group = click.Group.group

    def __init__(self, root: click.Group, added: list[tuple[str, click.Command]]) -> None:
        self._root, self._added = root, added

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not isinstance(cmd, click.Command):
            raise RegistrationError(f"added a {type(cmd).__name__} where a click command was expected")
        self._added.append((name or cmd.name, cmd))

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._root, attr)
        return MappingProxyType(value) if attr == "commands" else value  # read-only: add_command is the way in


def _weights_where(spec: zoo.ModelSpec, tag: str | None) -> str:
    w = spec.get_weights(tag)
    if w is None or not w.available:
        return "no weights"
    return "embedded" if w.embedded else f"hf-hub:{w.hf_repo}"


def model_rows(pattern: str | None) -> list[dict[str, Any]]:
    rows = []
    for name in registry.list_models(pattern):
        arch, _, tag = name.partition(".")
        entry = registry.models.get(arch)
        w = entry.spec.get_weights(tag or None)
        rows.append({"name": name, "arch": arch, "tag": tag or None, "weights": _weights_where(entry.spec, tag or None),
                     "dataset": w.dataset if w else None, "aliases": list(entry.spec.aliases),
                     "plugin": zoo.get_plugin_manager().records[entry.plugin].provider
                     if entry.plugin in zoo.get_plugin_manager().records else entry.plugin,
                     "description": entry.spec.description})
    return rows


@click.command("list")
@click.argument("pattern", required=False)
@json_option
def list_cmd(pattern: str | None, as_json: bool) -> None:
    """List registered models (ARCH.TAG), optionally filtered by a wildcard PATTERN."""
    rows = model_rows(pattern)
    if as_json:
        return emit_json(rows)
    if not rows:
        info(f"no model matches {pattern!r}" if pattern else "no models registered (see `zoo plugins`)")
        return
    print_table(["name", "weights", "dataset", "aliases", "plugin"],
                [[r["name"], r["weights"], r["dataset"], ",".join(r["aliases"]), r["plugin"]] for r in rows])


@click.command()
@click.argument("name")
@json_option
def info_cmd(name: str, as_json: bool) -> None:
    """Show a model's specs, capabilities and weights source."""
    from zoo import factory

    # The weights are loaded, not just their config read: corrupt or tampered weights fail here, in one line.
    ref = zoo.parse_ref(name)
    if ref.kind == "name":
        resolved = registry.resolve_model(ref.target)
        model = factory.create_model(ref, pretrained=resolved.weights is not None and resolved.weights.available)
        name = resolved.name
    else:
        model = factory.create_model(ref)
    entry = registry.models.get(model.arch)
    config, spec = model.weights_config or {}, entry.spec
    out = {
        "name": name, "arch": model.arch, "plugin": entry.plugin, "description": spec.description,
        "paper": spec.paper, "aliases": list(spec.aliases), "tags": [w.tag for w in spec.weights],
        "weights": model.weights_source or "no weights (train with `zoo train`)",
        "capabilities": sorted(model.capabilities()),
        "image": model.image_spec.to_dict(), "latent": model.latent_spec.to_dict(),
        "prior": model.prior_spec.to_dict() if model.prior_spec else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers()),  # e.g. running statistics, fixed projections
        "model_args": config.get("model_args", model.model_args),
        "provenance": config.get("provenance"),
    }
    if as_json:
        return emit_json(out)
    for k, v in out.items():
        if v not in (None, [], {}, ""):
            click.echo(f"{k:>13}: {v}")


@click.command()
@json_option
def plugins(as_json: bool) -> None:
    """List loaded plugins: distribution, version, hooks, what they register, and errors."""
    registered: dict[str, list[str]] = {}
    for table in registry.ALL:  # building the tables first finds the plugins whose registrations fail
        for name, entry in table.entries.items():
            registered.setdefault(entry.plugin, []).append(f"{table.kind}:{name}")
    records = [r.to_dict() for r in zoo.list_plugins()]
    for r in records:
        r["registers"] = registered.get(r["name"], [])
    if as_json:
        return emit_json(records)
    print_table(["plugin", "distribution", "hooks", "registers", "error"],
                [[r["name"], f"{r['distribution'] or '-'} {r['version'] or ''}", ",".join(r["hooks"]),
                  ",".join(r["registers"]), r["error"] or ""] for r in records])


@click.command()
@click.argument("name")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Hub cache folder (default: HF_HUB_CACHE).")
def pull(name: str, cache_dir: str | None) -> None:
    """Download a model's weights into the Hub cache (embedded weights need no pull)."""
    from zoo import factory

    folder, source = factory.pull(name, cache_dir=cache_dir)
    verb = "ships inside the package" if source.startswith("embedded:") else "is cached"
    info(f"{name}: {source} {verb} at {folder}")
    click.echo(str(folder))


def make_cli() -> click.Group:
    """The root group with the core commands and every plugin's ``zoo_register_commands``."""

    @click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(zoo.__version__, prog_name="zoo")
    def cli() -> None:
        """latent-zoo: compare the latent spaces of generative models."""

    for cmd in (list_cmd, info_cmd, plugins, pull):
        cli.add_command(cmd, "info" if cmd is info_cmd else None)
    core = dict.fromkeys(cli.commands, "zoo's own command")
    # A plugin whose hook raises or claims a taken name loses its commands and is marked broken; the rest stand.
    plugin_commands = zoo.get_plugin_manager().gather(
        "zoo_register_commands", "command", lambda plugin, added: {"cli": PluginCommands(cli, added)},
        names_of=lambda named: [named[0]], reserved=core)
    for _, (name, cmd) in plugin_commands:
        cli.add_command(cmd, name)
    return cli


def exit_on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM (``kill``, a scheduler's time limit) unwinds like Ctrl-C, so a command killed mid-write still removes
    its temporary folders and releases its locks instead of leaving them for the next writer."""
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        make_cli()(prog_name="zoo")
    except ZooError as exc:  # raised while building (e.g. a clashing plugin)
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
