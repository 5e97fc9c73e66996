"""``ctx.obj`` of every invocation: the global options and the config, loaded on first use.

Its own module so the command groups can reach the config without importing the root app (the
app imports the groups, lazily)."""

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from trading_core.config import EngineConfig


class CliState(dict[str, Any]):
    """``state["config"]`` loads the config on first use (so ``config validate`` can check other
    files without the defaults having to be valid first, and ``--help`` loads nothing)."""

    def __init__(self, config_paths: list[Path] | None) -> None:
        super().__init__(config_paths=config_paths)

    def __missing__(self, key: str) -> Any:
        if key != "config":
            raise KeyError(key)
        from trading_core.config import load_config, secret_values
        from trading_core.observability.logging import configure_logging

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


def config_of(ctx: typer.Context) -> "EngineConfig":
    """The loaded config of this invocation."""
    root = ctx.find_root()
    if root.obj is None:  # a group invoked on its own (tests): the default files
        root.obj = CliState(None)
    config: EngineConfig = root.obj["config"]
    return config


def bad_input(message: str) -> NoReturn:
    """One line on stderr (``error: <message>``; the message names the bad value and what is
    allowed) and exit code 2, the exit code of click's usage errors."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)
