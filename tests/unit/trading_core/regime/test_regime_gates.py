"""Regime gates (hard and soft), overrides, the engine leaderboard and auto-gating."""

from typing import Any

import numpy as np
import polars as pl
import pytest

from trading_core.config.models import RegimeGate, RegimeGatesSection
from trading_core.engines import ENGINE_NAMES
from trading_core.errors import ConfigError
from trading_core.regime import LEADERBOARD_SCHEMA, RegimeGates, auto_gate, engine_leaderboard
from trading_core.types import REGIME_CODES, Regime

T, R, P, ILQ = (
    REGIME_CODES[r] for r in (Regime.TREND, Regime.RANGE, Regime.PANIC, Regime.ILLIQUID)
)


def _voting(gates: RegimeGates, regime: Regime) -> set[str]:
    return {n for n, on in zip(gates.engine_names, gates.enabled_mask(regime), strict=True) if on}


def test_default_config_enables_exactly_the_seed_lists() -> None:
    gates = RegimeGates.from_config(RegimeGatesSection())
    # the seed's lists plus the learned engine (config adds ml_brain to each tradable regime)
    assert _voting(gates, Regime.TREND) == {"trend_v1", "trend_v2", "breakout", "momentum",
                                            "ml_brain"}  # fmt: skip
    assert _voting(gates, Regime.RANGE) == {"mean_reversion", "range_trading",
                                            "support_resistance", "ml_brain"}  # fmt: skip
    assert _voting(gates, Regime.PANIC) == {"scalping", "volatility", "liquidity", "ml_brain"}
    assert _voting(gates, Regime.ILLIQUID) == set()


def test_empty_enabled_list_lets_all_but_disabled_vote() -> None:
    section = RegimeGatesSection(TREND=RegimeGate(disabled_engines=("trend_v1", "macd")))
    voting = _voting(RegimeGates.from_config(section), Regime.TREND)
    assert voting == set(ENGINE_NAMES) - {"trend_v1", "macd"}


def test_gates_switched_off_open_everything_but_illiquid() -> None:
    gates = RegimeGates.from_config(RegimeGatesSection(enabled=False))
    for regime in (Regime.TREND, Regime.RANGE, Regime.PANIC):
        assert gates.enabled_mask(regime).all()
        np.testing.assert_array_equal(gates.weight_multipliers(regime), 1.0)
    assert not gates.enabled_mask(Regime.ILLIQUID).any()


def test_soft_weights_combine_config_and_off_regime_multiplier() -> None:
    section = RegimeGatesSection(
        RANGE=RegimeGate(weight_multipliers={"mean_reversion": 2.0, "trend_v1": 3.0})
    )
    gates = RegimeGates.from_config(section, off_regime_multiplier=0.25)
    weights = dict(zip(ENGINE_NAMES, gates.weight_multipliers(Regime.RANGE), strict=True))
    assert weights["mean_reversion"] == 2.0  # home regime RANGE
    assert weights["trend_v1"] == 3.0 * 0.25  # declared for TREND only
    assert weights["rsi_oscillator"] == 1.0
    assert weights["momentum"] == 0.25
    effective = gates.effective_weights(Regime.RANGE)
    assert effective[ENGINE_NAMES.index("trend_v1")] == 0.75
    section_allow = RegimeGatesSection()
    allow = RegimeGates.from_config(section_allow).effective_weights(Regime.RANGE)
    assert allow[ENGINE_NAMES.index("trend_v1")] == 0.0


def test_masks_and_weights_are_read_only() -> None:
    gates = RegimeGates.from_config(RegimeGatesSection())
    with pytest.raises(ValueError, match="read-only"):
        gates.enabled_mask(Regime.TREND)[0] = False
    with pytest.raises(ValueError, match="read-only"):
        gates.weight_multipliers(Regime.TREND)[0] = 9.0


@pytest.mark.parametrize(
    ("section", "where"),
    [
        (RegimeGatesSection(TREND=RegimeGate(enabled_engines=("trend_v9",))), "TREND.enabled"),
        (RegimeGatesSection(PANIC=RegimeGate(disabled_engines=("nope",))), "PANIC.disabled"),
        (RegimeGatesSection(RANGE=RegimeGate(weight_multipliers={"x": 1.0})), "RANGE.weight"),
        (RegimeGatesSection(ILLIQUID=RegimeGate(disabled_engines=("zz",))), "ILLIQUID.disabled"),
    ],
)
def test_unknown_engine_in_config_raises_config_error_naming_it(
    section: RegimeGatesSection, where: str
) -> None:
    with pytest.raises(ConfigError, match=rf"regime_gates\.{where}.*not a registered.*allowed"):
        RegimeGates.from_config(section)


