"""``coin-engine engine run``: the daily DAG in-process, one partition (Dagster).

The partition is checked against the daily partitions definition
(:mod:`engine_assets.partitions`) before Dagster sees it: a bad day is one line and exit 2."""

import os
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import dagster as dg
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from coin_engine.cli.state import bad_input
from coin_engine.demo.dag import DAILY_ORDER, StepResult, run_daily_dag
from engine_assets.partitions import PARTITIONS_START_DATE, daily_partitions
from trading_core.config import load_config

console = Console()
engine_app = typer.Typer(help="Run the daily training DAG in-process (Dagster).")

HELD_OUT_DAYS = 7


def _instance() -> dg.DagsterInstance:
    """The instance of $DAGSTER_HOME (so `dagster dev` shows the runs), else an ephemeral one."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        Path(home).mkdir(parents=True, exist_ok=True)
        template = Path(__file__).resolve().parents[2] / "dagster.yaml"
        if template.exists() and not (Path(home) / "dagster.yaml").exists():
            shutil.copy(template, Path(home) / "dagster.yaml")
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def default_partition() -> str:
    """The day that leaves the embedded market's last ``HELD_OUT_DAYS`` days unseen by training,
    so the Hamilton replay after it trades bars no model has learned from."""
    config = load_config()
    return str(config.data.synthetic.end_date - timedelta(days=HELD_OUT_DAYS + 1))


def check_partition(day: str, option: str = "--partition") -> str:
    """``day`` if it is a key of the daily partitions; else one line (what is allowed), exit 2."""
    last = daily_partitions.get_last_partition_key()
    allowed = f"allowed: a day YYYY-MM-DD from {PARTITIONS_START_DATE} to {last}"
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        bad_input(f"{option} {day!r} is not a date; {allowed}")
    if parsed.isoformat() != day or not daily_partitions.has_partition_key(day):
        bad_input(f"{option} {day!r} is not a daily partition; {allowed}")
    return day


def run_with_progress(partition: str, names: tuple[str, ...] = DAILY_ORDER) -> list[StepResult]:
    """Materialize ``names`` for ``partition`` with a progress bar on the console."""
    from engine_assets.definitions import defs

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} assets"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"daily DAG {partition}", total=len(names))

        def on_step(asset: str, phase: str) -> None:
            if phase == "start":
                progress.update(task, description=f"{partition}: {asset}")
            else:
                progress.advance(task)

        return run_daily_dag(defs, partition, _instance(), on_step=on_step, names=names)


@engine_app.command("run")
def run(
    partition: Annotated[str | None, typer.Option(help="Daily partition YYYY-MM-DD.")] = None,
) -> None:
    """Materialize the whole daily DAG for one partition, in-process."""
    day = check_partition(partition) if partition is not None else default_partition()
    steps = run_with_progress(day)
    for step in steps:
        console.print(f"{step.asset:<22} {step.seconds:6.1f} s")
