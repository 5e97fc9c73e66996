"""The release sensor and the warm start of each coin's memory.

:class:`ReleaseSensor` polls the Brain Library for its latest release. A release it has not seen
is loaded and verified in full (:func:`hamilton_exec.models.load_release`) and only then handed
to the engine, which swaps it in with one assignment; a refused release is recorded (error
event, ``hamilton_release_refused_total{reason}``) and not retried, and the previous release
keeps serving. An unreachable database is a retryable miss: the next poll tries again.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl

from hamilton_exec.decision import CoinMemory
from hamilton_exec.engine import HamiltonEngine
from hamilton_exec.heap import settle_long_lived_heap
from hamilton_exec.metrics import HamiltonMetrics
from hamilton_exec.models import RefusedReleaseError, load_release
from trading_core.brain import BrainLibrary
from trading_core.engines import SIGNAL_COLUMNS
from trading_core.errors import BrainUnavailableError
from trading_core.observability.logging import get_logger
from trading_core.serving import engine_votes, ml_vote
from trading_core.training.dataset import prepare_coin_frame
from trading_core.training.predictor import REGIME_COLUMN


def _log() -> Any:
    return get_logger(__name__)


PollStatus = Literal["loaded", "unchanged", "refused", "unavailable", "none"]


@dataclass(frozen=True)
class PollResult:
    status: PollStatus
    release_id: int | None = None
    detail: str = ""


class ReleaseSensor:
    """Follows the Brain Library's latest release for one engine (module docstring)."""

    def __init__(
        self,
        library: BrainLibrary,
        engine: HamiltonEngine,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        after_swap: bool = True,
    ) -> None:
        self.library, self.engine, self.clock = library, engine, clock
        # export the training gauges and settle the heap after a swap; off for the start-up
        # probe, the service does both once ready
        self.after_swap = after_swap
        self.refused: dict[int, str] = {}

    def poll(self) -> PollResult:
        try:
            release = self.library.latest_release()
        except BrainUnavailableError as exc:
            _log().warning("release_poll_unavailable", error=str(exc))
            return PollResult("unavailable", detail=str(exc))
        if release is None:
            return PollResult("none")
        current = self.engine.release
        if (current is not None and current.id == release.id) or release.id in self.refused:
            return PollResult("unchanged", release.id)
        try:
            served = load_release(
                self.library,
                release,
                timeframe=self.engine.settings.timeframe,
                base_gates=self.engine.base_gates,
                loaded_at=self.clock(),
            )
        except RefusedReleaseError as exc:
            self.refused[release.id] = exc.reason
            self.engine.metrics.release_refused.labels(exc.reason).inc()
            _log().error(
                "release_refused",
                release_id=release.id,
                reason=exc.reason,
                error=str(exc),
                serving=current.id if current else None,
            )
            return PollResult("refused", release.id, exc.reason)
        except BrainUnavailableError as exc:
            return PollResult("unavailable", release.id, str(exc))
        self.engine.swap_release(served)
        if self.after_swap:
            export_training_metrics(self.library, self.engine.metrics)  # a release = a DAG run
            settle_long_lived_heap("release_loaded", release.id)
        _log().info(
            "release_loaded",
            release_id=release.id,
            coins=len(served.production),
            shadow_coins=len(served.shadow),
            previous=current.id if current else None,
        )
        return PollResult("loaded", release.id)


def export_training_metrics(library: BrainLibrary, metrics: HamiltonMetrics) -> None:
    """The Brain Library's model counts and ages as gauges: the batch DAG's status, served by the
    long-lived process Prometheus already scrapes (no pushgateway)."""
    try:
        metrics.export_training(library.list_models())
    except BrainUnavailableError as exc:
        _log().warning("training_metrics_unavailable", error=str(exc))


def warm_start(
    engine: HamiltonEngine,
    histories: Mapping[str, pl.DataFrame],
    *,
    btc_history: pl.DataFrame | None,
    funding: Mapping[str, pl.DataFrame],
    memories: bool = True,
) -> None:
    """Fill the windows with history and rebuild each coin's memory over it, bar by bar, with
    the release in force (what the coin's decisions would have remembered)."""
    engine.funding = dict(funding)
    for symbol, bars in histories.items():
        engine.windows[symbol].extend(bars)
    if engine.btc_symbol not in engine.windows and btc_history is not None:
        engine.btc_window.extend(btc_history)
    if not memories:
        return
    for symbol, bars in histories.items():
        if bars.height:
            engine.memories[symbol] = replay_memory(engine, symbol, bars, btc_history)


def replay_memory(
    engine: HamiltonEngine, symbol: str, bars: pl.DataFrame, btc_history: pl.DataFrame | None
) -> CoinMemory:
    context = engine.context
    frame = prepare_coin_frame(
        symbol,
        engine.settings.timeframe,
        bars,
        detection=engine.config.regime_gates.detection,
        label_horizon_bars=context.horizon_bars,
        btc_bars=bars if symbol == engine.btc_symbol else btc_history,
        funding=engine.funding.get(symbol),
        ml_scale_bps=context.ml_scale_bps,
    )
    release = engine.release
    models = release.coin(symbol.split("/", maxsplit=1)[0]) if release else None
    forecast = None
    if models is not None and models.predictor is not None:
        signals = pl.DataFrame({c: frame.rule_signals[:, j] for j, c in enumerate(SIGNAL_COLUMNS)})
        ml_frame = frame.bars.hstack(signals).with_columns(pl.Series(REGIME_COLUMN, frame.regimes))
        forecast = models.predictor(ml_frame)
    signal, confidence = ml_vote(
        forecast if forecast is not None else _nan(frame.n_bars), context.ml_scale_bps
    )
    votes = engine_votes(frame, signal, confidence, engine.gates())
    memory = CoinMemory.fresh(context.params, context.horizon_bars)
    close = frame.bars["close"].to_numpy()
    for t in range(frame.n_bars):
        memory.close_outcomes(float(close[t]))
        memory.remember(votes.signals[t], int(frame.regimes[t]), float(close[t]))
    return memory


def _nan(n: int) -> Any:
    import numpy as np

    return np.full(n, np.nan)
