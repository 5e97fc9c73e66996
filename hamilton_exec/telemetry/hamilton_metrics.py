"""Hamilton's Prometheus metrics (names from ``trading_core.observability.metric_names``).

One registry per service (tests run several). Label values are bounded: engines (23),
regimes (4), actions (3), sides/statuses, denial and refusal reasons (fixed enums), venues,
and symbols (the active coins, at most ``engine.max_coins``). Counters whose dashboards and
alerts must show a zero rather than "no data" are created with every label value at start.

Training metrics (``training_job_duration_seconds{coin,regime}``, ``training_jobs_total{status}``,
``training_gate_verdicts{verdict}``)
come from the Brain Library's models (the batch training job has no scrape target): the
duration is the validation's recorded fit time when present, and the status counts the
model versions by stage.

The daily pipeline's runs (``engine_daily_runs_total{dagster_job,status}``,
``engine_daily_run_last_status{dagster_job}``, ``engine_daily_run_last_duration_seconds``,
``engine_release_last_success_timestamp_seconds``) come from the Brain Library's pipeline run
table, which Dagster's run status sensors write (engine_assets/sensors.py).
"""

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hamilton_exec.telemetry.feed_metrics import FeedMetrics
from trading_core.brain import ModelVersion
from trading_core.brain.pipeline_runs import RUN_STATUSES, PipelineSummary
from trading_core.engines import ENGINE_NAMES
from trading_core.errors import RELEASE_REFUSAL_REASONS as REFUSAL_REASONS
from trading_core.observability import metric_names as names
from trading_core.risk import DenialReason, TradingState
from trading_core.types import REGIMES, Action, Stage

LATENCY_BUCKETS_MS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)
COST_BUCKETS_BPS: Final = (0.5, 1, 2, 4, 6, 8, 12, 16, 24, 32, 64)
CONFIDENCE_BUCKETS: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
COST_COMPONENTS: Final = ("fee", "spread", "slippage", "funding", "safety")
ORDER_STATUSES: Final = ("pending", "filled", "canceled", "rejected", "expired")
# components whose failures are counted in engine_error_rate{engine, error_type} (bounded)
COMPONENTS: Final = (
    "market_data",
    "broker",
    "reconcile",
    "event_sink",
    "release_sensor",
    "exchange_clock",
    "decision",
)
ERROR_TYPES: Final = ("DataValidationError", "ModelError")
# the daily Dagster jobs the run table records (label dagster_job: bounded)
DAILY_JOBS: Final = ("daily_training", "release_push")
# engine_daily_run_last_status: the newest run's status as a number (alerts compare it)
LAST_STATUS_VALUE: Final = {"success": 1.0, "failure": 0.0, "canceled": -1.0}
REFUSAL_CODES: Final = (
    "insufficient_balance",
    "filter_failure",
    "permission",
    "bad_symbol",
    "refused",
    "rate_limited",
    "clock_skew",
)