def test_names_outside_registry_need_declared_regimes() -> None:
    section = RegimeGatesSection(
        TREND=RegimeGate(), RANGE=RegimeGate(), PANIC=RegimeGate(), ILLIQUID=RegimeGate()
    )
    with pytest.raises(ConfigError, match="not registered"):
        RegimeGates.from_config(section, ("a", "b"))
    gates = RegimeGates.from_config(
        section, ("a", "b"), engine_regimes={"a": (Regime.TREND,), "b": (Regime.RANGE,)}
    )
    np.testing.assert_array_equal(gates.weight_multipliers(Regime.TREND), [1.0, 0.5])


def test_override_replaces_lists_and_moves_engines_between_them() -> None:
    gates = RegimeGates.from_config(RegimeGatesSection())
    new = gates.with_overrides({"TREND": {"enabled_engines": ["macd", "mean_reversion"]}})
    assert _voting(new, Regime.TREND) == {"macd", "mean_reversion"}
    assert "mean_reversion" not in new.gate(Regime.TREND).disabled_engines
    assert "range_trading" in new.gate(Regime.TREND).disabled_engines
    assert _voting(gates, Regime.TREND) == {
        "trend_v1", "trend_v2", "breakout", "momentum", "ml_brain"
    }  # fmt: skip
    off = new.with_overrides({"enabled": False})
    assert off.enabled_mask(Regime.RANGE).all()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"SIDEWAYS": {}}, "override key 'SIDEWAYS' is unknown"),
        ({"TREND": {"enabled": ["macd"]}}, "keys \\['enabled'\\] unknown"),
        ({"TREND": ["macd"]}, "must be a mapping"),
        ({"ILLIQUID": {"enabled_engines": ["macd"]}}, "invalid"),
        ({"RANGE": {"enabled_engines": ["ghost"]}}, "ghost"),
        ({"RANGE": {"enabled_engines": ["macd"], "disabled_engines": ["macd"]}}, "invalid"),
    ],
)
def test_bad_override_raises_config_error(payload: dict[str, Any], message: str) -> None:
    gates = RegimeGates.from_config(RegimeGatesSection())
    with pytest.raises(ConfigError, match=message):
        gates.with_overrides(payload)


# --- leaderboard ----------------------------------------------------------------------------


def _small_board(window_bars: int = 100) -> pl.DataFrame:
    signals = np.array([[0.5, 0.0], [1.0, -1.0], [-0.5, 0.2], [0.2, 0.2], [0.3, -0.1], [0.9, 0.9]])
    regimes = np.array([T, T, T, R, R, ILQ], dtype=np.int8)
    forward = np.array([10.0, -20.0, -5.0, 4.0, np.nan, 7.0])
    return engine_leaderboard(signals, regimes, forward, ["a", "b"], window_bars=window_bars)


def test_leaderboard_known_answers() -> None:
    board = _small_board()
    assert board.schema == pl.Schema(LEADERBOARD_SCHEMA)
    rows = {(r["regime"], r["engine"]): r for r in board.iter_rows(named=True)}
    # TREND, engine a: votes on bars 0,1,2; hits on 0 (+,+) and 2 (-,-); pnl 5 - 20 + 2.5
    assert rows[("TREND", "a")]["n_votes"] == 3
    assert rows[("TREND", "a")]["hit_rate"] == pytest.approx(2 / 3)
    assert rows[("TREND", "a")]["pnl_contribution_bps"] == pytest.approx(-12.5)
    # engine b: votes on bars 1 and 2 (bar 0 is silent); hits on 1; pnl 20 - 1
    assert rows[("TREND", "b")]["n_votes"] == 2
    assert rows[("TREND", "b")]["hit_rate"] == pytest.approx(0.5)
    assert rows[("TREND", "b")]["pnl_contribution_bps"] == pytest.approx(19.0)
    assert rows[("TREND", "b")]["rank"] == 1 and rows[("TREND", "a")]["rank"] == 2
    # RANGE: bar 4's forward return is unknown, so one vote each
    assert rows[("RANGE", "a")]["n_votes"] == 1 and rows[("RANGE", "b")]["n_votes"] == 1
    # PANIC: no bars at all
    assert rows[("PANIC", "a")]["n_votes"] == 0 and rows[("PANIC", "a")]["hit_rate"] is None
    assert board["regime"].to_list()[:2] == ["TREND", "TREND"]
    assert board.height == 8


