"""The shadow loop end to end with real components: models -> best_models puts challengers in
shadow -> release -> Hamilton paper replay with shadow trading -> shadow_evaluation promotes the
truly better challenger and rejects the equal one -> release -> Hamilton's release sensor serves
the new champion -> ``coin-engine brain rollback`` restores the old one. Every stage change is
in the history with who, when and why.

How "truly better" and "equal" are built (deliberately, fixed seeds), on two coins A and B of
the synthetic market, for their RANGE regime (the most frequent one in the replayed week):

* both champions are XGBoost models fitted on the RANGE bars of the last 40 days with the
  labels permuted (seed 3): same features and data as a real model, no information;
* A's challenger is fitted on the same rows with the TRUE labels, the replayed week included:
  an oracle that has seen the shadow period, so it is truly better there by construction;
* B's challenger is the champion's exact artifact, registered as a new version: equal.

RANGE is gated to the learned engine alone (``regime_gates.RANGE.enabled_engines:
[ml_brain]``), so the models under test decide the RANGE trades; with the full consensus the
rule engines decide most trades and one week gives a handful per key. The shadow test is
shortened to the replayed week (``min_duration_days = max_duration_days = 7``,
``min_trades = 5``): at the end of the week each challenger is promoted or rejected.

Stated statistics (seeded; A = BTC, B = ETH on this market): A is promoted with the HAC
mean-difference p = 4.9e-5 and the Ledoit-Wolf Sharpe-difference p = 0.0005 (the floor of its
2000-sample bootstrap) against the final look's level 0.05; annualized Sharpe -16.3 (champion,
32 trades, win rate 0.41) -> +24.9 (challenger, 15 trades, win rate 1.0). B's paired series are
identical (40 trades each; mean difference 0, p = 0.5), so it is rejected when the maximum
duration is reached without promotion.
"""

import asyncio
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
from typer.testing import CliRunner

from coin_engine.cli.brain_cmd import brain_app
from engine_assets.definitions import DAILY_ASSETS, build_resources
from hamilton_exec.runtime.release_sensor import ReleaseSensor
from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, ReplayWindow
from tests.integration.dagster_fixtures import engine_env
from tests.integration.hamilton_fixtures import (
    coin_frame,
    full_history_symbols,
    market,
    tables_payload,
)
from trading_core.brain import BrainLibrary, ModelKey, ModelVersion
from trading_core.config import EngineConfig, load_config
from trading_core.engines import ML_INPUT_COLUMNS
from trading_core.market.synthetic import SyntheticMarket
from trading_core.shadow.evaluation import SHADOW_ACTOR
from trading_core.training.model import fit_forward_return_model
from trading_core.training.significance import sharpe_evidence
from trading_core.types import REGIME_CODES, Regime, Stage

SHADOW_DAYS = 7
ENV = {
    "ENGINE__ENGINE__ACTIVE_COINS": "4",
    "ENGINE__ENGINE__TIMEFRAMES": '["1h"]',
    "ENGINE__DATA__SYNTHETIC__N_COINS": "8",
    "ENGINE__DATA__SYNTHETIC__DAYS": "75",
    "ENGINE__OBSERVABILITY__PROMETHEUS__PORT": "0",
    "ENGINE__REGIME_GATES__RANGE__ENABLED_ENGINES": '["ml_brain"]',
    "ENGINE__SHADOW_TESTING__MIN_DURATION_DAYS": str(SHADOW_DAYS),
    "ENGINE__SHADOW_TESTING__MAX_DURATION_DAYS": str(SHADOW_DAYS),
    "ENGINE__SHADOW_TESTING__MIN_TRADES": "5",
}
STRONG = {
    "n_estimators": 400,
    "max_depth": 6,
    "learning_rate": 0.1,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "min_child_weight": 1.0,
    "seed": 11,
}
RANGE = REGIME_CODES[Regime.RANGE]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineConfig]:
    for key, value in {**engine_env(tmp_path), **ENV}.items():
        monkeypatch.setenv(key, value)
    yield load_config()


