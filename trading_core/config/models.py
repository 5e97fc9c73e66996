"""Frozen, strict pydantic models for every section of the three config files.

Defaults are the seed's ("Scalable 400-Coin Engine Architecture" v3.0); where the seed is
silent the default is documented on the field. Every model forbids unknown keys.
"""

from datetime import date
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from trading_core.storage import check_endpoint, check_location
from trading_core.types import TIMEFRAMES

Prob = Annotated[float, Field(ge=0.0, le=1.0)]
PosFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]
PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]


class Strict(BaseModel):
    """Base: frozen, unknown keys rejected, values validated on assignment and construction."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


# --- engine ------------------------------------------------------------------------------------


class EngineSection(Strict):
    max_coins: PosInt = 400
    active_coins: PosInt = 20
    max_concurrent_trades: PosInt = 500
    timeframes: tuple[str, ...] = ("1h", "4h")
    quote: str = "USDT"
    seed: NonNegInt = 42

    @field_validator("timeframes")
    @classmethod
    def _known_timeframes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [tf for tf in value if tf not in TIMEFRAMES]
        if bad or not value:
            raise ValueError(f"timeframes {list(value)!r}: each must be one of {list(TIMEFRAMES)}")
        return value

    @model_validator(mode="after")
    def _active_within_max(self) -> "EngineSection":
        if self.active_coins > self.max_coins:
            raise ValueError(
                f"active_coins={self.active_coins} exceeds max_coins={self.max_coins}; "
                "set active_coins <= max_coins"
            )
        return self


# --- market data --------------------------------------------------------------------------------


SYNTHETIC_MODES: Final = ("structured", "no_edge")


class SyntheticMarketSection(Strict):
    n_coins: PosInt = 450
    days: PosInt = 365
    seed: NonNegInt = 7
    end_date: date = date(2026, 11, 1)
    # no_edge: the same regimes and volatility, independent returns (nothing to exploit)
    mode: Literal["structured", "no_edge"] = "structured"
    structure_strength: NonNegFloat = 1.0

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_alias(cls, value: object) -> object:
        """``"null"`` (a string: quoted in YAML) is the old name of ``no_edge``; a bare YAML
        ``null`` is no mode at all and is refused with the name to write."""
        if value is None:
            allowed = ", ".join(SYNTHETIC_MODES)
            raise ValueError(
                f"a bare null is YAML's no-value, not a mode; allowed: {allowed} "
                "(no_edge is the mode once called null)"
            )
        return "no_edge" if value == "null" else value


class ExchangeSection(Strict):
    """Exchange access. Keys are secrets: only from the environment, never from a file."""

    name: str = "binance"
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    sandbox: bool = False
    timeout_ms: PosInt = 10_000
    max_retries: NonNegInt = 5
    retry_backoff_s: NonNegFloat = 0.5
    market_types: tuple[str, ...] = ("spot", "linear")
    # rewrites ccxt's REST URLs to this origin (the local exchange simulator, a proxy); None:
    # the venue's own URLs (or its testnet with ``sandbox``)
    base_url: str | None = None
    recv_window_ms: Annotated[int, Field(ge=1, le=60_000)] = 5_000
    # exchange clock vs local clock: beyond this, no new orders until it is back
    max_clock_skew_ms: PosInt = 1_000
    time_sync_interval_s: PosFloat = 300.0


class DataSection(Strict):
    source: Literal["synthetic", "parquet", "ccxt"] = "synthetic"
    store_path: str = "data/ohlcv"
    history_days: PosInt = 365
    max_staleness_bars: PosInt = 2
    # EDGE (Ardia, Guidotti & Kroencke 2024) is the default: Corwin-Schultz reads 40-50 bps on
    # real 1h BTC candles, which would make max_spread_bps reject every coin
    spread_estimator: Literal["edge", "corwin_schultz"] = "edge"
    exchange: ExchangeSection = ExchangeSection()
    synthetic: SyntheticMarketSection = SyntheticMarketSection()

    @field_validator("store_path")
    @classmethod
    def _store_url(cls, value: str) -> str:
        # a plain path, file:// or s3://bucket/prefix (trading_core.storage)
        return check_location(value)


# --- training ---------------------------------------------------------------------------------


class DistributedSection(Strict):
    backend: Literal["dask", "ray"] = "dask"
    num_workers: PosInt = 8
    threads_per_worker: PosInt = 1
    gpus_per_worker: NonNegInt = 1
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_concurrent_training_jobs: PosInt = 16
    retry_attempts: NonNegInt = 3
    timeout_seconds: PosFloat = 3600
    scheduler_address: str | None = None
    min_task_seconds: NonNegFloat = 0.1
    memory_limit: str = "auto"
    # where a local cluster's scheduler serves HTTP (/health, /metrics, dashboard): loopback by
    # default, a free port; "0.0.0.0:8787" exposes it to the network on purpose
    dashboard_address: str = "127.0.0.1:0"

    @field_validator("backend")
    @classmethod
    def _dask_only(cls, value: str) -> str:
        if value != "dask":
            raise ValueError(
                f"backend {value!r} is not available; allowed: 'dask' (Ray superseded)"
            )
        return value


class ModelVersioningSection(Strict):
    storage_path: str = "data/brain/artifacts"
    brain_library_dsn: SecretStr = SecretStr("sqlite:///data/brain/brain.db")
    # no push clock: the push follows each successful daily_training run (engine_assets/sensors.py)
    daily_push_enabled: bool = True
    selection_metric: Literal["sharpe", "edge_after_cost_bps", "sortino"] = "sharpe"
    min_improvement: NonNegFloat = 0.0

    @field_validator("storage_path")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        return check_location(value)


class ModelSection(Strict):
    """XGBoost model of the learned engine (seed is silent; defaults fit 2 cores)."""

    label_horizon_bars: PosInt = 4
    n_estimators: PosInt = 100
    max_depth: PosInt = 4
    learning_rate: PosFloat = 0.05
    subsample: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    colsample_bytree: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    min_child_weight: NonNegFloat = 5.0
    # 64 quantile bins: regime slices hold a few hundred to a few thousand rows, where 256 bins
    # cost 2.5x the fit time (bench/training_dag.py) for no measurable gain
    max_bin: Annotated[int, Field(ge=2, le=1024)] = 64
    nthread: PosInt = 1
    min_regime_bars: PosInt = 300
    seed: NonNegInt = 42


class TrainingSection(Strict):
    # no schedule_time_utc: the 02:00 UTC clock is the Dagster schedule (engine_assets/schedules)
    regimes: tuple[Literal["TREND", "RANGE", "PANIC"], ...] = ("TREND", "RANGE", "PANIC")
    distributed: DistributedSection = DistributedSection()
    model_versioning: ModelVersioningSection = ModelVersioningSection()
    model: ModelSection = ModelSection()


# --- coin selection ---------------------------------------------------------------------------


class CoinSelectionSection(Strict):
    min_daily_volume_usd: NonNegFloat = 1_000_000
    max_spread_bps: PosFloat = 8
    min_age_days: NonNegInt = 30
    ranking_method: Literal["liquidity_score", "volume", "spread"] = "liquidity_score"
    update_frequency: Literal["daily"] = "daily"
    ranking_update_frequency: Literal["daily"] = "daily"
    max_coins: PosInt = 400


# --- consensus --------------------------------------------------------------------------------


class AdaptiveThresholds(Strict):
    TREND: Prob = 0.5
    RANGE: Prob = 0.55
    PANIC: Prob = 0.65
    ILLIQUID: Prob = 0.7


class ConsensusSection(Strict):
    num_engines: Literal[23] = 23
    min_agreement_threshold: Prob = 0.6
    reliability_decay_factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.95
    reliability_decay: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.95
    correlation_penalty_threshold: Prob = 0.8
    reliability_prior: Prob = 0.5
    ml_scale_bps: PosFloat = 50.0
    adaptive_thresholds: AdaptiveThresholds = AdaptiveThresholds()


# --- regimes ----------------------------------------------------------------------------------


class RegimeGate(Strict):
    enabled_engines: tuple[str, ...] = ()
    disabled_engines: tuple[str, ...] = ()
    weight_multipliers: dict[str, NonNegFloat] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _disjoint(self) -> "RegimeGate":
        both = sorted(set(self.enabled_engines) & set(self.disabled_engines))
        if both:
            raise ValueError(f"engines {both} are both enabled and disabled; list each once")
        return self


class RegimeDetectionSection(Strict):
    """Thresholds of the causal regime detector (seed is silent; documented defaults)."""

    lookback_bars: PosInt = 48
    # 0.2: at 0.35 the detector found only ~8% of the synthetic market's TREND bars
    trend_strength_threshold: PosFloat = 0.2
    panic_vol_percentile: Prob = 0.95
    panic_jump_sigma: PosFloat = 4.0
    illiquid_volume_percentile: Prob = 0.05
    percentile_window_bars: PosInt = 720
    hysteresis_bars: PosInt = 3
    vol_window_bars: PosInt = 24
    dollar_volume_window_bars: PosInt = 24
    state_memory_bars: PosInt = 24
    min_dollar_volume_usd_per_bar: NonNegFloat = 0.0


class RegimeGatesSection(Strict):
    enabled: bool = True
    leaderboard_refresh_days: PosInt = 7
    leaderboard_window_days: PosInt = 30
    auto_gating: bool = False
    auto_gating_min_hit_rate: Prob = 0.45
    auto_gating_min_votes: PosInt = 50
    off_regime_multiplier: NonNegFloat = 0.5
    TREND: RegimeGate = RegimeGate(
        enabled_engines=("trend_v1", "trend_v2", "breakout", "momentum", "ml_brain"),
        disabled_engines=("mean_reversion", "range_trading"),
    )
    RANGE: RegimeGate = RegimeGate(
        enabled_engines=("mean_reversion", "range_trading", "support_resistance", "ml_brain"),
        disabled_engines=("trend_v1", "trend_v2"),
    )
    PANIC: RegimeGate = RegimeGate(
        enabled_engines=("scalping", "volatility", "liquidity", "ml_brain"),
        disabled_engines=("trend_v1", "trend_v2", "breakout"),
    )
    ILLIQUID: RegimeGate = RegimeGate()
    detection: RegimeDetectionSection = RegimeDetectionSection()

    @model_validator(mode="after")
    def _illiquid_trades_nothing(self) -> "RegimeGatesSection":
        if self.ILLIQUID.enabled_engines:
            raise ValueError(
                f"ILLIQUID.enabled_engines {list(self.ILLIQUID.enabled_engines)!r} must be empty: "
                "the engine never trades illiquid markets"
            )
        return self


# --- costs --------------------------------------------------------------------------------------


class VenueFees(Strict):
    maker_bps: NonNegFloat
    taker_bps: NonNegFloat
    funding_bps_per_8h: NonNegFloat = 0.0


class SlippageModel(Strict):
    participation_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    impact_factor: NonNegFloat = 0.5


def _default_fees() -> dict[str, VenueFees]:
    return {
        "binance": VenueFees(maker_bps=2.0, taker_bps=4.0, funding_bps_per_8h=1.0),
        "coinbase": VenueFees(maker_bps=5.0, taker_bps=5.0),
    }


class CostModelSection(Strict):
    real_time_updates: bool = True
    update_interval_seconds: PosFloat = 60
    spread_source: Literal["websocket", "api", "static", "candles"] = "websocket"
    static_spread_bps: NonNegFloat = 2.0
    venue: str = "binance"
    liquidity_side: Literal["maker", "taker"] = "taker"
    instrument: Literal["spot", "perp"] = "perp"
    fee_schedule: dict[str, VenueFees] = Field(default_factory=_default_fees)
    min_edge_after_cost_bps: float = 3.0
    safety_margin_bps: NonNegFloat = 0.5
    slippage_model: SlippageModel = SlippageModel()

    @model_validator(mode="after")
    def _venue_known(self) -> "CostModelSection":
        if self.venue not in self.fee_schedule:
            raise ValueError(
                f"venue {self.venue!r} has no fee_schedule entry; "
                f"allowed: {sorted(self.fee_schedule)}"
            )
        return self


# --- risk ---------------------------------------------------------------------------------------


class RiskPreset(Strict):
    per_trade_risk_pct: Annotated[float, Field(gt=0.0, le=100.0)]
    daily_loss_limit_pct: Annotated[float, Field(gt=0.0, le=100.0)]
    max_leverage: PosFloat
    min_confidence: Prob


class RiskPresetsSection(Strict):
    conservative: RiskPreset = RiskPreset(
        per_trade_risk_pct=0.5, daily_loss_limit_pct=1.5, max_leverage=1.5, min_confidence=0.65
    )
    balanced: RiskPreset = RiskPreset(
        per_trade_risk_pct=1.0, daily_loss_limit_pct=2.5, max_leverage=2.0, min_confidence=0.55
    )
    aggressive: RiskPreset = RiskPreset(
        per_trade_risk_pct=1.5, daily_loss_limit_pct=4.0, max_leverage=3.0, min_confidence=0.50
    )

    def get(self, name: str) -> RiskPreset:
        preset = getattr(self, name, None)
        if not isinstance(preset, RiskPreset):
            raise KeyError(f"risk preset {name!r}; allowed: conservative, balanced, aggressive")
        return preset


class RiskSection(Strict):
    preset: Literal["conservative", "balanced", "aggressive"] = "balanced"
    enforce_in_simulations: bool = True
    initial_capital_usd: PosFloat = 100_000.0
    stop_atr_multiple: PosFloat = 2.0
    max_position_pct: Annotated[float, Field(gt=0.0, le=1000.0)] = 25.0
    max_notional_per_order_usd: PosFloat = 50_000.0
    max_orders_per_minute: PosInt = 60
    kill_switch: bool = False
    reducing_at_loss_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8


# --- validation -------------------------------------------------------------------------------


class WalkForwardSection(Strict):
    """Purged walk-forward windows (``trading_core.validation``).

    ``test_days`` 20 x ``max_windows`` 12 gives each key 240 out-of-sample days from one year of
    history with the same 12 fits per key as 5-day windows (bench/selection.py: 5-day windows
    left every key of the structured market statistically insignificant; the models are up to
    20 days old inside a window, so the estimate is conservative next to daily retraining).
    ``min_test_trades`` 30 is a floor for the normal approximation, not the statistical bar:
    the promotion gate weighs the evidence itself (``PromotionGateSection``).
    """

    train_days: PosInt = 20
    test_days: PosInt = 20
    purge_days: NonNegInt = 2
    embargo_days: NonNegInt = 1
    min_windows: PosInt = 5
    min_test_trades: NonNegInt = 30
    max_windows: PosInt = 12
    anchored: bool = False


class PromotionGateSection(Strict):
    """Which validated keys may reach production (``trading_core.training.gate``).

    ``fdr_bh``: Benjamini-Hochberg over the day's trials, so at most ``alpha`` of the promoted
    keys are expected to be luck (and on a market with no edge at all, at most an ``alpha``
    chance that any key passes). ``fdr_by`` holds under any dependence between keys at a cost in
    power; ``dsr`` asks a deflated Sharpe ratio of at least ``1 - alpha``. ``alpha`` 0.05 is the
    conventional level; ``min_oos_returns`` 30 is the usual floor of the normal approximation.
    """

    method: Literal["fdr_bh", "fdr_by", "dsr"] = "fdr_bh"
    alpha: Annotated[float, Field(gt=0.0, le=0.5)] = 0.05
    min_oos_returns: Annotated[int, Field(ge=2)] = 30
    # hyperparameter configurations tried behind each key (one today: the config's single
    # set); a search over k settings multiplies the day's trials by k
    configurations_per_key: PosInt = 1
    # a challenger must beat the champion on the same out-of-sample days: one-sided HAC test
    # of the mean daily return difference at this level, over at least this many common days
    challenger_alpha: Annotated[float, Field(gt=0.0, le=0.5)] = 0.05
    min_paired_days: PosInt = 20


class ValidationSection(Strict):
    walk_forward: WalkForwardSection = WalkForwardSection()
    promotion_gate: PromotionGateSection = PromotionGateSection()


# --- shadow testing ---------------------------------------------------------------------------


class PromotionCriteria(Strict):
    min_sharpe_improvement: float = 0.2
    min_win_rate_improvement: float = 0.05
    statistical_significance: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95


class AutoRollbackSection(Strict):
    enabled: bool = True
    window_days: PosInt = 7
    max_drawdown_pct: Annotated[float, Field(gt=0.0, le=100.0)] = 10.0
    min_sharpe: float = -1.0


class ShadowTestingSection(Strict):
    enabled: bool = True
    min_duration_days: PosInt = 14
    max_duration_days: PosInt = 28
    min_trades: NonNegInt = 100
    bootstrap_samples: PosInt = 2000
    block_length_bars: PosInt = 24
    promotion_criteria: PromotionCriteria = PromotionCriteria()
    auto_rollback: AutoRollbackSection = AutoRollbackSection()


# --- observability / hamilton -----------------------------------------------------------------


class PrometheusSection(Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9090


class DecisionEventsSection(Strict):
    enabled: bool = True
    storage_path: str = "data/decision_events"


class ObservabilitySection(Strict):
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_path: str | None = None  # append log lines to this file instead of stderr
    prometheus: PrometheusSection = PrometheusSection()
    decision_events: DecisionEventsSection = DecisionEventsSection()


class OrdersSection(Strict):
    """How Hamilton's live broker sends an approved decision."""

    type: Literal["market", "limit"] = "market"
    post_only: bool = False  # limit orders only: a maker order (the cost model's maker fee)
    # spot or USD-M perpetuals; must match cost_model.instrument (spot | perp)
    market_type: Literal["spot", "linear"] = "linear"
    timeout_s: PosFloat = 30.0  # an order still open after this is cancelled (its rest)
    poll_interval_s: PosFloat = 1.0  # pending orders are looked up this often
    workers: PosInt = 8  # threads sending orders off the tick path


