"""DecisionEvent and EngineVote: the immutable record of every decision (the seed's schema).

One event per bar per active coin, hold included. Invariants are checked where the event is
built: ``net_edge_bps == expected_edge_bps - costs_bps``; ``regime`` and ``action`` are
:class:`~trading_core.types.Regime` / :class:`~trading_core.types.Action` (a plain string is
accepted and converted); timestamps are UTC-aware.

What the rest of the system reads is typed: ``reasons`` (reason codes), ``qty``, ``costs``
(:class:`EventCosts`), ``model_version``, ``release_id`` and ``mode``. ``metadata`` is a frozen
mapping of the extras only (edge source, agreement, timeframe, shadow, ...); a typed field's
name in it is refused.

Serialised form (:meth:`DecisionEvent.to_dict`, the Brain Library's payload and the spool): the
seed's layout, unchanged: the typed fields sit inside ``"metadata"`` next to the extras, so
stored events, ``coin-engine events query`` and every reader of ``payload["metadata"][...]``
keep working; :meth:`DecisionEvent.from_dict` reads that layout back (events written before
the fields were typed included).
"""

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast, get_args

from trading_core.types import Action, Regime

_EDGE_TOLERANCE_BPS = 1e-6
_ACTIONS: Final = frozenset(a.value for a in Action)
_REGIMES: Final = frozenset(r.value for r in Regime)

EventMode = Literal["paper", "shadow", "live", "backtest"]
EVENT_MODES: Final[tuple[str, ...]] = get_args(EventMode)
TYPED_METADATA_KEYS: Final = frozenset(
    {"reasons", "qty", "costs", "model_version", "release_id", "mode"}
)
"""Keys of the serialised ``"metadata"`` that are typed fields of :class:`DecisionEvent`."""


