"""DecisionEvent and EngineVote: the immutable record of every decision (the seed's schema).

One event per bar per active coin, hold included. Invariants are checked where the event is
built: ``net_edge_bps == expected_edge_bps - costs_bps``; the action is one of buy/sell/hold;
timestamps are UTC-aware.
"""

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from trading_core.types import Action, Regime

_EDGE_TOLERANCE_BPS = 1e-6


@dataclass(frozen=True, slots=True)
class EngineVote:
    """One engine's say on one bar: signal in [-1, 1], confidence in [0, 1], its weight."""

    engine: str
    signal: float
    confidence: float
    weight: float = 0.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if not -1.0 <= self.signal <= 1.0 or math.isnan(self.signal):
            raise ValueError(f"engine {self.engine!r}: signal {self.signal!r} must be in [-1, 1]")
        if not 0.0 <= self.confidence <= 1.0 or math.isnan(self.confidence):
            raise ValueError(
                f"engine {self.engine!r}: confidence {self.confidence!r} must be in [0, 1]"
            )
        if self.weight < 0.0 or math.isnan(self.weight):
            raise ValueError(f"engine {self.engine!r}: weight {self.weight!r} must be >= 0")


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    """The seed's DecisionEvent. ``metadata`` carries model versions, release id, reasons."""

    timestamp: datetime
    symbol: str
    regime: str
    engine_votes: tuple[EngineVote, ...]
    consensus_score: float
    action: str
    expected_edge_bps: float
    costs_bps: float
    net_edge_bps: float
    risk_preset: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None or self.timestamp.utcoffset() != UTC.utcoffset(None):
            raise ValueError(f"timestamp {self.timestamp!r} must be timezone-aware UTC")
        if self.action not in {a.value for a in Action}:
            raise ValueError(f"action {self.action!r}; allowed: buy, sell, hold")
        if self.regime not in {r.value for r in Regime}:
            raise ValueError(f"regime {self.regime!r}; allowed: {[r.value for r in Regime]}")
        expected_net = self.expected_edge_bps - self.costs_bps
        if abs(self.net_edge_bps - expected_net) > _EDGE_TOLERANCE_BPS:
            raise ValueError(
                f"net_edge_bps {self.net_edge_bps!r} must equal expected_edge_bps - costs_bps "
                f"= {expected_net!r}"
            )
        if not -1.0 <= self.consensus_score <= 1.0:
            raise ValueError(f"consensus_score {self.consensus_score!r} must be in [-1, 1]")

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("reasons", ()))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (timestamp as ISO-8601 UTC)."""
        data = asdict(self)
        data["timestamp"] = self.timestamp.isoformat()
        data["engine_votes"] = [asdict(v) for v in self.engine_votes]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DecisionEvent":
        ts = data["timestamp"]
        timestamp = ts if isinstance(ts, datetime) else datetime.fromisoformat(ts)
        return cls(
            timestamp=timestamp.astimezone(UTC),
            symbol=data["symbol"],
            regime=data["regime"],
            engine_votes=tuple(EngineVote(**v) for v in data["engine_votes"]),
            consensus_score=float(data["consensus_score"]),
            action=data["action"],
            expected_edge_bps=float(data["expected_edge_bps"]),
            costs_bps=float(data["costs_bps"]),
            net_edge_bps=float(data["net_edge_bps"]),
            risk_preset=data["risk_preset"],
            metadata=dict(data.get("metadata") or {}),
        )