class MarketDataFeedSection(Strict):
    """How Hamilton receives closed bars and books from a venue (``data.source: ccxt``).

    ``stream``: ccxt.pro websockets (closed candles and the top of book of every active coin
    on shared connections; REST fills the bars a reconnect or a lost message left out);
    ``polling``: REST requests every ``hamilton.market_poll_interval_s`` (the fallback; no books,
    so the cost model uses the historical spread rule)."""

    feed: Literal["stream", "polling"] = "stream"
    book: Literal["bookTicker", "depth"] = "bookTicker"  # depth: diff-depth books (heavier)
    max_book_age_s: PosFloat = 10.0  # an older book: no new orders for the coin (stale_book)
    bar_grace_s: PosFloat = 15.0  # a tick waits this long after the close for late bars
    rest_fill_after_s: PosFloat = 2.0  # bars still missing this long after the close: REST
    heartbeat_timeout_s: PosFloat = 30.0  # no message this long on a stream: reconnect it
    reconnect_backoff_s: PosFloat = 0.5  # first wait before reconnecting, doubled per failure
    reconnect_backoff_max_s: PosFloat = 30.0

    @model_validator(mode="after")
    def _grace_after_fill(self) -> "MarketDataFeedSection":
        if self.rest_fill_after_s >= self.bar_grace_s:
            raise ValueError(
                f"rest_fill_after_s={self.rest_fill_after_s} must be below bar_grace_s="
                f"{self.bar_grace_s}: missing bars are fetched before the tick gives up on them"
            )
        return self


