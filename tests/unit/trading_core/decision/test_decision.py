"""The decision step: each branch of the flow, position semantics, event and fill helpers."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from trading_core.config.models import EngineConfig
from trading_core.consensus import ConsensusResult
from trading_core.costs import BookStatus, BookTop
from trading_core.decision import (
    BarInputs,
    ConsensusRow,
    Decision,
    DecisionConfig,
    EventOrigin,
    consensus_row,
    decide_bar,
    decision_event,
    paper_fill,
)
from trading_core.events import EngineVote
from trading_core.risk import DenialReason, Position, RiskEnforcer, RiskState, TradingState
from trading_core.types import Action, Regime

OPEN = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
SYMBOL = "ETH/USDT"
CONFIG = DecisionConfig.from_engine_config(EngineConfig(), timeframe="1h")
ENFORCER = RiskEnforcer(CONFIG.limits)


def _inputs(
    action: Action = Action.BUY,
    *,
    score: float = 0.8,
    confidence: float = 0.9,
    forecast_bps: float = 100.0,
    regime: Regime = Regime.TREND,
    **overrides: object,
) -> BarInputs:
    base = BarInputs(
        timestamp=OPEN,
        decided_at=OPEN + timedelta(hours=1),
        symbol=SYMBOL,
        regime=regime,
        consensus=ConsensusRow(score, 0.9, confidence, action),
        expected_return_bps=forecast_bps,
        price=2_000.0,
        atr=20.0,
        volatility_bps=50.0,
        bar_volume=5_000.0,
        candle_spread_bps=2.0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def _state(position_qty: float = 0.0, bars_held: int = 0, **overrides: object) -> RiskState:
    state = ENFORCER.initial_state(100_000.0, OPEN)
    if position_qty:
        held = Position(position_qty, 2_000.0, 2_000.0, bars_held)
        state = replace(state.with_position(SYMBOL, held), cash_usd=100_000.0 - position_qty * 2e3)
    return replace(state, **overrides)  # type: ignore[arg-type]


def _decide(inputs: BarInputs, state: RiskState | None = None) -> tuple[Decision, RiskState]:
    return decide_bar(inputs, state or _state(), config=CONFIG)


def test_open_long_sizes_from_risk_and_passes_cost_check() -> None:
    decision, state = _decide(_inputs())
    # 1 % of 100k over a 2 x ATR = 40 stop -> 25 ETH = 50k, capped at 25 % of equity -> 12.5
    assert decision.action is Action.BUY
    assert decision.qty == pytest.approx(12.5)
    assert decision.reasons == ("opened", "max_position")
    assert decision.net_edge_bps == pytest.approx(decision.expected_edge_bps - decision.costs_bps)
    assert decision.expected_edge_bps == pytest.approx(100.0)
    assert len(state.recent_order_times_ms) == 1


def test_sell_when_flat_opens_a_short_on_perps_but_not_on_spot() -> None:
    decision, _ = _decide(_inputs(Action.SELL, score=-0.8, forecast_bps=-100.0))
    assert decision.action is Action.SELL
    spot = replace(CONFIG, allow_short=False)
    held, _ = decide_bar(
        _inputs(Action.SELL, score=-0.8, forecast_bps=-100.0), _state(), config=spot
    )
    assert (held.action, held.reasons) == (Action.HOLD, ("short_not_allowed",))


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        (
            _inputs(data_valid=False, invalid_reason="stale: 3 bars"),
            ("data_invalid", "stale: 3 bars"),
        ),
        (_inputs(regime=Regime.ILLIQUID), ("illiquid",)),
        (_inputs(Action.HOLD), ("consensus_hold",)),
        (_inputs(forecast_bps=10.0), ("edge_below_cost",)),
        (_inputs(forecast_bps=-100.0), ("edge_below_cost",)),
        (_inputs(volatility_bps=float("nan")), ("cost_unavailable",)),
        (_inputs(confidence=0.3), ("risk_denied", "min_confidence")),
        (_inputs(atr=0.0), ("risk_denied", "zero_size")),
    ],
)
def test_hold_branches_give_their_reason(inputs: BarInputs, reason: tuple[str, ...]) -> None:
    decision, state = _decide(inputs)
    assert decision.action is Action.HOLD
    assert decision.qty == 0.0
    assert decision.reasons == reason
    assert state.recent_order_times_ms == ()


def test_daily_loss_halt_denies_new_risk() -> None:
    decision, _ = _decide(_inputs(), _state(trading_state=TradingState.HALTED))
    assert decision.reasons == ("risk_denied", "daily_loss_halt")
    assert decision.denial is DenialReason.DAILY_LOSS_HALT


def test_same_side_signal_renews_without_adding() -> None:
    decision, state = _decide(_inputs(), _state(position_qty=5.0, bars_held=3))
    assert (decision.action, decision.reasons) == (Action.HOLD, ("position_renewed",))
    assert state.positions[SYMBOL].bars_held == 0


def test_position_is_held_then_closed_when_the_horizon_elapses() -> None:
    holding = CONFIG.holding_bars
    decision, state = _decide(_inputs(Action.HOLD), _state(5.0, bars_held=holding - 2))
    assert decision.reasons == ("position_held",)
    assert state.positions[SYMBOL].bars_held == holding - 1
    decision, _ = _decide(_inputs(Action.HOLD), state)
    assert decision.action is Action.SELL
    assert decision.qty == pytest.approx(5.0)
    assert decision.reasons == ("closed_holding_elapsed",)


def test_weak_same_side_signal_does_not_renew() -> None:
    decision, _ = _decide(_inputs(forecast_bps=5.0), _state(5.0, bars_held=CONFIG.holding_bars))
    assert decision.reasons == ("closed_holding_elapsed",)


def test_opposite_signal_flips_when_worth_it_else_only_closes() -> None:
    flip, _ = _decide(_inputs(Action.SELL, score=-0.8, forecast_bps=-100.0), _state(5.0))
    assert (flip.action, flip.reasons[0]) == (Action.SELL, "flipped")
    assert flip.qty == pytest.approx(5.0 + 12.5)
    close, _ = _decide(_inputs(Action.SELL, score=-0.8, forecast_bps=-5.0), _state(5.0))
    assert (close.action, close.reasons) == (Action.SELL, ("closed_opposite_signal",))
    assert close.qty == pytest.approx(5.0)


def test_reducing_state_turns_a_flip_into_a_close() -> None:
    decision, _ = _decide(
        _inputs(Action.SELL, score=-0.8, forecast_bps=-100.0),
        _state(5.0, trading_state=TradingState.REDUCING),
    )
    assert decision.qty == pytest.approx(5.0)
    assert decision.reasons == ("closed_opposite_signal", "reducing_only")


def test_live_book_spread_is_used_when_given() -> None:
    wide = BookTop(best_bid=1_990.0, best_ask=2_010.0)  # 100 bps
    narrow, _ = _decide(_inputs())
    widened, _ = _decide(_inputs(book=wide))
    assert widened.costs.spread_bps == pytest.approx(100.0)
    assert narrow.costs.spread_bps == pytest.approx(2.0)


def test_mark_accrues_funding_and_rolls_the_day() -> None:
    state = _state(5.0)
    _, after = _decide(_inputs(Action.HOLD, price=2_000.0), state)
    funding = 5.0 * 2_000.0 * 1.0e-4 / 8.0  # 1 bps per 8 h for one hour
    assert after.cash_usd == pytest.approx(state.cash_usd - funding)
    tomorrow = _inputs(Action.HOLD, decided_at=OPEN + timedelta(days=1))
    _, rolled = _decide(tomorrow, after)
    assert rolled.day == (OPEN + timedelta(days=1)).date()


def test_paper_fill_prices_the_half_spread_and_slippage() -> None:
    decision, _ = _decide(_inputs())
    fill = paper_fill(decision, 2_000.0, OPEN)
    assert fill is not None
    assert fill.price == pytest.approx(2_000.0 * (1 + decision.fill_price_adjust_bps * 1e-4))
    assert fill.fee_usd == pytest.approx(decision.qty * fill.price * 4e-4)
    hold, _ = _decide(_inputs(Action.HOLD))
    assert paper_fill(hold, 2_000.0, OPEN) is None


def test_decision_event_carries_votes_reasons_and_costs() -> None:
    votes = (EngineVote("trend_v1", 0.8, 0.9, 0.4), EngineVote("breakout", 0.6, 0.7, 0.3))
    inputs = _inputs(consensus=ConsensusRow(0.8, 0.9, 0.9, Action.BUY, votes))
    decision, _ = _decide(inputs)
    event = decision_event(
        decision, inputs, risk_preset="balanced", origin=EventOrigin(extras={"release": "r1"})
    )
    assert event.action == "buy"
    assert event.engine_votes == votes
    assert event.reasons == decision.reasons
    assert event.net_edge_bps == pytest.approx(event.expected_edge_bps - event.costs_bps)
    assert event.metadata["release"] == "r1"
    assert event.costs is not None and event.costs.fee_bps == 8.0
    assert type(event).from_dict(event.to_dict()) == event


def test_decision_event_origin_fills_the_typed_fields_and_refuses_typed_extras() -> None:
    inputs = _inputs(Action.BUY)
    decision, _ = _decide(inputs)
    origin = EventOrigin(release_id=7, mode="shadow", extras={"timeframe": "1h"})
    event = decision_event(
        decision, inputs, risk_preset="balanced", model_version="BTC_TREND_1h@v2",
        origin=origin.with_extras(shadow=True), extras={"ml_forecast_bps": 12.5},
    )  # fmt: skip
    assert (event.release_id, event.mode, event.model_version) == (7, "shadow", "BTC_TREND_1h@v2")
    assert dict(event.metadata) == {
        "edge_source": inputs.edge_source,
        "agreement": inputs.consensus.agreement,
        "consensus_confidence": inputs.consensus.confidence,
        "timeframe": "1h",
        "shadow": True,
        "ml_forecast_bps": 12.5,
    }
    assert origin.extras == {"timeframe": "1h"}  # with_extras copies
    with pytest.raises(ValueError, match="release_id"):
        EventOrigin(extras={"release_id": 7})


def test_consensus_row_reads_one_bar_of_a_vectorized_result() -> None:
    result = ConsensusResult(
        score=np.array([0.1, -0.7]),
        agreement=np.array([0.5, 0.9]),
        confidence=np.array([0.2, 0.8]),
        action=np.array([0, -1], dtype=np.int8),
        weights=np.zeros((2, 1)),
    )
    row = consensus_row(result, 1)
    assert (row.score, row.agreement, row.confidence, row.action) == (-0.7, 0.9, 0.8, Action.SELL)


def test_invalid_inputs_are_rejected_with_a_reason() -> None:
    with pytest.raises(ValueError, match="invalid_reason"):
        _inputs(data_valid=False)
    with pytest.raises(ValueError, match="NaN"):
        _inputs(forecast_bps=float("nan"))
    with pytest.raises(ValueError, match="UTC"):
        _inputs(decided_at=datetime(2026, 1, 1))  # noqa: DTZ001


def test_book_levels_price_the_slippage_where_they_cover_the_order() -> None:
    model, _ = _decide(_inputs())
    assert model.action is Action.BUY and model.slippage_source == "model"
    qty = model.qty
    # asks: half the order at the touch, the rest 2 ticks (10 bps of 2000) higher
    asks = ((2_000.2, qty / 2), (2_002.2, qty))
    book = BookTop(1_999.8, 2_000.2, bids=((1_999.8, 10 * qty),), asks=asks)
    booked, _ = _decide(_inputs(book=book, book_status=BookStatus.FRESH))
    assert booked.slippage_source == "book"
    walk_bps = ((2_000.2 + 2_002.2) / 2 - 2_000.2) / 2_000.0 * 1e4  # 5 bps beyond the touch
    assert booked.qty == pytest.approx(qty)
    assert booked.fill_price_adjust_bps == pytest.approx(1.0 + walk_bps)  # half-spread + walk
    assert booked.costs.slippage_bps == pytest.approx(2 * walk_bps)  # both legs
    shallow = BookTop(1_999.8, 2_000.2, bids=((1_999.8, 1e-6),), asks=((2_000.2, 1e-6),))
    thin, _ = _decide(_inputs(book=shallow, book_status=BookStatus.FRESH))
    assert thin.slippage_source == "model"  # the visible depth cannot fill it: square-root law
    assert thin.costs.slippage_bps == pytest.approx(model.costs.slippage_bps)


def test_book_levels_out_of_order_or_empty_sized_are_refused() -> None:
    with pytest.raises(ValueError, match="best first"):
        BookTop(99.0, 101.0, asks=((102.0, 1.0), (101.0, 1.0)))
    with pytest.raises(ValueError, match="sizes"):
        BookTop(99.0, 101.0, bids=((99.0, 0.0),))
