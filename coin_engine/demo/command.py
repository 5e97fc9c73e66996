"""``coin-engine demo``: the embedded default end to end (the demo crosses both halves, so it
belongs to the application package). The daily DAG runs in-process through Dagster
(:mod:`coin_engine.demo.dag`); the shadow loop is described in :mod:`coin_engine.demo.shadow`."""

import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from coin_engine.cli.engine_cmd import (
    HELD_OUT_DAYS,
    check_partition,
    console,
    default_partition,
    run_with_progress,
)
from coin_engine.demo.dag import StepResult, apply_overrides, demo_library, summarize, write_report
from trading_core.brain import BrainLibrary
from trading_core.config import load_config, secret_values
from trading_core.observability.logging import configure_logging


def demo(
    partition: Annotated[
        str | None, typer.Option(help="First daily partition YYYY-MM-DD (the champions).")
    ] = None,
    report_dir: Annotated[Path, typer.Option(help="Where the report goes.")] = Path("reports"),
    hamilton_bars: Annotated[
        int,
        typer.Option(help="Max bars of the Hamilton shadow replay on held-out days (0: skip)."),
    ] = HELD_OUT_DAYS * 24,
) -> None:
    """The embedded default end to end: ranking, training on Dask, walk-forward, selection,
    release (the champions); a week later the challengers, a Hamilton paper replay of the
    held-out week with every challenger shadow-trading beside its champion, and the shadow
    evaluation that promotes or rejects each one, then the new release."""
    # imported here: the shadow loop pulls Hamilton (aiohttp, its engine: ~1 s), which
    # `engine run` never uses
    from coin_engine.demo.shadow import CHALLENGER_GAP_DAYS, SHADOW_OVERRIDES

    applied = apply_overrides(SHADOW_OVERRIDES)
    day = (
        check_partition(partition)
        if partition is not None
        else str(date.fromisoformat(default_partition()) - timedelta(days=CHALLENGER_GAP_DAYS))
    )
    folder = report_dir / f"demo-{day}"
    log_path = _log_to_file(folder)
    console.rule(f"[bold]coin-engine demo — partition {day}")
    if applied:
        console.print(f"demo overrides: {applied}")
    console.print(f"structured logs (the demo's and Hamilton's): {log_path}")
    steps = run_with_progress(day)
    library = demo_library()
    stages, best = summarize(library, date.fromisoformat(day))
    write_report(folder, library, date.fromisoformat(day), steps, stages, best, applied)
    _print_summary(steps, stages, best, folder)
    if hamilton_bars and library.latest_release() is not None:
        _shadow_loop(library, day, hamilton_bars, folder)


def _log_to_file(folder: Path) -> Path:
    """Every process of the demo (this one, Dagster's steps, Hamilton) appends its structured
    logs to ``folder/demo.log``: thousands of lines (a few per coin and asset, one per Hamilton
    decision) would bury the progress and the results."""
    default = str((folder / "demo.log").resolve())
    path = Path(os.environ.setdefault("ENGINE__OBSERVABILITY__LOG_PATH", default))  # inherited
    config = load_config()
    configure_logging(
        fmt=config.observability.log_format,
        level=config.observability.log_level,
        service="cli",
        secrets=secret_values(config),
        path=config.observability.log_path,
    )
    return path


