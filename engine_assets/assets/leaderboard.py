"""engine_leaderboard (weekly): ranks the rule engines by regime and, with auto-gating on,
writes next week's regime-gate overrides to the Brain Library (audited)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from engine_assets.resources import BrainLibraryResource, EngineConfigResource
from trading_core.market.parquet_store import ParquetStore
from trading_core.reporting import markdown_table
from trading_core.training.jobs import CoinJob, load_coin_frame
from trading_core.training.leaderboard import gate_overrides, universe_leaderboard

weekly_partitions = dg.WeeklyPartitionsDefinition(start_date="2025-01-06", timezone="UTC")
LEADERBOARD_TIMEFRAME = "1h"


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
    week_start = datetime.strptime(context.partition_key, "%Y-%m-%d").replace(tzinfo=UTC)
    as_of = week_start + timedelta(days=7)
    store = ParquetStore(Path(config.data.store_path))
    symbols = store.list_symbols(LEADERBOARD_TIMEFRAME)[: config.engine.active_coins]
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
    board = universe_leaderboard(frames, window_bars=window)
    gated = False
    if config.regime_gates.auto_gating:
        payload = gate_overrides(board, config.regime_gates)
        brain.open().set_regime_gates(
            as_of.date(),
            payload,
            actor="engine-leaderboard",
            reason=f"weekly leaderboard {context.partition_key}: hit rate >= "
            f"{config.regime_gates.auto_gating_min_hit_rate} over {window} bars "
            f"x {len(frames)} coins",
        )
        gated = True
    top = board.sort(["regime", "rank"]).filter(board["rank"] <= 5).to_dicts()
    return dg.MaterializeResult(
        metadata={
            "coins": len(frames),
            "window_bars": window,
            "gates_updated": gated,
            "top_engines": dg.MetadataValue.md(
                markdown_table(
                    top, ["regime", "rank", "engine", "hit_rate", "pnl_contribution_bps", "n_votes"]
                )
            ),
        }
    )
