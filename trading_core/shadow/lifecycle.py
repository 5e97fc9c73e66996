"""From recorded shadow periods to a verdict on a challenger (pure; the asset acts on it).

``collect_evidence`` joins the periods Hamilton recorded for one challenger against one
champion into paired series: periods measured against another champion (the key's production
model changed meanwhile) are left out, since the pair then compared different models; periods
that overlap (a day replayed twice) keep the one recorded last. ``review_challenger`` applies
:func:`trading_core.shadow.promotion.evaluate_challenger` (its module docstring states the
rules) with the test's duration taken as the bars observed times the bar length (days without
bars, e.g. while Hamilton was down, bring no evidence and do not count).
"""

import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from trading_core.brain.records import ShadowResult, parse_model_name
from trading_core.config.models import ShadowTestingSection
from trading_core.errors import InsufficientDataError
from trading_core.shadow.periods import ShadowPeriod
from trading_core.shadow.promotion import ShadowVerdict, evaluate_challenger
from trading_core.shadow.sharpe import MIN_SHARPE_PERIODS
from trading_core.types import bars_per_year

_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class ShadowEvidence:
    """One challenger's paired evidence against one champion, oldest bar first."""

    challenger: str
    champion: str | None
    periods: tuple[ShadowPeriod, ...]

    def __post_init__(self) -> None:
        widths = {p.bar_ms for p in self.periods}
        if len(widths) > 1:
            raise ValueError(f"periods of {self.challenger} mix bar lengths {sorted(widths)} ms")
        starts = [p.first_bar_open for p in self.periods]
        if starts != sorted(starts):
            raise ValueError("periods must be in time order")

    @property
    def n_bars(self) -> int:
        return sum(p.n_bars for p in self.periods)

    @property
    def duration_days(self) -> float:
        """Observed duration: bars times the bar length."""
        return sum(p.n_bars * p.bar_ms for p in self.periods) / _DAY_MS

    def series(self, name: str) -> np.ndarray:
        """One of champion_returns, challenger_returns, champion_trades, challenger_trades."""
        return np.array([v for p in self.periods for v in getattr(p, name)], dtype=np.float64)

    @property
    def first_bar_open(self) -> datetime | None:
        return self.periods[0].first_bar_open if self.periods else None

    @property
    def last_bar_close(self) -> datetime | None:
        if not self.periods:
            return None
        last = self.periods[-1]
        return last.last_bar_open + timedelta(milliseconds=last.bar_ms)


def collect_evidence(
    results: Iterable[ShadowResult], *, challenger: str, champion: str | None
) -> ShadowEvidence:
    """The periods of ``challenger`` measured against ``champion`` (module docstring)."""
    mine = [r for r in results if r.challenger == challenger and r.champion == champion]
    newest_first = sorted(mine, key=lambda r: r.recorded_at, reverse=True)
    kept: list[ShadowPeriod] = []
    for result in newest_first:
        period = ShadowPeriod.from_result(result)
        if not any(_overlap(period, other) for other in kept):
            kept.append(period)
    return ShadowEvidence(challenger, champion, tuple(sorted(kept, key=lambda p: p.first_bar_open)))


def _overlap(a: ShadowPeriod, b: ShadowPeriod) -> bool:
    return a.first_bar_open <= b.last_bar_open and b.first_bar_open <= a.last_bar_open


def review_seed(challenger: str) -> int:
    """A bootstrap seed fixed per challenger key and version (not its registration time), so
    the same evidence gives the same verdict on every run."""
    key, version, _ = parse_model_name(challenger)
    return zlib.crc32(f"{key.slug}_v{version}".encode())


def review_challenger(
    evidence: ShadowEvidence,
    *,
    section: ShadowTestingSection,
    timeframe: str,
    seed: int,
    sequential_looks: bool = True,
) -> ShadowVerdict:
    """Promote, wait or reject (see :mod:`trading_core.shadow.promotion`); too few bars for a
    Sharpe ratio, or a series without any movement, is "wait" (or "reject" once the maximum
    duration is reached) with the reason, never an error."""
    duration = evidence.duration_days
    if evidence.n_bars < MIN_SHARPE_PERIODS:
        why = f"only {evidence.n_bars} paired bars; at least {MIN_SHARPE_PERIODS} are needed"
        return _undecided(section, duration, why, evidence)
    try:
        return evaluate_challenger(
            evidence.series("champion_returns"),
            evidence.series("challenger_returns"),
            evidence.series("champion_trades"),
            evidence.series("challenger_trades"),
            section=section,
            bars_per_year=bars_per_year(timeframe),
            duration_days=duration,
            seed=seed,
            sequential_looks=sequential_looks,
        )
    except InsufficientDataError as exc:  # e.g. a book that never traded: constant returns
        return _undecided(section, duration, str(exc), evidence)


def _undecided(
    section: ShadowTestingSection, duration_days: float, why: str, evidence: ShadowEvidence
) -> ShadowVerdict:
    stats = {
        "duration_days": duration_days,
        "n_periods": float(evidence.n_bars),
        "n_trades_champion": float(evidence.series("champion_trades").size),
        "n_trades_challenger": float(evidence.series("challenger_trades").size),
    }
    if duration_days >= section.max_duration_days:
        ended = f"inconclusive: max duration {section.max_duration_days} days reached"
        return ShadowVerdict("reject", (ended, why), stats)
    return ShadowVerdict("wait", (why,), stats)


def audit_statistics(verdict: ShadowVerdict, evidence: ShadowEvidence) -> dict[str, Any]:
    """The verdict's figures as JSON data for the stage history (NaN and inf become None)."""
    first, last = evidence.first_bar_open, evidence.last_bar_close
    return {
        "decision": verdict.decision,
        "reasons": list(verdict.reasons),
        "challenger": evidence.challenger,
        "champion": evidence.champion,
        "periods": len(evidence.periods),
        "first_bar_open": None if first is None else first.isoformat(),
        "last_bar_close": None if last is None else last.isoformat(),
        **_json_floats(verdict.statistics),
    }


def _json_floats(values: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if math.isfinite(v) else None) for k, v in values.items()}


def verdict_reason(verdict: ShadowVerdict) -> str:
    """One line for the stage history: the decision and every reason behind it."""
    return f"shadow test: {verdict.decision}: " + "; ".join(verdict.reasons)
