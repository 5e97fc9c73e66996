"""engine_leaderboard (weekly): ranks the engines by regime from the stored bars and the
DecisionEvents Hamilton logged (``trading_core.training.leaderboard``), reports the shadow
challengers' standing, and with auto-gating on writes next week's regime-gate overrides to the
Brain Library (audited); the next daily push carries them into the release Hamilton follows."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from engine_assets.logging import bind_run
from engine_assets.resources import BrainLibraryResource, EngineConfigResource
from trading_core.brain import BrainLibrary, ShadowResult
from trading_core.market.parquet_store import ParquetStore
from trading_core.reporting import markdown_table
from trading_core.training.jobs import CoinJob, load_coin_frame
from trading_core.training.leaderboard import (
    event_leaderboard,
    forward_returns_by_bar,
    gate_overrides,
    merged_leaderboard,
    shadow_standing,
    universe_leaderboard,
)
from trading_core.types import Stage

weekly_partitions = dg.WeeklyPartitionsDefinition(start_date="2025-01-06", timezone="UTC")
LEADERBOARD_TIMEFRAME = "1h"
TOP_COLUMNS = ("regime", "rank", "engine", "hit_rate", "pnl_contribution_bps", "n_votes", "source")


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="gates",
    kinds={"polars", "sql"},
    description="Engine hit rate and PnL contribution by regime over leaderboard_window_days; "
    "with regime_gates.auto_gating the next week's gates are written to the Brain Library.",
)
def engine_leaderboard(
    context: dg.AssetExecutionContext,
    engine_config: EngineConfigResource,
    brain: BrainLibraryResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    config = engine_config.load()
    bind_run(context, config)
    week_start = datetime.strptime(context.partition_key, "%Y-%m-%d").replace(tzinfo=UTC)
    as_of = week_start + timedelta(days=7)
    store = ParquetStore(config.data.store_path, endpoint_url=config.storage.endpoint_url)
    library = brain.open()
    since = as_of - timedelta(days=config.regime_gates.leaderboard_window_days)
    events = logged_decisions(library, since=since, until=as_of)
    listed = store.list_symbols(LEADERBOARD_TIMEFRAME)
    symbols = sorted(
        set(listed[: config.engine.active_coins]) | ({e["symbol"] for e in events} & set(listed))
    )
    frames = [
        load_coin_frame(
            CoinJob(
                symbol=s,
                timeframe=LEADERBOARD_TIMEFRAME,
                as_of=as_of,
                partition_date=context.partition_key,
                store_root=config.data.store_path,
                config=config,
                regimes=config.training.regimes,
            )
        )
        for s in symbols
    ]
    window = config.regime_gates.leaderboard_window_days * 24
    board = merged_leaderboard(
        event_leaderboard(events, forward_returns_by_bar(frames)),
        universe_leaderboard(frames, window_bars=window),
        min_votes=config.regime_gates.auto_gating_min_votes,
    )
    gated = False
    if config.regime_gates.auto_gating:
        payload = gate_overrides(board, config.regime_gates)
        library.set_regime_gates(
            next_monday(as_of.date()),
            payload,
            actor="engine-leaderboard",
            reason=f"weekly leaderboard {context.partition_key}: hit rate >= "
            f"{config.regime_gates.auto_gating_min_hit_rate} over {window} bars "
            f"x {len(frames)} coins and {len(events)} logged decisions",
        )
        gated = True
    top = board.sort(["regime", "rank"]).filter(board["rank"] <= 5).to_dicts()
    standing = shadow_standing(shadow_results_of(library), since=since)
    return dg.MaterializeResult(
        metadata={
            "coins": len(frames),
            "window_bars": window,
            "logged_decisions": len(events),
            "gates_updated": gated,
            "top_engines": dg.MetadataValue.md(markdown_table(top, TOP_COLUMNS)),
            "shadow_challengers": dg.MetadataValue.md(
                markdown_table(standing.to_dicts(), list(standing.columns))
            ),
        }
    )


def next_monday(day: date) -> date:
    """The first Monday on or after ``day``: gate overrides take effect per Monday-start week
    (the weekly partitions start on Sundays, so a week's board applies from the next day)."""
    return day + timedelta(days=(7 - day.weekday()) % 7)


def logged_decisions(library: BrainLibrary, *, since: datetime, until: datetime) -> list[Any]:
    """The real book's DecisionEvents of the leaderboard's timeframe in ``[since, until)``."""
    return [
        e
        for e in library.query_decision_events(since=since, until=until, shadow=False)
        if (e.get("metadata") or {}).get("timeframe", LEADERBOARD_TIMEFRAME)
        == LEADERBOARD_TIMEFRAME
    ]


def shadow_results_of(library: BrainLibrary) -> list[ShadowResult]:
    """Shadow results of every key that has a model in shadow or production."""
    keys = {
        m.key
        for stage in (Stage.SHADOW, Stage.PRODUCTION)
        for m in library.list_models(stage=stage)
        if m.key.timeframe == LEADERBOARD_TIMEFRAME
    }
    return [r for key in sorted(keys) for r in library.shadow_results(key)]
