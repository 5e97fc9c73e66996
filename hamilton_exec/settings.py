"""Run settings of one Hamilton process and the live-trading gate.

Defaults come from the config (``hamilton``, ``observability``, ``data``); the command line
overrides them. ``--live`` is refused unless asked for explicitly AND the exchange keys are
present (``ENGINE__DATA__EXCHANGE__API_KEY`` / ``..._API_SECRET``, read by the config loader).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from trading_core.config.models import EngineConfig
from trading_core.errors import ConfigError, LiveTradingRefusedError
from trading_core.types import timeframe_ms

Mode = Literal["paper", "shadow", "live"]
MODES: tuple[Mode, ...] = ("paper", "shadow", "live")


@dataclass(frozen=True)
class ReplayWindow:
    """Replay the closed bars whose open time is in ``[start, end)`` at ``speed`` seconds of
    market time per second of wall time (3600: one 1h bar a second; 0: as fast as possible)."""

    start: datetime
    end: datetime
    speed: float = 0.0

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            moment = getattr(self, name)
            if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
                raise ConfigError(f"replay {name} {moment!r} must be timezone-aware UTC")
        if self.end <= self.start:
            raise ConfigError(f"replay window is empty: end {self.end} <= start {self.start}")
        if not self.speed >= 0.0:
            raise ConfigError(f"replay speed {self.speed!r} must be >= 0 (0: no waiting)")


@dataclass(frozen=True)
class HamiltonSettings:
    """What one run does; build with :meth:`from_config`."""

    mode: Mode
    timeframe: str
    state_dir: Path
    events_spool: Path
    metrics_host: str
    metrics_port: int | None
    health_port: int | None
    release_poll_interval_s: float
    market_poll_interval_s: float
    history_bars: int
    max_staleness_bars: int
    symbols: tuple[str, ...] = ()
    replay: ReplayWindow | None = None
    max_bars: int | None = None
    flush_every_bars: int = 1
    # a flush slower than this spools its records (it runs off the tick, never blocks it)
    flush_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r}; allowed: {list(MODES)}")
        timeframe_ms(self.timeframe)
        if self.max_bars is not None and self.max_bars < 1:
            raise ConfigError(f"max_bars {self.max_bars!r} must be >= 1")
        if self.mode == "live" and self.replay is not None:
            raise ConfigError("a replay never trades live: drop --live or --replay")
        if not self.flush_timeout_s > 0.0:
            raise ConfigError(f"flush_timeout_s {self.flush_timeout_s!r} must be > 0")

    @property
    def bar_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    @classmethod
    def from_config(
        cls,
        config: EngineConfig,
        *,
        mode: Mode | None = None,
        timeframe: str | None = None,
        state_dir: Path | None = None,
        symbols: tuple[str, ...] = (),
        replay: ReplayWindow | None = None,
        max_bars: int | None = None,
        metrics_port: int | None = None,
        health_port: int | None = None,
    ) -> "HamiltonSettings":
        section = config.hamilton
        prometheus = config.observability.prometheus
        state = state_dir or Path(section.state_path)
        return cls(
            mode=mode or section.mode,
            timeframe=timeframe or config.engine.timeframes[0],
            state_dir=state,
            events_spool=state / "events_spool.jsonl",
            metrics_host=prometheus.host,
            metrics_port=metrics_port
            if metrics_port is not None
            else (prometheus.port if prometheus.enabled else None),
            health_port=health_port if health_port is not None else section.health_port,
            release_poll_interval_s=section.release_poll_interval_s,
            market_poll_interval_s=section.market_poll_interval_s,
            history_bars=section.history_bars,
            max_staleness_bars=config.data.max_staleness_bars,
            symbols=symbols,
            replay=replay,
            max_bars=max_bars,
            flush_timeout_s=section.flush_timeout_s,
        )


def check_live_allowed(config: EngineConfig, *, live_flag: bool, mode: Mode) -> None:
    """Refuse live trading unless ``--live`` was given AND both exchange keys are set."""
    if mode != "live" and not live_flag:
        return
    if not live_flag:
        raise LiveTradingRefusedError(
            "hamilton.mode is 'live' but --live was not given: live trading needs the explicit "
            "flag on the command line"
        )
    exchange = config.data.exchange
    missing = [
        name
        for name, value in (
            ("ENGINE__DATA__EXCHANGE__API_KEY", exchange.api_key),
            ("ENGINE__DATA__EXCHANGE__API_SECRET", exchange.api_secret),
        )
        if value is None or not value.get_secret_value()
    ]
    if missing:
        raise LiveTradingRefusedError(
            f"--live refused: exchange keys missing from the environment: {missing}"
        )
    if config.data.source != "ccxt":
        raise LiveTradingRefusedError(
            f"--live refused: data.source is {config.data.source!r}; live trading reads the "
            "exchange itself (data.source: ccxt)"
        )
