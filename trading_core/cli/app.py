"""Root typer app: global options, lazy config, sub-command registration."""

import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer

from trading_core.config import EngineConfig, load_config, secret_values
from trading_core.errors import CoinEngineError
from trading_core.observability.logging import configure_logging

app = typer.Typer(
    name="coin-engine",
    help="The 400-coin engine: training DAG, Brain Library and the Hamilton execution service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class CliState(dict[str, Any]):
    """``ctx.obj``: ``state["config"]`` loads the config on first use (so ``config validate``
    can check other files without the defaults having to be valid first)."""

    def __init__(self, config_paths: list[Path] | None) -> None:
        super().__init__(config_paths=config_paths)

    def __missing__(self, key: str) -> Any:
        if key != "config":
            raise KeyError(key)
        config = load_config(self["config_paths"])
        configure_logging(
            fmt=config.observability.log_format,
            level=config.observability.log_level,
            path=config.observability.log_path,
            service="cli",
            secrets=secret_values(config),
        )
        self["config"] = config
        return config


def config_of(ctx: typer.Context) -> EngineConfig:
    """The loaded config of this invocation."""
    root = ctx.find_root()
    state: CliState = root.obj
    config: EngineConfig = state["config"]
    return config


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        list[Path] | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file(s); default: config/scalable_engine.yaml, risk_presets.yaml, "
            "consensus_config.yaml. Environment overrides: ENGINE__SECTION__KEY=value.",
        ),
    ] = None,
) -> None:
    """Global options."""
    ctx.obj = CliState(config)


def _register_builtin() -> None:
    from trading_core.cli.config_cmd import config_app

    app.add_typer(config_app, name="config")
    for module, attr, name in (
        ("trading_core.cli.data_cmd", "data_app", "data"),
        ("trading_core.cli.brain_cmd", "brain_app", "brain"),
        ("trading_core.cli.events_cmd", "events_app", "events"),
    ):
        try:
            sub = getattr(__import__(module, fromlist=[attr]), attr)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        app.add_typer(sub, name=name)


def _command_named(argv: list[str]) -> str | None:
    """The command word of ``argv`` (global options and their values skipped), if any."""
    args = iter(argv)
    for arg in args:
        if arg in ("--config", "-c"):
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def _register_plugins(argv: list[str]) -> None:
    """Command groups of engine_assets and hamilton_exec, found through entry points. Only the
    one the command line names is imported when it names one: each pulls its whole half of the
    project (Hamilton: aiohttp, ccxt, its engine, ~2 s on 2 cores; engine: Dagster), and
    ``engine run`` needs nothing of Hamilton. Help, completion, builtins and an empty ``argv``
    load them all."""
    plugins = entry_points(group="coin_engine.cli")
    named = _command_named(argv)
    chosen = [ep for ep in plugins if ep.name == named] or list(plugins)
    for ep in sorted(chosen, key=lambda e: e.name):
        target = ep.load()
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=ep.name)
        else:
            command: Callable[..., Any] = target
            app.command(name=ep.name)(command)


def run() -> None:
    """Console-script entry: domain errors print one clear line and exit 2."""
    try:
        app()
    except CoinEngineError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from exc


_register_builtin()
# only the console script narrows: an importer (pytest, `python -c`) has argv of its own
_register_plugins(sys.argv[1:] if Path(sys.argv[0]).name == "coin-engine" else [])