class HamiltonMetrics:
    """Every series Hamilton exports; see the module docstring for the label rules."""

    def __init__(self, *, venue: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.venue = venue
        r = self.registry
        self.engine_pnl = Gauge(
            names.ENGINE_PNL_USD,
            "Realised PnL attributed to each engine (USD)",
            ["engine", "symbol", "regime"],
            registry=r,
        )
        self.latency = Histogram(
            names.ENGINE_LATENCY_MS,
            "Decision step latency (ms)",
            ["engine", "operation"],
            buckets=LATENCY_BUCKETS_MS,
            registry=r,
        )
        self.errors = Counter(
            names.ENGINE_ERROR_RATE,
            "Errors by component and type",
            ["engine", "error_type"],
            registry=r,
        )
        self.confidence = Histogram(
            names.CONSENSUS_CONFIDENCE,
            "Consensus confidence per bar",
            ["regime"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.spread = Gauge(
            names.COST_MODEL_SPREAD_BPS,
            "Spread used by the cost model (bps) and where it came from (book|candles|static)",
            ["venue", "symbol", "source"],
            registry=r,
        )
        self._spread_source: dict[str, str] = {}
        self.market = FeedMetrics(r)
        # shortcuts the engine uses per coin per bar
        self.spread_fallbacks = self.market.spread_fallbacks
        self.book_age = self.market.book_age
        self.stale_market_data = self.market.stale
        self.costs = Histogram(
            names.COST_BPS,
            "Round-trip cost components of decisions (bps)",
            ["venue", "component"],
            buckets=COST_BUCKETS_BPS,
            registry=r,
        )
        self.decisions = Counter(
            names.DECISIONS_TOTAL,
            "DecisionEvents by action and regime",
            ["action", "regime"],
            registry=r,
        )
        self.orders = Counter(
            names.ORDERS_TOTAL, "Orders by side and status", ["side", "status"], registry=r
        )
        self.order_reports = Counter(
            names.ORDER_REPORTS_TOTAL,
            "Final order reports by status and reason code (refusals, timeouts, kill switch)",
            ["status", "reason"],
            registry=r,
        )
        self.position_qty = Gauge(
            names.POSITION_QTY, "Signed position per symbol (base units)", ["symbol"], registry=r
        )
        self.position_notional = Gauge(
            names.POSITION_NOTIONAL_USD,
            "Signed position value at the mark per symbol (USD)",
            ["symbol"],
            registry=r,
        )
        self.open_orders = Gauge(
            names.OPEN_ORDERS, "Orders accepted and not final, per symbol", ["symbol"], registry=r
        )
        self.reconcile_drift = Gauge(
            names.RECONCILE_DRIFT,
            "Exchange minus expected at the last reconcile (base units; symbol 'cash': USD)",
            ["symbol"],
            registry=r,
        )
        self.reconciles = Counter(
            names.RECONCILE_TOTAL, "Reconciles by result", ["result"], registry=r
        )
        self.clock_offset = Gauge(
            names.EXCHANGE_CLOCK_OFFSET_MS, "Exchange clock minus local clock (ms)", registry=r
        )
        self.events_spool_depth = Gauge(
            names.EVENTS_SPOOL_DEPTH, "Records waiting in the local event spool", registry=r
        )
        self.kill_switch = Gauge(names.KILL_SWITCH, "1 while the kill switch is on", registry=r)
        self.cost_error = Histogram(
            names.REALIZED_COST_ERROR_BPS,
            "Realized minus expected cost of each filled order (bps)",
            ["venue"],
            buckets=(-8, -4, -2, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 2, 4, 8),
            registry=r,
        )
        self.denials = Counter(
            names.RISK_DENIALS_TOTAL, "Risk denials by reason", ["reason"], registry=r
        )
        self.release_info = Gauge(
            names.RELEASE_INFO, "The release in force (1)", ["release_id"], registry=r
        )
        self.release_age = Gauge(
            names.RELEASE_AGE_SECONDS, "Age of the release in force (s)", registry=r
        )
        self.release_refused = Counter(
            names.RELEASE_REFUSED_TOTAL, "Releases refused", ["reason"], registry=r
        )
        self.staleness = Gauge(
            names.DATA_STALENESS_SECONDS, "Age of the newest closed bar (s)", ["symbol"], registry=r
        )
        self.equity = Gauge(names.EQUITY_USD, "Account equity (USD)", registry=r)
        self.risk_state = Gauge(
            names.RISK_STATE, "1 for the current risk state", ["state"], registry=r
        )
        self.training_duration = Gauge(
            names.TRAINING_JOB_DURATION_SECONDS,
            "Fit time of the newest model per coin and regime (s)",
            ["coin", "regime"],
            registry=r,
        )
        self.training_jobs = Gauge(
            names.TRAINING_JOBS_TOTAL, "Model versions by stage", ["status"], registry=r
        )
        self.gate_verdicts = Gauge(
            names.TRAINING_GATE_VERDICTS,
            "Promotion gate verdicts of the newest training day's keys",
            ["verdict"],
            registry=r,
        )
        self.daily_runs = Gauge(
            names.DAILY_RUNS_TOTAL,
            "Finished runs of the daily Dagster jobs by status (all time)",
            ["dagster_job", "status"],
            registry=r,
        )
        self.daily_run_last_status = Gauge(
            names.DAILY_RUN_LAST_STATUS,
            "Newest run of each daily job: 1 success, 0 failure, -1 canceled",
            ["dagster_job"],
            registry=r,
        )
        self.daily_run_last_duration = Gauge(
            names.DAILY_RUN_LAST_DURATION_SECONDS,
            "Duration of the newest run of each daily job (s)",
            ["dagster_job"],
            registry=r,
        )
        # registered at the first successful push: absent until then rather than a 0 (1970)
        # that would read as "no release for 56 years"
        self.release_last_success = Gauge(
            names.RELEASE_LAST_SUCCESS_TIMESTAMP_SECONDS,
            "End of the newest release_push run whose outcome was pushed or unchanged (unix s)",
            registry=None,
        )
        self._release_success_registered = False
        self._initialise()

    def _initialise(self) -> None:
        for action in Action:
            for regime in REGIMES:
                self.decisions.labels(action.value, regime.value)
        for side in (Action.BUY.value, Action.SELL.value):
            for status in ORDER_STATUSES:
                self.orders.labels(side, status)
        for denial in DenialReason:
            self.denials.labels(denial.value)
        for refusal in REFUSAL_REASONS:
            self.release_refused.labels(refusal)
        for job in DAILY_JOBS:  # a zero count, not "no data", before the first run
            for status in RUN_STATUSES:
                self.daily_runs.labels(job, status)
        for engine in ENGINE_NAMES:
            self.errors.labels(engine, ERROR_TYPES[0])
        for result in ("applied", "drift", "deferred", "failed"):
            self.reconciles.labels(result)
        for reason in REFUSAL_CODES:  # rate() and the refusal alert see a first refusal
            self.order_reports.labels("rejected", reason)
        self.kill_switch.set(0.0)
        self.set_risk_state(TradingState.ACTIVE)

    def set_risk_state(self, state: TradingState) -> None:
        for candidate in TradingState:
            self.risk_state.labels(candidate.name).set(1.0 if candidate is state else 0.0)

    def count_error(self, component: str, error: BaseException | str) -> None:
        """One failure of ``component`` (one of :data:`COMPONENTS`) for engine_error_rate."""
        kind = error if isinstance(error, str) else type(error).__name__
        self.errors.labels(component, kind).inc()

    def set_release(self, release_id: int, age_s: float, previous_id: int | None) -> None:
        if previous_id is not None and previous_id != release_id:
            self.release_info.labels(str(previous_id)).set(0.0)
        self.release_info.labels(str(release_id)).set(1.0)
        self.release_age.set(age_s)

    def set_spread(self, symbol: str, spread_bps: float, source: str) -> None:
        """The spread the cost model used for ``symbol`` and its source; a symbol reports one
        source at a time (the series of its previous source is removed)."""
        previous = self._spread_source.get(symbol)
        if previous is not None and previous != source:
            self.spread.remove(self.venue, symbol, previous)
        self._spread_source[symbol] = source
        value = spread_bps if math.isfinite(spread_bps) else 0.0
        self.spread.labels(self.venue, symbol, source).set(value)

    def observe_costs(self, components: Mapping[str, float]) -> None:
        for component in COST_COMPONENTS:
            value = components.get(f"{component}_bps")
            if value is not None and math.isfinite(value):
                self.costs.labels(self.venue, component).observe(value)

    def export_training(self, models: Iterable[ModelVersion]) -> None:
        """Training series from the Brain Library's model versions (module docstring)."""
        # a stage emptied since the last export reads 0, not its old count
        by_stage = {stage.value: 0 for stage in Stage}
        newest: dict[tuple[str, str], ModelVersion] = {}
        models = list(models)
        last_day = max((m.partition_date for m in models), default=None)
        newest_day_models = [m for m in models if m.partition_date == last_day]
        for model in models:
            by_stage[model.stage.value] = by_stage.get(model.stage.value, 0) + 1
            key = (model.key.coin, model.key.regime)
            if key not in newest or model.version > newest[key].version:
                newest[key] = model
        for stage, count in by_stage.items():
            self.training_jobs.labels(stage).set(count)
        for verdict, count in gate_counts(newest_day_models).items():
            self.gate_verdicts.labels(verdict).set(count)
        for (coin, regime), model in newest.items():
            self.training_duration.labels(coin, regime).set(fit_seconds(model))

    def export_daily_runs(self, summary: PipelineSummary) -> None:
        """The pipeline run table's summary (module docstring)."""
        for (job, status), count in summary.counts.items():
            self.daily_runs.labels(job, status).set(count)
        for job, run in summary.last.items():
            self.daily_run_last_status.labels(job).set(LAST_STATUS_VALUE[run.status])
            if run.duration_s is not None:
                self.daily_run_last_duration.labels(job).set(run.duration_s)
        if summary.last_push_success_at is None:
            return
        if not self._release_success_registered:
            self.registry.register(self.release_last_success)
            self._release_success_registered = True
        self.release_last_success.set(summary.last_push_success_at.timestamp())


def gate_counts(models: Iterable[ModelVersion]) -> dict[str, int]:
    """Promotion gate verdicts (``validation["gate"]["passed"]``) of ``models``: passed, failed,
    and not judged (validated before the gate existed, or never validated)."""
    counts = {"passed": 0, "failed": 0, "not_judged": 0}
    for model in models:
        gate = (model.validation or {}).get("gate")
        verdict = "not_judged" if not gate else ("passed" if gate.get("passed") else "failed")
        counts[verdict] += 1
    return counts


def fit_seconds(model: ModelVersion) -> float:
    """The model's recorded fit time (``metrics["fit_seconds"]``, written by the training DAG's
    registration), else 0."""
    for source in (model.metrics, model.validation or {}):
        for name in ("fit_seconds", "fit_s"):
            value: Any = source.get(name) if isinstance(source, Mapping) else None
            if isinstance(value, int | float):
                return float(value)
    return 0.0
