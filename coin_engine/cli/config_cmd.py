"""``coin-engine config validate|show``."""

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.syntax import Syntax

from coin_engine.cli.state import bad_input, config_of
from trading_core.config import config_as_dict, default_config_paths, load_config
from trading_core.errors import ConfigError

config_app = typer.Typer(help="Validate and show the configuration (secrets masked).")
console = Console()


@config_app.command("validate")
def validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files to validate together.")] = None,
) -> None:
    """Validate config files (default: the three files in ./config) plus ENGINE__ overrides."""
    files = paths or default_config_paths()
    for path in files:
        if path.is_dir():
            inside = sorted(str(f) for f in path.glob("*.y*ml"))
            bad_input(
                f"config validate: {str(path)!r} is a folder; allowed: YAML files"
                + (f", e.g. {' '.join(inside)}" if inside else "")
            )
    try:
        config = load_config(files)
    except ConfigError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from exc
    names = ", ".join(str(f) for f in files)
    console.print(
        f"[green]valid[/green]: {names} (risk preset {config.risk.preset!r}, "
        f"{config.engine.active_coins} active coins, source {config.data.source!r})"
    )


@config_app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML.")] = False,
) -> None:
    """Print the effective configuration with every secret masked."""
    data = config_as_dict(config_of(ctx))
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    text = yaml.safe_dump(data, sort_keys=False)
    console.print(Syntax(text, "yaml", theme="ansi_dark", word_wrap=True))
