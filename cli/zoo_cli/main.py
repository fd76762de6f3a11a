"""``zoo``: list, inspect and pull models; every other command comes from plugins (built-ins included)."""

from __future__ import annotations

import sys
from typing import Any

import click

import zoo
from zoo import registry
from zoo.errors import ZooError
from zoo_cli.output import emit_json, info, json_option, print_table


class ZooGroup(click.Group):
    """Turns a :class:`zoo.ZooError` into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


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
    from zoo import factory, hub

    if ":" in name:
        folder, source, _ = factory.weights_folder(name)
        config = hub.read_config(folder)
        arch, plugin, spec = config["architecture"], None, registry.models.get(config["architecture"]).spec
    else:
        resolved = registry.resolve_model(name)
        spec, arch, plugin = resolved.spec, resolved.spec.arch, resolved.plugin
        config, source = None, "no weights (train with `zoo train`)"
        if resolved.weights is not None and resolved.weights.available:
            folder, source, _ = factory.weights_folder(name)
            config = hub.read_config(folder)
        name = resolved.name
    model = factory.build_model(arch, (config or {}).get("model_args"))
    out = {
        "name": name, "arch": arch, "plugin": plugin, "description": spec.description, "paper": spec.paper,
        "aliases": list(spec.aliases), "tags": [w.tag for w in spec.weights], "weights": source,
        "capabilities": sorted(model.capabilities()),
        "image": model.image_spec.to_dict(), "latent": model.latent_spec.to_dict(),
        "prior": model.prior_spec.to_dict() if model.prior_spec else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "model_args": (config or {}).get("model_args", model.model_args),
        "provenance": (config or {}).get("provenance"),
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
    records = [r.to_dict() for r in zoo.list_plugins()]
    registered: dict[str, list[str]] = {}
    for table in registry.ALL:
        for name, entry in table.entries.items():
            registered.setdefault(entry.plugin, []).append(f"{table.kind}:{name}")
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
    try:
        zoo.get_plugin_manager().hook.zoo_register_commands(cli=cli)
    except ZooError as exc:  # a clash between plugins is reported, not a crash
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    return cli


def main() -> None:
    try:
        make_cli()(prog_name="zoo")
    except ZooError as exc:  # raised while building (e.g. a clashing plugin)
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
