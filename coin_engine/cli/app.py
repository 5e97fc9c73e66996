"""Root typer app: global options, the command table, the console-script entry.

Every command group is named in :data:`COMMANDS` with its short help; :class:`LazyGroup` imports
a group only when the command line names it, so ``coin-engine --help`` lists every group without
importing Dagster, Hamilton, the Brain Library or the numeric stack, and ``coin-engine brain ls``
imports the Brain Library but neither half.
"""

from importlib import import_module
from pathlib import Path
from typing import Annotated

import typer

# typer vendors click (typer._click): its group and context types are the ones to subclass
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

from coin_engine.cli.state import CliState

# name -> ("module:attribute" of a typer app or a command function, its short help), in the
# order of `coin-engine --help`
COMMANDS: dict[str, tuple[str, str]] = {
    "config": (
        "coin_engine.cli.config_cmd:config_app",
        "Validate and show the configuration (secrets masked).",
    ),
    "data": (
        "coin_engine.cli.data_cmd:data_app",
        "Market data: fetch candles into the local store, rank the universe.",
    ),
    "brain": (
        "coin_engine.cli.brain_cmd:brain_app",
        "Brain Library: model versions, stages, releases, artifacts.",
    ),
    "events": (
        "coin_engine.cli.events_cmd:events_app",
        "Decision events: query what Hamilton decided and why.",
    ),
    "demo": (
        "coin_engine.demo.command:demo",
        "The embedded default end to end: training, release, Hamilton shadow replay, report.",
    ),
    "engine": (
        "coin_engine.cli.engine_cmd:engine_app",
        "Run the daily training DAG in-process (Dagster).",
    ),
    "hamilton": (
        "hamilton_exec.cli:app",
        "Hamilton: the execution service (paper, shadow or live).",
    ),
}


def load_command(name: str) -> click.Command:
    """Import the command group ``name`` of :data:`COMMANDS` as a click command."""
    module_name, _, attribute = COMMANDS[name][0].partition(":")
    target = getattr(import_module(module_name), attribute)
    if isinstance(target, typer.Typer):  # a group, even of one command (`engine run`)
        command: click.Command = typer.main.get_group(target)
    else:  # a command function (`demo`)
        single = typer.Typer(add_completion=False)
        single.command(name=name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The root group: its sub-commands come from :data:`COMMANDS`, imported on first use. The
    help page lists them from the table (short help only), importing none."""

    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        if self._listing:
            help_text = COMMANDS[cmd_name][1]
            return TyperCommand(cmd_name, help=help_text, short_help=help_text)
        command = load_command(cmd_name)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="coin-engine",
    cls=LazyGroup,
    # plain click help and usage errors at the root: typer's rich help loads rich.traceback,
    # rich.pretty and attrs (~0.2 s, half of `--help`); each group's own help stays rich
    rich_markup_mode=None,
    help="The 400-coin engine: training DAG, Brain Library and the Hamilton execution service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


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


def run(args: list[str] | None = None) -> None:
    """Console-script entry: a domain error (a :class:`~trading_core.errors.CoinEngineError`)
    prints one line naming the bad value and what is allowed, and exits 2; usage errors are
    click's (one line, exit 2)."""
    from trading_core.errors import CoinEngineError

    try:
        app(args)
    except CoinEngineError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from exc