def _shadow_loop(library: BrainLibrary, first: str, bars: int, folder: Path) -> None:
    """Challengers a week later, the Hamilton shadow replay, the evaluation, the new release."""
    from coin_engine.demo.shadow import (
        CHALLENGER_DAY_OVERRIDES,
        CHALLENGER_GAP_DAYS,
        SHADOW_OVERRIDES,
        append_shadow_report,
        overridden,
        print_verdicts,
        shadow_models,
        shadow_verdicts,
    )

    second = str(date.fromisoformat(first) + timedelta(days=CHALLENGER_GAP_DAYS))
    console.rule(f"[bold]challengers — partition {second}")
    with overridden(CHALLENGER_DAY_OVERRIDES) as applied:
        if applied:
            console.print(f"challenger-day overrides: {applied}")
        run_with_progress(second)
    challengers = shadow_models(library, date.fromisoformat(second))
    console.print(
        f"{len(challengers)} challenger(s) in shadow beside their champions: "
        + (", ".join(m.name for m in challengers) or "none")
    )
    _hamilton_replay(second, bars, folder / "demo.log")
    end = load_config().data.synthetic.end_date
    evaluation_day = str(end - timedelta(days=1))
    console.rule(f"[bold]shadow evaluation and release — partition {evaluation_day}")
    run_with_progress(evaluation_day, ("shadow_evaluation", "brain_library_push"))
    verdicts = shadow_verdicts(library, challengers)
    print_verdicts(console, verdicts)
    release = library.latest_release()
    if release is not None:
        console.print(
            f"release {release.id}: {len(release.production)} production, "
            f"{len(release.shadow)} shadow models; Hamilton serves it from its next poll. "
            f"Undo: coin-engine brain rollback KEY --reason TEXT, or "
            f"coin-engine brain rollback --release {release.parent_id} --reason TEXT"
        )
    append_shadow_report(folder, verdicts, f"Shadow test overrides: {dict(SHADOW_OVERRIDES)}")


def _print_summary(
    steps: list[StepResult], stages: dict[str, int], best: list[dict[str, Any]], folder: Path
) -> None:
    table = Table(title="Daily DAG")
    for column in ("asset", "seconds", "highlights"):
        table.add_column(column)
    for step in steps:
        keys = (
            "models_trained",
            "models_skipped",
            "models_failed",
            "keys_eligible",
            "release_id",
            "ranked_coins",
            "pairs",
            "rows_added",
        )
        notes = ", ".join(f"{k}={step.metadata[k]}" for k in keys if k in step.metadata)
        table.add_row(step.asset, f"{step.seconds:.1f}", notes)
    console.print(table)
    console.print(f"models per stage (this partition): {stages}")
    best_table = Table(title="Best production models (out-of-sample, after costs)")
    for column in ("model", "Sharpe ± se", "edge bps", "trades", "max DD", "luck: p adj", "DSR"):
        best_table.add_column(column)
    for row in best:
        best_table.add_row(
            row["model"],
            f"{_fmt(row['oos_sharpe'])} ± {_fmt(row['oos_sharpe_se'])}",
            _fmt(row["oos_edge_after_cost_bps"]),
            _fmt(row["oos_n_trades"], 0),
            _fmt(row["oos_max_drawdown"]),
            _fmt(row["p_adjusted"], 4),
            _fmt(row["dsr"], 3),
        )
    console.print(best_table)
    console.print(f"report: {folder / 'README.md'}")


def _fmt(value: object, digits: int = 2) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def _hamilton_replay(day: str, bars: int, log_path: Path) -> None:
    """Hamilton in its own process (it never shares one with Dagster), on the held-out days
    after the training partition, from a fresh state (a demo run never resumes an old one)."""
    start = date.fromisoformat(day) + timedelta(days=1)
    config = load_config()
    end = config.data.synthetic.end_date
    state_dir = Path(config.hamilton.state_path) / f"demo-{day}"
    shutil.rmtree(state_dir, ignore_errors=True)
    console.rule(f"[bold]Hamilton paper replay on the release: {start} .. {end} (held out)")
    command = [
        sys.executable,
        "-m",
        "coin_engine",
        "hamilton",
        "run",
        "--paper",
        "--replay",
        "--from",
        f"{start}T00:00:00+00:00",
        "--to",
        f"{end}T00:00:00+00:00",
        "--max-bars",
        str(bars),
        "--state-dir",
        str(state_dir),
    ]
    result = subprocess.run(command, check=False)  # noqa: S603 - our own CLI, fixed arguments
    if result.returncode != 0:
        console.print(f"[red]Hamilton exited with {result.returncode}; its log: {log_path}")
        raise typer.Exit(code=result.returncode)
