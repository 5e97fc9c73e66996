"""A shadow period: what Hamilton measured for one champion/challenger pair over one UTC day.

Hamilton runs each shadow challenger in a virtual paper book beside a mirror book of the
champion (same capital, same cost model, same risk limits, the same bars; the books differ only
in the model), and records per UTC day the two books' per-bar net returns and the net returns of
the trades they closed. The Brain Library's ``shadow_results`` row keeps the two per-bar series
in its own columns; the trade returns and the bar bookkeeping go into its ``statistics`` under
the keys written by :meth:`ShadowPeriod.statistics` (the contract between Hamilton, which writes
periods, and the ``shadow_evaluation`` asset, which reads them back with
:meth:`ShadowPeriod.from_result`).

A period is keyed by (challenger, first bar's open time, end of that bar's UTC day), so a day
recorded again (a partial day checkpointed at a stop, then completed after a restart) replaces
the earlier record instead of adding to it.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from trading_core.brain.records import ShadowResult, require_utc
from trading_core.errors import DataValidationError

PERIOD_KIND: Final = "hamilton_shadow_period"
_DAY: Final = timedelta(days=1)


def day_end(moment: datetime) -> datetime:
    """Midnight UTC after ``moment`` (the end of its UTC day)."""
    start = require_utc(moment, "moment").replace(hour=0, minute=0, second=0, microsecond=0)
    return start + _DAY


@dataclass(frozen=True, slots=True)
class ShadowPeriod:
    """Paired per-bar net returns (fractions of book equity) and per-trade net returns
    (fractions of the closed part's entry notional) of one pair over part of one UTC day."""

    challenger: str
    champion: str | None
    first_bar_open: datetime
    last_bar_open: datetime
    bar_ms: int
    champion_returns: tuple[float, ...]
    challenger_returns: tuple[float, ...]
    champion_trades: tuple[float, ...] = ()
    challenger_trades: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        require_utc(self.first_bar_open, "first_bar_open")
        require_utc(self.last_bar_open, "last_bar_open")
        if self.bar_ms < 1:
            raise ValueError(f"bar_ms={self.bar_ms!r} must be >= 1")
        if not self.first_bar_open <= self.last_bar_open < self.period_end:
            raise ValueError(
                f"bars {self.first_bar_open}..{self.last_bar_open} must lie in one UTC day, "
                "first before last"
            )
        if len(self.champion_returns) != len(self.challenger_returns):
            raise ValueError(
                f"{len(self.champion_returns)} champion and {len(self.challenger_returns)} "
                "challenger returns: the series are paired bar by bar and must have one length"
            )
        if not self.champion_returns:
            raise ValueError("a shadow period needs at least one bar")
        for name in ("champion_returns", "challenger_returns", "champion_trades",
                     "challenger_trades"):  # fmt: skip
            _check_returns(name, getattr(self, name))

    @property
    def period_start(self) -> datetime:
        return self.first_bar_open

    @property
    def period_end(self) -> datetime:
        return day_end(self.first_bar_open)

    @property
    def n_bars(self) -> int:
        return len(self.champion_returns)

    def statistics(self) -> dict[str, Any]:
        """What goes into the ``statistics`` of the shadow_results row (JSON data)."""
        return {
            "kind": PERIOD_KIND,
            "bar_ms": self.bar_ms,
            "bars": self.n_bars,
            "last_bar_open": self.last_bar_open.isoformat(),
            "champion_trade_returns": list(self.champion_trades),
            "challenger_trade_returns": list(self.challenger_trades),
            "champion_return": _compounded(self.champion_returns),
            "challenger_return": _compounded(self.challenger_returns),
        }

    def record_arguments(self, decision: str = "continue") -> dict[str, Any]:
        """Keyword arguments of ``BrainLibrary.record_shadow_result`` for this period."""
        return {
            "challenger": self.challenger,
            "champion": self.champion,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "challenger_returns": list(self.challenger_returns),
            "champion_returns": list(self.champion_returns),
            "statistics": self.statistics(),
            "decision": decision,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON data (Hamilton's spool); :meth:`from_dict` reads it back."""
        return {
            "challenger": self.challenger,
            "champion": self.champion,
            "first_bar_open": self.first_bar_open.isoformat(),
            "last_bar_open": self.last_bar_open.isoformat(),
            "bar_ms": self.bar_ms,
            "champion_returns": list(self.champion_returns),
            "challenger_returns": list(self.challenger_returns),
            "champion_trades": list(self.champion_trades),
            "challenger_trades": list(self.challenger_trades),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ShadowPeriod":
        return cls(
            challenger=str(data["challenger"]),
            champion=None if data.get("champion") is None else str(data["champion"]),
            first_bar_open=_utc(data["first_bar_open"]),
            last_bar_open=_utc(data["last_bar_open"]),
            bar_ms=int(data["bar_ms"]),
            champion_returns=_floats(data["champion_returns"]),
            challenger_returns=_floats(data["challenger_returns"]),
            champion_trades=_floats(data.get("champion_trades", ())),
            challenger_trades=_floats(data.get("challenger_trades", ())),
        )

    @classmethod
    def from_result(cls, result: ShadowResult) -> "ShadowPeriod":
        """The period a shadow_results row holds; DataValidationError if Hamilton did not write
        it (its statistics lack the period keys)."""
        stats = result.statistics
        if stats.get("kind") != PERIOD_KIND:
            raise DataValidationError(
                f"shadow result of {result.challenger} for {result.period_start}: statistics "
                f"kind {stats.get('kind')!r} is not {PERIOD_KIND!r} (not a Hamilton period)"
            )
        try:
            return cls(
                challenger=result.challenger,
                champion=result.champion,
                first_bar_open=_as_utc(result.period_start),
                last_bar_open=_utc(stats["last_bar_open"]),
                bar_ms=int(stats["bar_ms"]),
                champion_returns=_floats(result.champion_returns),
                challenger_returns=_floats(result.challenger_returns),
                champion_trades=_floats(stats["champion_trade_returns"]),
                challenger_trades=_floats(stats["challenger_trade_returns"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataValidationError(
                f"shadow result of {result.challenger} for {result.period_start} is not a valid "
                f"period: {exc!r}"
            ) from exc


def _check_returns(name: str, values: Sequence[float]) -> None:
    for index, value in enumerate(values):
        if not math.isfinite(value) or value < -1.0:
            raise ValueError(
                f"{name}[{index}]={value!r}: returns must be finite simple returns >= -1"
            )


def _compounded(returns: Sequence[float]) -> float:
    return math.prod(1.0 + r for r in returns) - 1.0


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return _as_utc(moment)


def _as_utc(moment: datetime) -> datetime:
    # the Brain Library hands back aware UTC datetimes; a spool written by hand may not
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
