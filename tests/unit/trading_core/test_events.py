"""The typed DecisionEvent: enums for regime and action, explicit load-bearing fields, frozen
extras, and the seed's serialised layout (events stored before the typing still load)."""

import copy
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from trading_core.events import DecisionEvent, EngineVote, EventCosts
from trading_core.types import Action, Regime

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)

# an event as Hamilton stored it before the fields were typed (spool line / Brain payload)
OLD_PAYLOAD: dict[str, Any] = {
    "timestamp": "2025-03-01T12:00:00+00:00",
    "symbol": "BTC/USDT",
    "regime": "TREND",
    "engine_votes": [
        {"engine": "trend_v1", "signal": 0.5, "confidence": 0.8, "weight": 1.0, "enabled": True}
    ],
    "consensus_score": 0.4,
    "action": "buy",
    "expected_edge_bps": 12.0,
    "costs_bps": 5.0,
    "net_edge_bps": 7.0,
    "risk_preset": "balanced",
    "metadata": {
        "reasons": ["consensus"],
        "qty": 0.25,
        "edge_source": "ml_brain",
        "agreement": 0.9,
        "consensus_confidence": 0.7,
        "costs": {
            "fee_bps": 2.0,
            "spread_bps": 1.0,
            "slippage_bps": 1.5,
            "funding_bps": 0.0,
            "safety_bps": 0.5,
            "spread_source": "book",
            "spread_fallback": "",
            "slippage_source": "model",
        },
        "model_version": "BTC_TREND_1h_v3",
        "release_id": 7,
        "mode": "paper",
        "timeframe": "1h",
        "ml_forecast_bps": 12.5,
    },
}


def _event(**overrides: Any) -> DecisionEvent:
    fields: dict[str, Any] = {
        "timestamp": T0,
        "symbol": "BTC/USDT",
        "regime": Regime.TREND,
        "engine_votes": (EngineVote("trend_v1", 0.5, 0.8, 1.0),),
        "consensus_score": 0.4,
        "action": Action.BUY,
        "expected_edge_bps": 12.0,
        "costs_bps": 5.0,
        "net_edge_bps": 7.0,
        "risk_preset": "balanced",
    }
    return DecisionEvent(**(fields | overrides))


def test_old_payload_loads_typed_and_serialises_to_the_same_data() -> None:
    event = DecisionEvent.from_dict(OLD_PAYLOAD)
    assert event.regime is Regime.TREND and event.action is Action.BUY
    assert (event.reasons, event.qty, event.release_id) == (("consensus",), 0.25, 7)
    assert (event.model_version, event.mode) == ("BTC_TREND_1h_v3", "paper")
    assert event.costs == EventCosts(2.0, 1.0, 1.5, 0.0, 0.5, "book", "", "model")
    assert dict(event.metadata) == {
        "edge_source": "ml_brain",
        "agreement": 0.9,
        "consensus_confidence": 0.7,
        "timeframe": "1h",
        "ml_forecast_bps": 12.5,
    }
    assert event.to_dict() == OLD_PAYLOAD
    assert DecisionEvent.from_dict(event.to_dict()) == event


def test_payload_without_typed_keys_loads_with_defaults() -> None:
    bare = {**OLD_PAYLOAD, "metadata": {"model_version": None}}
    event = DecisionEvent.from_dict(bare)
    assert (event.reasons, event.qty, event.costs, event.model_version) == ((), 0.0, None, None)
    assert dict(event.metadata) == {}


def test_plain_strings_for_regime_and_action_become_enums() -> None:
    event = _event(regime="RANGE", action="hold", expected_edge_bps=5.0, net_edge_bps=0.0)
    assert event.regime is Regime.RANGE and event.action is Action.HOLD
    assert event.to_dict()["regime"] == "RANGE" and event.to_dict()["action"] == "hold"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"action": "short"}, "action 'short'"),
        ({"regime": "BULL"}, "regime 'BULL'"),
        ({"mode": "demo"}, "mode 'demo'"),
        ({"qty": -1.0}, "qty -1.0"),
        ({"reasons": "consensus"}, "reason codes"),
        ({"metadata": {"release_id": 3}}, "typed fields"),
        ({"net_edge_bps": 9.0}, "net_edge_bps"),
    ],
)
def test_invalid_event_refused_with_value_named(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        _event(**overrides)


def test_metadata_frozen_but_picklable_and_copyable() -> None:
    event = _event(metadata={"timeframe": "1h"})
    with pytest.raises(TypeError):
        event.metadata["timeframe"] = "4h"  # type: ignore[index]
    assert pickle.loads(pickle.dumps(event)) == event  # noqa: S301 - our own bytes
    assert copy.deepcopy(event) == event
