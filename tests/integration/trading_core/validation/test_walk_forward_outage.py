"""Walk-forward validation on real exchange outages: a test window inside one (COCOS/USDT 1h: no
candles from 2021-01-19 02:00 to 2021-01-23 01:00 UTC) is skipped with its reason while the key
goes on, and the blocking leakage checks read each key's real label end times."""

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from engine_assets.assets.training import _leakage_checks
from tests.unit.market_fixtures import require_real_data
from trading_core.config.models import EngineConfig
from trading_core.features import NO_LABEL_END_MS, label_end_ms
from trading_core.training.dataset import prepare_coin_frame
from trading_core.training.evaluate import KeyValidation, validate_key
from trading_core.training.jobs import CoinJob
from trading_core.types import Regime
from trading_core.validation import purged_walk_forward_splits
from trading_core.validation.leakage import split_leakage_problems

HOUR = 3_600_000
Ints = npt.NDArray[np.int64]
# history up to 2021-01-25 15:00: 3-day test windows end at 12:00 on 01-25, 01-22, 01-19, ...,
# so the window [01-19 12:00, 01-22 12:00) lies wholly inside the 96 h outage
AS_OF = datetime(2021, 1, 25, 16, tzinfo=UTC)
OUTAGE_TEST_START = datetime(2021, 1, 19, 12, tzinfo=UTC)


def test_test_window_inside_real_outage_is_skipped_and_key_still_validates() -> None:
    bars = pl.read_parquet(require_real_data() / "COCOS_USDT-1h.parquet").filter(
        pl.col("timestamp") < AS_OF
    )
    config = EngineConfig.model_validate(
        {
            "training": {"model": {"n_estimators": 20, "seed": 7}},
            "validation": {"walk_forward": {"test_days": 3, "min_test_trades": 1}},
        }
    )
    horizon = config.training.model.label_horizon_bars
    frame = prepare_coin_frame(
        "COCOS/USDT",
        "1h",
        bars,
        detection=config.regime_gates.detection,
        label_horizon_bars=horizon,
    )
    job = CoinJob("COCOS/USDT", "1h", AS_OF, "2021-01-25", "/unused", config, ("RANGE",))

    result = validate_key(frame, job, Regime.RANGE)

    assert result.status == "validated"
    by_start = {w["test_start_ms"]: w for w in result.windows}
    outage = by_start[int(OUTAGE_TEST_START.timestamp() * 1000)]
    assert outage["usable"] is False
    assert outage["reason"] == "test span holds no bars (outage)"
    assert outage["train_rows"] >= 30  # it would have trained: only the empty test stops it
    later = [w for w in result.windows if w["test_start_ms"] > outage["test_start_ms"]]
    assert later and all(w["usable"] for w in later)
    # the frame's label ends are the time-defined ones, and the check reads them
    assert result.label_end_ms is frame.label_end_ms
    labelled = frame.label_end_ms != NO_LABEL_END_MS
    assert np.array_equal(labelled, np.isfinite(frame.label_bps))
    ts = frame.timestamps_ms
    assert np.all(frame.label_end_ms[labelled] == ts[labelled] + horizon * HOUR)
    assert split_leakage_problems(result.splits, ts, label_end_ms=frame.label_end_ms) == []


def _checks_passed(ends_of: Callable[[Ints], Ints]) -> dict[str, bool]:
    history = pl.read_parquet(require_real_data() / "BTCST_USDT-1h.parquet")
    ts_all = history["timestamp"].dt.epoch("ms").to_numpy().astype(np.int64)
    ts = ts_all[ts_all < int(datetime(2021, 3, 23, tzinfo=UTC).timestamp() * 1000)]
    # 5-day test windows: the layout under which the issue measured the leak at this date
    config = EngineConfig.model_validate({"validation": {"walk_forward": {"test_days": 5}}})
    horizon = config.training.model.label_horizon_bars
    splits = purged_walk_forward_splits(
        ts, config.validation.walk_forward, bar_ms=HOUR, label_horizon_bars=horizon
    )
    validation = KeyValidation(
        "BTCST", "RANGE", "1h", "validated", "", True,
        splits=tuple(splits), timestamps_ms=ts, label_end_ms=ends_of(ts),
    )  # fmt: skip
    return {str(c.check_name): bool(c.passed) for c in _leakage_checks([validation], config)}


def test_blocking_asset_checks_read_the_keys_real_label_ends() -> None:
    horizon = EngineConfig().training.model.label_horizon_bars

    def row_shift(ts: Ints) -> Ints:
        ends = np.full(ts.size, NO_LABEL_END_MS, dtype=np.int64)
        ends[:-horizon] = ts[horizon:]
        return ends

    leaky = _checks_passed(row_shift)
    assert not leaky["no_train_test_overlap"] and not leaky["label_horizon_within_purge"]
    clean = _checks_passed(lambda ts: label_end_ms(ts, horizon, HOUR))
    assert clean["no_train_test_overlap"] and clean["label_horizon_within_purge"]