class HamiltonSection(Strict):
    mode: Literal["paper", "shadow", "live"] = "paper"
    release_poll_interval_s: PosFloat = 30.0
    market_poll_interval_s: PosFloat = 5.0
    history_bars: PosInt = 800
    health_port: Annotated[int, Field(ge=0, le=65535)] = 8081
    # the health/control port binds here; the POST /control/* endpoints need the token in the
    # environment variable named by control_token_env
    health_host: str = "127.0.0.1"
    control_token_env: str = "HAMILTON_CONTROL_TOKEN"  # noqa: S105 - a variable NAME
    state_path: str = "data/hamilton"
    reconcile_interval_s: PosFloat = 300.0
    flush_timeout_s: PosFloat = 5.0  # an event flush slower than this spools instead
    orders: OrdersSection = OrdersSection()
    market_data: MarketDataFeedSection = MarketDataFeedSection()


# --- the whole config -------------------------------------------------------------------------


class StorageSection(Strict):
    """How ``s3://`` store URLs (data.store_path, training.model_versioning.storage_path) reach
    their server. Credentials are never here: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY."""

    # None: botocore's own resolution (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS itself)
    endpoint_url: str | None = None

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return check_endpoint(value)


class EngineConfig(Strict):
    """Everything the product reads, from the three YAML files plus environment overrides."""

    engine: EngineSection = EngineSection()
    data: DataSection = DataSection()
    storage: StorageSection = StorageSection()
    training: TrainingSection = TrainingSection()
    coin_selection: CoinSelectionSection = CoinSelectionSection()
    consensus: ConsensusSection = ConsensusSection()
    regime_gates: RegimeGatesSection = RegimeGatesSection()
    cost_model: CostModelSection = CostModelSection()
    risk_presets: RiskPresetsSection = RiskPresetsSection()
    risk: RiskSection = RiskSection()
    validation: ValidationSection = ValidationSection()
    shadow_testing: ShadowTestingSection = ShadowTestingSection()
    observability: ObservabilitySection = ObservabilitySection()
    hamilton: HamiltonSection = HamiltonSection()

    @model_validator(mode="after")
    def _orders_match_cost_model(self) -> "EngineConfig":
        # the decision prices an order with the cost model's instrument (fee schedule,
        # funding): the live broker must trade that instrument, not another
        wanted = "linear" if self.cost_model.instrument == "perp" else "spot"
        if self.hamilton.orders.market_type != wanted:
            raise ValueError(
                f"hamilton.orders.market_type {self.hamilton.orders.market_type!r} disagrees "
                f"with cost_model.instrument {self.cost_model.instrument!r}; set "
                f"hamilton.orders.market_type: {wanted}"
            )
        return self

    @property
    def active_risk_preset(self) -> RiskPreset:
        return self.risk_presets.get(self.risk.preset)
