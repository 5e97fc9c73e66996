"""The demo's shadow loop on the embedded default (no live weeks on a synthetic market).

After the first day's release (the champions), a second daily partition a week later trains
challengers; those whose out-of-sample Sharpe beats their champion's land in shadow and are
released beside it. Hamilton then replays the held-out week after the second partition in paper
mode, trading every challenger in a virtual book beside a mirror of its champion; the
``shadow_evaluation`` asset judges each challenger from those paired returns and the push
releases the new production set.

One synthetic week cannot give the seed's 14 days and 100 trades per model, so the demo
shortens the shadow test to the replayed week (``SHADOW_OVERRIDES``, printed when applied):
at the end of that week every challenger is promoted or rejected (inconclusive evidence at the
maximum duration is a rejection).
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from trading_core.brain import BrainLibrary, ModelVersion
from trading_core.reporting import markdown_table
from trading_core.shadow.evaluation import SHADOW_ACTOR
from trading_core.types import Stage

CHALLENGER_GAP_DAYS = 7
SHADOW_OVERRIDES: Mapping[str, str] = {
    "ENGINE__SHADOW_TESTING__MIN_DURATION_DAYS": "7",
    "ENGINE__SHADOW_TESTING__MAX_DURATION_DAYS": "7",
    "ENGINE__SHADOW_TESTING__MIN_TRADES": "3",
}
# The second day trains Hamilton's timeframe only: the shadow replay trades 1h bars, and the
# demo stays within a few minutes on two cores.
CHALLENGER_DAY_OVERRIDES: Mapping[str, str] = {"ENGINE__ENGINE__TIMEFRAMES": '["1h"]'}
VERDICT_COLUMNS = (
    "key",
    "decision",
    "bars",
    "trades champ/chall",
    "Sharpe champ",
    "Sharpe chall",
    "p mean diff",
    "p Sharpe",
    "level",
)


@contextmanager
def overridden(overrides: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """ENGINE__ overrides for the block only (those the user set are left alone)."""
    applied = {k: v for k, v in overrides.items() if k not in os.environ}
    os.environ.update(applied)
    try:
        yield applied
    finally:
        for key in applied:
            os.environ.pop(key, None)


def shadow_models(library: BrainLibrary, partition_day: date) -> list[ModelVersion]:
    """The challengers of ``partition_day`` that landed in shadow."""
    return [m for m in library.list_models(stage=Stage.SHADOW) if m.partition_date == partition_day]


def shadow_verdicts(library: BrainLibrary, challengers: list[ModelVersion]) -> list[dict[str, Any]]:
    """The shadow evaluation's latest entry (decision and statistics) of each challenger."""
    rows = []
    for model in challengers:
        entries = [c for c in library.stage_history(model.name) if c.actor == SHADOW_ACTOR]
        if not entries:
            continue
        stats = dict(entries[-1].statistics or {})
        rows.append(
            {
                "key": model.key.slug,
                "challenger": model.name,
                "champion": stats.get("champion"),
                "decision": stats.get("decision"),
                "stage": library.get_model(model.name).stage.value,
                "bars": stats.get("n_periods"),
                "trades champ/chall": f"{_int(stats.get('n_trades_champion'))}/"
                f"{_int(stats.get('n_trades_challenger'))}",
                "Sharpe champ": stats.get("sharpe_champion_annualized"),
                "Sharpe chall": stats.get("sharpe_challenger_annualized"),
                "p mean diff": stats.get("p_value_mean_difference"),
                "p Sharpe": stats.get("p_value_sharpe"),
                "level": stats.get("promotion_level"),
                "reasons": "; ".join(stats.get("reasons") or []),
            }
        )
    return rows


def print_verdicts(console: Console, verdicts: list[dict[str, Any]]) -> None:
    if not verdicts:
        console.print("no challenger was evaluated (none landed in shadow)")
        return
    table = Table(title="Shadow evaluation (paired Hamilton returns, champion -> challenger)")
    for column in ("key", "decision", "bars", "trades", "Sharpe", "p mean", "p Sharpe"):
        table.add_column(column, justify="left" if column in ("key", "decision") else "right")
    for row in verdicts:
        colour = {"promote": "green", "reject": "red"}.get(str(row["decision"]), "yellow")
        table.add_row(
            row["key"],
            f"[{colour}]{row['decision']}[/{colour}]",
            _fmt(row["bars"]),
            row["trades champ/chall"],
            f"{_fmt(row['Sharpe champ'])} -> {_fmt(row['Sharpe chall'])}",
            _fmt(row["p mean diff"]),
            _fmt(row["p Sharpe"]),
        )
    console.print(table)
    for row in verdicts:
        console.print(f"[bold]{row['challenger']}[/bold] vs {row['champion']}: {row['reasons']}")


def append_shadow_report(report_dir: Path, verdicts: list[dict[str, Any]], notes: str) -> None:
    """Add the shadow test to the demo report's README."""
    path = report_dir / "README.md"
    lines = [
        "",
        "## Shadow test (Hamilton replay of the held-out week)",
        "",
        notes,
        "",
        markdown_table(verdicts, ["challenger", "champion", *VERDICT_COLUMNS[1:], "reasons"]),
    ]
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _int(value: object) -> str:
    return "-" if value is None else str(int(float(value)))  # type: ignore[arg-type]


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
