"""Plots and tables of a training run (PNG bytes and markdown), shared by the Dagster metadata,
the demo's report folder and the benchmarks. Matplotlib's non-interactive Agg backend only."""

import io
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from trading_core.types import REGIMES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_TRADED_REGIMES = [r.value for r in REGIMES if r.value != "ILLIQUID"]


def equity_curves_png(
    curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], *, title: str
) -> bytes:
    """Out-of-sample equity per key (timestamps in ms, equity in USD), normalised to 1.0."""
    fig, ax = _pyplot().subplots(figsize=(9, 4.5), dpi=100)
    for label, (times_ms, equity) in sorted(curves.items()):
        if len(equity) < 2 or not equity[0]:
            continue
        when = np.array([datetime.fromtimestamp(t / 1000, tz=UTC) for t in times_ms])
        ax.plot(when, np.asarray(equity) / equity[0], linewidth=0.9, label=label)
    ax.axhline(1.0, color="grey", linewidth=0.6)
    ax.set_title(title)
    ax.set_ylabel("equity (start = 1)")
    if 0 < len(curves) <= 12:
        ax.legend(fontsize=7, ncol=2)
    fig.autofmt_xdate()
    return _png(fig)


def sharpe_heatmap_png(sharpe: Mapping[tuple[str, str], float], *, title: str) -> bytes:
    """A coin x regime heatmap of out-of-sample Sharpe ratios (blank where none)."""
    coins = sorted({coin for coin, _ in sharpe})
    grid = np.full((max(len(coins), 1), len(_TRADED_REGIMES)), np.nan)
    for (coin, regime), value in sharpe.items():
        if regime in _TRADED_REGIMES and math.isfinite(value):
            grid[coins.index(coin), _TRADED_REGIMES.index(regime)] = value
    fig, ax = _pyplot().subplots(figsize=(5, max(2.5, 0.28 * len(coins) + 1)), dpi=100)
    bound = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
    image = ax.imshow(grid, cmap="RdYlGn", vmin=-bound, vmax=bound, aspect="auto")
    ax.set_xticks(range(len(_TRADED_REGIMES)), _TRADED_REGIMES)
    ax.set_yticks(range(len(coins)), coins, fontsize=7)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="Sharpe (annualised)")
    return _png(fig)


def line_plot_png(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> bytes:
    fig, ax = _pyplot().subplots(figsize=(7, 4), dpi=100)
    for label, values in series.items():
        ax.plot(x, values, marker="o", label=label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """A GitHub markdown table; floats with 3 decimals, None as a blank."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
    lines = [head]
    for row in rows:
        cells = [_cell(row.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.3f}"
    return str(value)


def _pyplot() -> ModuleType:
    """pyplot on the Agg backend, imported on first use: matplotlib takes ~0.4 s to import and
    every Dagster step process (and ``dagster definitions validate``) loads this module, while
    only the steps that draw need it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: "Figure") -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    _pyplot().close(fig)
    return buffer.getvalue()