class Models:
    """Fits and registers the deliberately built models (module docstring)."""

    def __init__(self, config: EngineConfig, source: SyntheticMarket, library: BrainLibrary):
        self.config, self.source, self.library = config, source, library
        self.section = config.training.model.model_copy(update=STRONG)

    def fitted(self, symbol: str, *, informed: bool) -> tuple[bytes, dict[str, Any]]:
        frame = coin_frame(
            self.source,
            self.config,
            symbol,
            start=self.source.end - timedelta(days=40),
            end=self.source.end,
        )
        rows = np.flatnonzero(frame.trainable(RANGE))
        labels = frame.label_bps[rows]
        if not informed:
            labels = np.random.default_rng(3).permutation(labels)
        model = fit_forward_return_model(
            frame.features[rows], labels, frame.feature_names, self.section
        )
        return model.artifact, dict(model.params)

    def register(
        self,
        symbol: str,
        artifact: bytes,
        params: dict[str, Any],
        *,
        tag: str,
        day: date,
        oos_mean: float,
        tables: dict[str, Any],
    ) -> ModelVersion:
        key = ModelKey(symbol.split("/", maxsplit=1)[0], "RANGE", "1h")
        version = self.library.register_model(
            key,
            artifact,
            metrics={"train_rows": 1.0},
            params=params,
            feature_list=list(ML_INPUT_COLUMNS),
            data_hash=f"{key.slug}-{tag}",
            partition_date=day,
            created_at=_midnight(day),
            actor="training",
        )
        metrics, validation = constructed_oos(day, oos_mean, seed=len(tag) + day.toordinal())
        return self.library.record_validation(
            version.name,
            metrics=metrics,
            validation={**validation, "reason": f"constructed: {tag}"},
            serving_tables=tables,
        )


def constructed_oos(
    day: date, mean: float, *, seed: int, days: int = 60
) -> tuple[dict[str, float], dict[str, Any]]:
    """A walk-forward record as the validation writes it: 60 out-of-sample days of hourly
    returns ending the day before ``day`` with per-bar mean ``mean`` (these models' claimed
    out-of-sample record is constructed; the shadow week decides on their real trades)."""
    returns = mean + np.random.default_rng(seed).normal(0.0, 0.004, days * 24)
    evidence = sharpe_evidence(returns)
    equity = 100_000.0 * np.cumprod(1.0 + returns)
    first = _midnight(day) - timedelta(days=days)
    daily = [
        [
            float((first + timedelta(days=i, hours=23)).timestamp() * 1000),
            float(equity[i * 24 + 23]),
        ]
        for i in range(days)
    ]
    metrics = {
        "oos_sharpe": evidence.sharpe_per_bar * math.sqrt(8760.0),
        "oos_edge_after_cost_bps": mean * 1e4 * 24.0,
        "oos_n_trades": 100.0,
        "oos_n_returns": float(evidence.n_returns),
        "oos_sharpe_per_bar": evidence.sharpe_per_bar,
        "oos_return_skewness": evidence.skewness,
        "oos_return_kurtosis": evidence.kurtosis,
    }
    return metrics, {"status": "validated", "eligible": True, "equity_daily": daily}


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _materialize(instance: dg.DagsterInstance, partition: date, *names: str) -> dict[str, Any]:
    result = dg.materialize(
        DAILY_ASSETS,
        selection=list(names),
        partition_key=partition.isoformat(),
        resources=build_resources(dask_processes=False),
        instance=instance,
    )
    assert result.success
    return {
        name: {
            k: v.value for k, v in result.asset_materializations_for_node(name)[0].metadata.items()
        }
        for name in names
    }


