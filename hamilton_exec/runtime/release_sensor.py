"""The release sensor and the warm start of each coin's memory.

:class:`ReleaseSensor` polls the Brain Library for its latest release. A release it has not seen
is loaded and verified in full (:func:`hamilton_exec.tick.served_release.load_release`) and only
then handed to the engine, which swaps it in with one assignment; a refused release (bad checksum,
missing or unreadable artifact, ...) is recorded (``release_refused`` error event with the release
id and reason, ``hamilton_release_refused_total{reason}``) and never retried. Then the newest
OLDER release that verifies is served instead - but only one newer than the release already
served: a corrupt new release never sends Hamilton back to an older one, and at start (nothing
served) the last good release serves rather than nothing. A release newer than the refused one
is tried at the next poll. An unreachable database is a retryable miss: the next poll tries
again.

Each poll of the service's sensor also exports the daily pipeline's run table
(:func:`export_pipeline_metrics`): a failed day writes no release, so waiting for a release to
export it would hide exactly the failure the alerts watch for.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl

from hamilton_exec.runtime.heap import settle_long_lived_heap
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from hamilton_exec.tick.coin_decisions import CoinMemory
from hamilton_exec.tick.hamilton_engine import HamiltonEngine
from hamilton_exec.tick.served_release import ServedRelease, load_release
from trading_core.brain import BrainLibrary, Release
from trading_core.decision.inputs import engine_votes, ml_vote
from trading_core.engines import SIGNAL_COLUMNS
from trading_core.errors import BrainUnavailableError, ReleaseRefusedError
from trading_core.observability.logging import get_logger
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
        refused: dict[int, str] | None = None,
    ) -> None:
        self.library, self.engine, self.clock = library, engine, clock
        # export the training gauges and settle the heap after a swap; off for the start-up
        # probe, the service does both once ready
        self.after_swap = after_swap
        # release id -> refusal reason; pass the start-up probe's so the service's sensor
        # does not refuse (and count) the same release again
        self.refused: dict[int, str] = refused if refused is not None else {}
        # the latest release id whose newer-than-served candidates were all tried and refused
        self._settled: int | None = None

    def poll(self) -> PollResult:
        if self.after_swap:
            export_pipeline_metrics(self.library, self.engine.metrics)
        try:
            latest = self.library.latest_release()
        except BrainUnavailableError as exc:
            _log().warning("release_poll_unavailable", error=str(exc))
            return PollResult("unavailable", detail=str(exc))
        if latest is None:
            return PollResult("none")
        current = self.engine.release
        if current is not None and current.id >= latest.id:
            return PollResult("unchanged", latest.id)
        if latest.id in self.refused and self._settled == latest.id:
            return PollResult("unchanged", latest.id)
        try:
            return self._serve_newest(latest, current)
        except BrainUnavailableError as exc:  # retried at the next poll
            return PollResult("unavailable", latest.id, str(exc))

    def _serve_newest(self, latest: Release, current: ServedRelease | None) -> PollResult:
        """Serve the newest release above the one served whose artifacts verify: ``latest``
        first, then older ones (never the served one's elders: a corrupt release never sends
        Hamilton back to an older one)."""
        if latest.id not in self.refused:
            served = self._load(latest, current)
            if served is not None:
                return self._swap(served, current)
        floor = current.id if current is not None else 0
        older = [
            r
            for r in self.library.list_releases()
            if floor < r.id < latest.id and r.id not in self.refused
        ]
        for release in older:  # newest first
            served = self._load(release, current)
            if served is not None:
                self._settled = latest.id
                _log().warning(
                    "release_fallback",
                    release_id=release.id,
                    latest=latest.id,
                    refused=sorted(i for i in self.refused if i > release.id),
                )
                return self._swap(served, current, detail=f"latest {latest.id} refused")
        self._settled = latest.id
        return PollResult("refused", latest.id, self.refused.get(latest.id, ""))

    def _load(self, release: Release, current: ServedRelease | None) -> ServedRelease | None:
        """The verified release, or None once refused (recorded, counted, logged)."""
        try:
            return load_release(
                self.library,
                release,
                timeframe=self.engine.settings.timeframe,
                base_gates=self.engine.base_gates,
                loaded_at=self.clock(),
            )
        except ReleaseRefusedError as exc:
            reason, error = exc.reason, str(exc)
        except OSError as exc:  # an artifact the process cannot read (permissions, I/O error)
            reason, error = "artifact_missing", f"release {release.id}: {exc!r}"
        self.refused[release.id] = reason
        self.engine.metrics.release_refused.labels(reason).inc()
        self.engine.metrics.count_error("release_sensor", reason)
        _log().error(
            "release_refused",
            release_id=release.id,
            reason=reason,
            error=error,
            serving=current.id if current else None,
        )
        return None

    def _swap(
        self, served: ServedRelease, current: ServedRelease | None, detail: str = ""
    ) -> PollResult:
        self.engine.swap_release(served)
        if self.after_swap:
            export_training_metrics(self.library, self.engine.metrics)  # a release = a DAG run
            settle_long_lived_heap("release_loaded", served.id)
        _log().info(
            "release_loaded",
            release_id=served.id,
            coins=len(served.production),
            shadow_coins=len(served.shadow),
            previous=current.id if current else None,
        )
        return PollResult("loaded", served.id, detail)


def export_training_metrics(library: BrainLibrary, metrics: HamiltonMetrics) -> None:
    """The Brain Library's model counts and ages as gauges: the batch DAG's status, served by the
    long-lived process Prometheus already scrapes (no pushgateway)."""
    try:
        metrics.export_training(library.list_models())
    except BrainUnavailableError as exc:
        _log().warning("training_metrics_unavailable", error=str(exc))
    export_pipeline_metrics(library, metrics)


def export_pipeline_metrics(library: BrainLibrary, metrics: HamiltonMetrics) -> None:
    """The daily pipeline's runs (Brain Library run table) as gauges; see HamiltonMetrics."""
    try:
        metrics.export_daily_runs(library.pipeline_summary())
    except BrainUnavailableError as exc:
        _log().warning("pipeline_metrics_unavailable", error=str(exc))


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
