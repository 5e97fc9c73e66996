"""Prometheus metric names shared by Hamilton, the training side, dashboards and alerts.

The first six are the seed's names; the rest cover decisions, orders, risk, releases and data.
"""

from typing import Final

ENGINE_PNL_USD: Final = "engine_pnl_usd"  # gauge {engine, symbol, regime}
ENGINE_LATENCY_MS: Final = "engine_latency_ms"  # histogram {engine, operation}
ENGINE_ERROR_RATE: Final = "engine_error_rate"  # counter {engine, error_type}
CONSENSUS_CONFIDENCE: Final = "consensus_confidence"  # histogram {regime}
COST_MODEL_SPREAD_BPS: Final = "cost_model_spread_bps"  # gauge {venue, symbol, source}
TRAINING_JOB_DURATION_SECONDS: Final = "training_job_duration_seconds"  # gauge {coin, regime}
DECISIONS_TOTAL: Final = "hamilton_decisions_total"  # counter {action, regime}
ORDERS_TOTAL: Final = "hamilton_orders_total"  # counter {side, status}
ORDER_REPORTS_TOTAL: Final = "hamilton_order_reports_total"
POSITION_QTY: Final = "hamilton_position_qty"
POSITION_NOTIONAL_USD: Final = "hamilton_position_notional_usd"
OPEN_ORDERS: Final = "hamilton_open_orders"
RECONCILE_DRIFT: Final = "hamilton_reconcile_drift"
RECONCILE_TOTAL: Final = "hamilton_reconciles_total"
EXCHANGE_CLOCK_OFFSET_MS: Final = "hamilton_exchange_clock_offset_ms"
KILL_SWITCH: Final = "hamilton_kill_switch"
EVENTS_SPOOL_DEPTH: Final = "hamilton_events_spool_depth"
REALIZED_COST_ERROR_BPS: Final = "hamilton_realized_cost_error_bps"
RISK_DENIALS_TOTAL: Final = "hamilton_risk_denials_total"  # counter {reason}
RELEASE_INFO: Final = "hamilton_release_info"  # gauge {release_id}
RELEASE_AGE_SECONDS: Final = "hamilton_release_age_seconds"  # gauge
RELEASE_REFUSED_TOTAL: Final = "hamilton_release_refused_total"  # counter {reason}
DATA_STALENESS_SECONDS: Final = "hamilton_data_staleness_seconds"  # gauge {symbol}
EQUITY_USD: Final = "hamilton_equity_usd"  # gauge
RISK_STATE: Final = "hamilton_risk_state"  # gauge {state} (1 for the current state)
COST_BPS: Final = "cost_model_cost_bps"  # histogram {venue, component}
TRAINING_JOBS_TOTAL: Final = "training_jobs_total"  # gauge {status}
TRAINING_GATE_VERDICTS: Final = "training_gate_verdicts"  # gauge {verdict} (newest day's keys)
SPREAD_FALLBACKS_TOTAL: Final = "hamilton_spread_fallbacks_total"  # counter {reason}
BOOK_AGE_SECONDS: Final = "hamilton_book_age_seconds"  # gauge {symbol}
STALE_MARKET_DATA_TOTAL: Final = "hamilton_stale_market_data_total"  # counter {kind}
FEED_RECONNECTS_TOTAL: Final = "hamilton_feed_reconnects_total"  # counter {stream}
FEED_GAP_FILLED_BARS_TOTAL: Final = "hamilton_feed_gap_filled_bars_total"  # counter
FEED_DROPPED_TOTAL: Final = "hamilton_feed_dropped_total"  # counter {reason}
FEED_CLOSE_TO_TICK_SECONDS: Final = "hamilton_feed_close_to_tick_seconds"  # histogram
FEED_MESSAGE_AGE_SECONDS: Final = "hamilton_feed_message_age_seconds"  # gauge {stream}
FEED_REJECTED_CANDLES_TOTAL: Final = "hamilton_feed_rejected_candles_total"  # counter {reason}
FEED_BARS_TOTAL: Final = "hamilton_feed_bars_total"  # counter {via} (stream, rest)
# The daily Dagster pipeline, exported by Hamilton from the Brain Library's pipeline run table.
# The Dagster job is the label `dagster_job`: a label named `job` would clash with the scrape
# target's own `job` label (Prometheus renames it `exported_job`).
DAILY_RUNS_TOTAL: Final = "engine_daily_runs_total"  # gauge {dagster_job, status} (all time)
DAILY_RUN_LAST_STATUS: Final = "engine_daily_run_last_status"  # gauge {dagster_job} 1/0/-1
DAILY_RUN_LAST_DURATION_SECONDS: Final = "engine_daily_run_last_duration_seconds"  # {dagster_job}
RELEASE_LAST_SUCCESS_TIMESTAMP_SECONDS: Final = "engine_release_last_success_timestamp_seconds"