@pytest.mark.slow
@pytest.mark.e2e
def test_shadow_loop_promotes_better_rejects_equal_serves_and_rolls_back(
    config: EngineConfig,
) -> None:
    source = market(config)
    a, b = full_history_symbols(source)[:2]
    library = BrainLibrary.from_config(config)
    library.migrate()
    start = source.end - timedelta(days=SHADOW_DAYS)
    day1, day2 = start.date() - timedelta(days=2), start.date() - timedelta(days=1)
    build = Models(config, source, library)
    tables = {
        s: tables_payload(
            coin_frame(source, config, s, start=start - timedelta(days=50), end=start), config
        )
        for s in (a, b)
    }

    # day 1: two uninformed champions with a constructed credible OOS record; best_models sends
    # each (the first model of its key through the gate) to production
    noise = {s: build.fitted(s, informed=False) for s in (a, b)}
    champion = {
        s: build.register(s, *noise[s], tag="noise", day=day1, oos_mean=4e-4, tables=tables[s])
        for s in (a, b)
    }
    with dg.instance_for_test() as instance:
        _materialize(instance, day1, "best_models", "shadow_evaluation", "brain_library_push")
        first = library.latest_release()
        assert first is not None and set(first.production) == {m.name for m in champion.values()}

        # day 2: the oracle for A, an exact copy for B; both pass the gate and beat their
        # champion on the common out-of-sample days -> shadow
        better = build.register(
            a,
            *build.fitted(a, informed=True),
            tag="oracle",
            day=day2,
            oos_mean=1.2e-3,
            tables=tables[a],
        )
        # B's copy claims a much better out-of-sample record on the same days (luck, as far as
        # the shadow week can tell): the gate and the paired test send it to shadow, where its
        # real trades are identical to the champion's
        equal = build.register(
            b, *noise[b], tag="copy", day=day2, oos_mean=1.2e-3, tables=tables[b]
        )
        _materialize(instance, day2, "best_models", "shadow_evaluation", "brain_library_push")
        second = library.latest_release()
        assert second is not None and set(second.shadow) == {better.name, equal.name}

        # Hamilton paper replay of the shadow week, the challengers beside their champions
        settings = HamiltonSettings.from_config(
            config,
            symbols=(a, b),
            replay=ReplayWindow(start, source.end, 0.0),
            metrics_port=None,
            health_port=0,
        )
        prepared = build_service(config, settings, library=library, source=source)
        summary = asyncio.run(prepared.service.run(after_ms=prepared.after_ms))
        assert summary.ticks == SHADOW_DAYS * 24
        assert summary.shadow_events == 2 * SHADOW_DAYS * 24

        # the evaluation after the week: A promoted, B rejected, the push releases A
        last_day = source.end.date() - timedelta(days=1)
        meta = _materialize(instance, last_day, "shadow_evaluation", "brain_library_push")
    assert meta["shadow_evaluation"]["decisions_promote"] == 1
    assert meta["shadow_evaluation"]["decisions_reject"] == 1
    third = library.latest_release()
    assert third is not None and third.id == meta["brain_library_push"]["release_id"]
    assert better.name in third.production and not third.shadow

    promoted = _verdict(library, better.name)
    assert promoted["decision"] == "promote" and promoted["duration_days"] == SHADOW_DAYS
    assert promoted["p_value_mean_difference"] < 1e-3 < promoted["promotion_level"]
    assert promoted["p_value_sharpe"] < 0.01
    assert promoted["sharpe_improvement_annualized"] > 10.0
    assert promoted["win_rate_challenger"] - promoted["win_rate_champion"] > 0.3
    assert min(promoted["n_trades_champion"], promoted["n_trades_challenger"]) >= 5
    rejected = _verdict(library, equal.name)
    assert rejected["decision"] == "reject"
    assert rejected["mean_difference_per_bar"] == 0.0 and rejected["p_value_mean_difference"] == 0.5
    assert rejected["reasons"][0] == f"max duration {SHADOW_DAYS} days reached without promotion"
    assert library.get_model(equal.name).stage is Stage.ARCHIVED
    assert library.get_model(champion[a].name).stage is Stage.ARCHIVED

    # Hamilton's release sensor serves the new champion at its next poll
    engine = prepared.service.engine
    sensor = ReleaseSensor(library, engine)
    assert sensor.poll().release_id == third.id
    assert engine.release is not None and not engine.release.shadow
    assert engine.release.coin(better.key.coin).version_for(RANGE) == better.name
    assert engine.release.coin(equal.key.coin).version_for(RANGE) == champion[b].name

    # rollback from the command line: a new release, served at the next poll, old champion back
    rolled = CliRunner().invoke(
        brain_app,
        ["rollback", better.key.slug, "--reason", "operator rollback drill", "--actor", "ops"],
        obj={"config": config},
    )
    assert rolled.exit_code == 0, rolled.output
    poll = sensor.poll()
    assert poll.status == "loaded" and poll.release_id != third.id
    assert engine.release.coin(better.key.coin).version_for(RANGE) == champion[a].name

    # every stage change: who, when, why
    trail = {m.name: library.stage_history(m.name) for m in (champion[a], better, equal)}
    assert [(c.to_stage.value, c.actor) for c in trail[champion[a].name]] == [
        ("candidate", "training"),
        ("production", "training-dag"),
        ("archived", SHADOW_ACTOR),
        ("production", "ops"),
    ]
    assert [(c.to_stage.value, c.actor) for c in trail[better.name]] == [
        ("candidate", "training"),
        ("shadow", "training-dag"),
        ("shadow", SHADOW_ACTOR),  # day 2's look: no evidence yet, keep waiting
        ("production", SHADOW_ACTOR),
        ("archived", "ops"),
    ]
    assert [c.to_stage.value for c in trail[equal.name]] == [
        "candidate",
        "shadow",
        "shadow",
        "archived",
    ]
    for change in (c for changes in trail.values() for c in changes):
        assert change.actor and change.reason and change.at.tzinfo is not None


def _verdict(library: BrainLibrary, name: str) -> dict[str, Any]:
    entry = [c for c in library.stage_history(name) if c.actor == SHADOW_ACTOR][-1]
    assert entry.statistics is not None
    return dict(entry.statistics)