class FrozenMapping(Mapping[str, Any]):
    """A read-only mapping (picklable and deep-copyable, unlike ``types.MappingProxyType``)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"FrozenMapping({self._data!r})"


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
class EventCosts:
    """The cost breakdown a decision was priced with (bps of notional, round trip) and where
    the spread and slippage came from (``spread_fallback``: why the book was not used)."""

    fee_bps: float
    spread_bps: float
    slippage_bps: float
    funding_bps: float
    safety_bps: float
    spread_source: str = ""
    spread_fallback: str = ""
    slippage_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EventCosts":
        return cls(
            fee_bps=float(data["fee_bps"]),
            spread_bps=float(data["spread_bps"]),
            slippage_bps=float(data["slippage_bps"]),
            funding_bps=float(data["funding_bps"]),
            safety_bps=float(data["safety_bps"]),
            spread_source=str(data.get("spread_source") or ""),
            spread_fallback=str(data.get("spread_fallback") or ""),
            slippage_source=str(data.get("slippage_source") or ""),
        )


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    """The seed's DecisionEvent with its load-bearing fields typed (module docstring)."""

    timestamp: datetime
    symbol: str
    regime: Regime
    engine_votes: tuple[EngineVote, ...]
    consensus_score: float
    action: Action
    expected_edge_bps: float
    costs_bps: float
    net_edge_bps: float
    risk_preset: str
    reasons: tuple[str, ...] = ()
    qty: float = 0.0
    costs: EventCosts | None = None
    model_version: str | None = None
    release_id: int | None = None
    mode: EventMode | None = None
    metadata: Mapping[str, Any] = field(default_factory=FrozenMapping)

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None or self.timestamp.utcoffset() != UTC.utcoffset(None):
            raise ValueError(f"timestamp {self.timestamp!r} must be timezone-aware UTC")
        self._coerce_enums()
        expected_net = self.expected_edge_bps - self.costs_bps
        if abs(self.net_edge_bps - expected_net) > _EDGE_TOLERANCE_BPS:
            raise ValueError(
                f"net_edge_bps {self.net_edge_bps!r} must equal expected_edge_bps - costs_bps "
                f"= {expected_net!r}"
            )
        if not -1.0 <= self.consensus_score <= 1.0:
            raise ValueError(f"consensus_score {self.consensus_score!r} must be in [-1, 1]")
        if self.mode is not None and self.mode not in EVENT_MODES:
            raise ValueError(f"mode {self.mode!r}; allowed: {list(EVENT_MODES)} or None")
        if self.qty < 0.0:
            raise ValueError(f"qty {self.qty!r} must be >= 0 (the side is the action)")
        if isinstance(self.reasons, str) or not all(isinstance(r, str) for r in self.reasons):
            raise ValueError(f"reasons {self.reasons!r} must be a sequence of reason codes")
        if type(self.reasons) is not tuple:
            object.__setattr__(self, "reasons", tuple(self.reasons))
        self._freeze_extras()

    def _coerce_enums(self) -> None:
        """A plain string for ``action``/``regime`` becomes the enum (or is refused)."""
        if not isinstance(self.action, Action):
            if self.action not in _ACTIONS:
                raise ValueError(f"action {self.action!r}; allowed: buy, sell, hold")
            object.__setattr__(self, "action", Action(self.action))
        if not isinstance(self.regime, Regime):
            if self.regime not in _REGIMES:
                raise ValueError(f"regime {self.regime!r}; allowed: {sorted(_REGIMES)}")
            object.__setattr__(self, "regime", Regime(self.regime))

    def _freeze_extras(self) -> None:
        """``metadata`` holds extras only, frozen."""
        if not TYPED_METADATA_KEYS.isdisjoint(self.metadata):
            typed = sorted(TYPED_METADATA_KEYS.intersection(self.metadata))
            raise ValueError(
                f"metadata keys {typed} are typed fields of DecisionEvent; "
                "pass them as fields (metadata holds extras only)"
            )
        if not isinstance(self.metadata, FrozenMapping):
            object.__setattr__(self, "metadata", FrozenMapping(self.metadata))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data in the seed's layout (module docstring; timestamp ISO UTC)."""
        meta: dict[str, Any] = {"reasons": list(self.reasons), "qty": self.qty}
        if self.costs is not None:
            meta["costs"] = self.costs.to_dict()
        meta |= {
            "model_version": self.model_version,
            "release_id": self.release_id,
            "mode": self.mode,
        }
        meta |= dict(self.metadata)
        return {
            "timestamp": self.timestamp.isoformat(),
            "symbol": self.symbol,
            "regime": self.regime.value,
            "engine_votes": [asdict(v) for v in self.engine_votes],
            "consensus_score": self.consensus_score,
            "action": self.action.value,
            "expected_edge_bps": self.expected_edge_bps,
            "costs_bps": self.costs_bps,
            "net_edge_bps": self.net_edge_bps,
            "risk_preset": self.risk_preset,
            "metadata": meta,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DecisionEvent":
        """The event of :meth:`to_dict`'s layout (also events stored before the typed fields:
        the same layout, some typed keys absent)."""
        ts = data["timestamp"]
        timestamp = ts if isinstance(ts, datetime) else datetime.fromisoformat(ts)
        typed, extras = split_metadata(data.get("metadata") or {})
        return cls(
            timestamp=timestamp.astimezone(UTC),
            symbol=data["symbol"],
            regime=Regime(data["regime"]),
            engine_votes=tuple(EngineVote(**v) for v in data["engine_votes"]),
            consensus_score=float(data["consensus_score"]),
            action=Action(data["action"]),
            expected_edge_bps=float(data["expected_edge_bps"]),
            costs_bps=float(data["costs_bps"]),
            net_edge_bps=float(data["net_edge_bps"]),
            risk_preset=data["risk_preset"],
            metadata=extras,
            **typed,
        )


def split_metadata(meta: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(typed fields, extras)`` of a metadata mapping in the serialised layout: the typed
    keys (:data:`TYPED_METADATA_KEYS`) become :class:`DecisionEvent` keyword arguments."""
    extras = {k: v for k, v in meta.items() if k not in TYPED_METADATA_KEYS}
    typed: dict[str, Any] = {}
    if "reasons" in meta:
        typed["reasons"] = tuple(meta["reasons"] or ())
    if "qty" in meta:
        typed["qty"] = float(meta["qty"])
    if meta.get("costs") is not None:
        typed["costs"] = EventCosts.from_dict(meta["costs"])
    if meta.get("model_version") is not None:
        typed["model_version"] = str(meta["model_version"])
    if meta.get("release_id") is not None:
        typed["release_id"] = int(meta["release_id"])
    if meta.get("mode") is not None:
        typed["mode"] = cast(EventMode, str(meta["mode"]))
    return typed, extras