def test_leaderboard_uses_only_the_trailing_window() -> None:
    board = _small_board(window_bars=3)
    rows = {(r["regime"], r["engine"]): r for r in board.iter_rows(named=True)}
    assert rows[("TREND", "a")]["n_votes"] == 0
    assert rows[("RANGE", "a")]["n_votes"] == 1 and rows[("ILLIQUID", "a")]["n_votes"] == 1


@pytest.mark.parametrize(
    ("signals", "regimes", "forward", "window", "message"),
    [
        (np.zeros((3, 3)), np.zeros(3), np.zeros(3), 5, "signals shape"),
        (np.zeros((3, 2)), np.zeros(2), np.zeros(3), 5, "regimes"),
        (np.zeros((3, 2)), np.zeros(3), np.zeros(3), 0, "window_bars"),
        (np.zeros((3, 2)), np.full(3, 7), np.zeros(3), 5, "REGIME_CODES"),
    ],
)
def test_leaderboard_bad_input_raises(
    signals: np.ndarray, regimes: np.ndarray, forward: np.ndarray, window: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        engine_leaderboard(signals, regimes, forward, ["a", "b"], window_bars=window)


def _board(rows: list[tuple[str, str, float | None, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "engine": e,
                "regime": r,
                "hit_rate": h,
                "pnl_contribution_bps": 0.0,
                "n_votes": n,
                "rank": 1,
            }
            for e, r, h, n in rows
        ],
        schema=LEADERBOARD_SCHEMA,
    )


def test_auto_gate_enables_good_disables_bad_keeps_unjudged_standing() -> None:
    gates = RegimeGates.from_config(RegimeGatesSection())
    board = _board(
        [
            ("trend_v1", "TREND", 0.40, 200),  # enabled now, judged bad
            ("macd", "TREND", 0.60, 200),  # not listed now, judged good
            ("momentum", "TREND", 0.30, 5),  # too few votes: keeps voting
            ("mean_reversion", "TREND", 0.90, 5),  # too few votes: stays disabled
            ("scalping", "ILLIQUID", 0.99, 500),  # never enabled for ILLIQUID
        ]
    )
    payload = auto_gate(board, gates, min_hit_rate=0.5, min_votes=50)
    assert payload["ILLIQUID"] == {"enabled_engines": []}
    assert payload["TREND"]["enabled_engines"] == [
        "trend_v2", "breakout", "momentum", "macd", "ml_brain"
    ]  # fmt: skip
    assert payload["TREND"]["disabled_engines"] == ["trend_v1", "mean_reversion", "range_trading"]
    new = gates.with_overrides(payload)
    assert _voting(new, Regime.TREND) == {"trend_v2", "breakout", "momentum", "macd", "ml_brain"}
    assert _voting(new, Regime.ILLIQUID) == set()


def test_auto_gate_with_no_engine_good_enough_disables_the_regime() -> None:
    section = RegimeGatesSection(PANIC=RegimeGate(enabled_engines=("scalping",)))
    gates = RegimeGates.from_config(section)
    payload = auto_gate(
        _board([("scalping", "PANIC", 0.1, 100)]), gates, min_hit_rate=0.5, min_votes=10
    )
    assert payload["PANIC"]["enabled_engines"] == []
    assert payload["PANIC"]["disabled_engines"] == list(ENGINE_NAMES)
    assert not gates.with_overrides(payload).enabled_mask(Regime.PANIC).any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_hit_rate": 1.5, "min_votes": 1}, "min_hit_rate"),
        ({"min_hit_rate": 0.5, "min_votes": 0}, "min_votes"),
    ],
)
def test_auto_gate_bad_arguments_raise(kwargs: dict[str, Any], message: str) -> None:
    gates = RegimeGates.from_config(RegimeGatesSection())
    with pytest.raises(ValueError, match=message):
        auto_gate(_board([]), gates, **kwargs)
