"""Plain, frozen records the Brain Library hands out (never ORM rows, which are session-bound).

A model version is named ``{coin}_{regime}_{timeframe}_v{version}_{YYYYMMDD_HHMMSS}`` (the
seed's convention, e.g. ``BTC_TREND_1h_v1_20250115_020000``); the timestamp is its UTC
``created_at``.
"""

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final, Literal

from trading_core.errors import DataValidationError
from trading_core.types import TIMEFRAMES, Regime, Stage

_COIN = re.compile(r"^[A-Z0-9]{1,20}$")
_NAME = re.compile(
    r"^(?P<coin>[A-Z0-9]{1,20})_(?P<regime>[A-Z]+)_(?P<timeframe>\d+[mhd])"
    r"_v(?P<version>[1-9]\d*)_(?P<stamp>\d{8}_\d{6})$"
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
NAME_TIME_FORMAT: Final = "%Y%m%d_%H%M%S"
ARTIFACT_FORMATS: Final[tuple[str, ...]] = ("ubj", "json")
ReleaseRole = Literal["production", "shadow"]


def require_utc(value: datetime, what: str) -> datetime:
    """``value`` if it is timezone-aware UTC; otherwise a DataValidationError quoting it."""
    if value.tzinfo is None or value.utcoffset() != UTC.utcoffset(None):
        raise DataValidationError(f"{what} {value!r} must be a timezone-aware UTC datetime")
    return value


def require_sha256(value: str) -> str:
    if not _SHA256.match(value):
        raise DataValidationError(f"sha256 {value!r} must be 64 lowercase hex digits")
    return value


def canonical_json(value: Any, what: str) -> str:
    """Sorted, compact JSON; NaN/inf are refused (PostgreSQL's json type rejects them)."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"{what} must be JSON data without NaN/inf: {exc}") from exc


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True, order=True)
class ModelKey:
    """What one model is trained for: a coin, a regime and a bar timeframe."""

    coin: str
    regime: str
    timeframe: str

    def __post_init__(self) -> None:
        if not _COIN.match(self.coin):
            raise DataValidationError(f"coin {self.coin!r} must be 1-20 uppercase letters/digits")
        if self.regime not in {r.value for r in Regime}:
            raise DataValidationError(
                f"regime {self.regime!r}; allowed: {[r.value for r in Regime]}"
            )
        if self.timeframe not in TIMEFRAMES:
            raise DataValidationError(f"timeframe {self.timeframe!r}; allowed: {list(TIMEFRAMES)}")

    @property
    def slug(self) -> str:
        return f"{self.coin}_{self.regime}_{self.timeframe}"

    @classmethod
    def parse(cls, slug: str) -> "ModelKey":
        """``"BTC_TREND_1h"`` -> ModelKey; a DataValidationError quotes anything else."""
        parts = slug.split("_")
        if len(parts) != 3:
            raise DataValidationError(
                f"model key {slug!r} must look like COIN_REGIME_TIMEFRAME (BTC_TREND_1h)"
            )
        return cls(*parts)


def model_name(key: ModelKey, version: int, created_at: datetime) -> str:
    """The seed's name: ``BTC_TREND_1h_v1_20250115_020000``."""
    if version < 1:
        raise ValueError(f"version {version!r} must be >= 1")
    stamp = require_utc(created_at, "created_at").strftime(NAME_TIME_FORMAT)
    return f"{key.slug}_v{version}_{stamp}"


def parse_model_name(name: str) -> tuple[ModelKey, int, datetime]:
    """Inverse of :func:`model_name`: (key, version, created_at to the second)."""
    match = _NAME.match(name)
    if match is None:
        raise DataValidationError(
            f"model name {name!r} must look like COIN_REGIME_TIMEFRAME_vN_YYYYMMDD_HHMMSS "
            "(e.g. BTC_TREND_1h_v1_20250115_020000)"
        )
    key = ModelKey(match["coin"], match["regime"], match["timeframe"])
    stamp = datetime.strptime(match["stamp"], NAME_TIME_FORMAT).replace(tzinfo=UTC)
    return key, int(match["version"]), stamp


def finite_floats(values: Mapping[str, Any], what: str) -> dict[str, float]:
    """A copy of ``values`` as floats; refuses NaN, inf and non-numbers, naming the key."""
    out: dict[str, float] = {}
    for name, value in values.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise DataValidationError(f"{what}[{name!r}] = {value!r} must be a finite number")
        out[str(name)] = float(value)
    return out


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered model. ``role`` is set only when listed as part of a release."""

    name: str
    key: ModelKey
    version: int
    created_at: datetime
    stage: Stage
    metrics: Mapping[str, float]
    params: Mapping[str, Any]
    feature_list: tuple[str, ...]
    training_data_hash: str
    artifact_sha256: str
    artifact_uri: str
    artifact_format: str
    artifact_size_bytes: int
    partition_date: date
    reliability: Mapping[str, float] | None = None
    correlation: Mapping[str, Mapping[str, float]] | None = None
    role: ReleaseRole | None = None
    validation: Mapping[str, Any] | None = None
    serving_tables: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StageChange:
    """One line of the audit trail: who moved which model from where to where, when and why."""

    model_name: str
    from_stage: Stage | None
    to_stage: Stage
    actor: str
    reason: str
    at: datetime
    statistics: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Release:
    """The daily push Hamilton follows: which versions serve (production) or shadow."""

    id: int
    release_date: date
    created_at: datetime
    created_by: str
    parent_id: int | None
    rollback_of_id: int | None
    note: str
    content_sha256: str
    production: tuple[str, ...]
    shadow: tuple[str, ...]
    gates: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    """An artifact that is missing or whose bytes no longer hash to the recorded sha256."""

    model_name: str
    artifact_sha256: str
    problem: Literal["missing", "corrupt"]
    detail: str


@dataclass(frozen=True, slots=True)
class EngineReliability:
    """Out-of-sample reliability of one engine for one key (consensus weights)."""

    engine: str
    reliability: float
    hit_rate: float
    n_obs: int
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        finite_floats({"reliability": self.reliability, "hit_rate": self.hit_rate}, self.engine)
        if self.reliability < 0.0:
            raise DataValidationError(
                f"engine {self.engine!r}: reliability {self.reliability!r} must be >= 0"
            )
        if not 0.0 <= self.hit_rate <= 1.0:
            raise DataValidationError(
                f"engine {self.engine!r}: hit_rate {self.hit_rate!r} must be in [0, 1]"
            )
        if self.n_obs < 0:
            raise DataValidationError(f"engine {self.engine!r}: n_obs {self.n_obs!r} must be >= 0")


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """A challenger's shadow period against the champion, with the statistics that decided it."""

    key: ModelKey
    challenger: str
    champion: str | None
    period_start: datetime
    period_end: datetime
    challenger_returns: tuple[float, ...]
    champion_returns: tuple[float, ...]
    statistics: Mapping[str, Any]
    decision: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class RegimeGateOverride:
    """Engines switched on/off for one regime from ``week_start`` on (an audited decision)."""

    week_start: date
    regime: str
    enabled_engines: tuple[str, ...]
    disabled_engines: tuple[str, ...]
    actor: str
    reason: str
    created_at: datetime
    weight_multipliers: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.week_start.weekday() != 0:
            raise DataValidationError(f"week_start {self.week_start} must be a Monday")
        if self.regime not in {r.value for r in Regime}:
            raise DataValidationError(
                f"regime {self.regime!r}; allowed: {[r.value for r in Regime]}"
            )
        both = sorted(set(self.enabled_engines) & set(self.disabled_engines))
        if both:
            raise DataValidationError(
                f"engines {both} are both enabled and disabled; list each once"
            )
