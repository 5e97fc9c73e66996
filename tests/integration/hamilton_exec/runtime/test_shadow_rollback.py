"""Rollback from the command line writes a new release that Hamilton's release sensor serves
at its next poll: ``brain rollback KEY [--to N]`` and ``brain rollback --release ID``."""

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from coin_engine.cli.brain_cmd import brain_app
from hamilton_exec.accounting.event_store import EventSink
from hamilton_exec.runtime.release_sensor import ReleaseSensor
from hamilton_exec.settings import HamiltonSettings
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from hamilton_exec.tick.hamilton_engine import HamiltonEngine
from tests.integration.hamilton_fixtures import (
    full_history_symbols,
    hamilton_config,
    market,
    train_models,
)
from trading_core.brain import BrainLibrary, ModelVersion
from trading_core.config.models import EngineConfig
from trading_core.types import REGIME_CODES, Regime, Stage

ENV = {"COLUMNS": "250", "NO_COLOR": "1"}


class World:
    """One coin with yesterday's models (v1) and today's (v2) released; Hamilton serving."""

    def __init__(self, tmp: Path) -> None:
        self.config: EngineConfig = hamilton_config(tmp)
        source = market(self.config)
        self.symbol = full_history_symbols(source)[0]
        self.library = BrainLibrary.from_config(self.config)
        self.library.migrate()
        end = source.end - timedelta(days=2)
        self.old = train_models(
            self.library, self.config, source, [self.symbol], train_end=end - timedelta(days=1)
        )
        self.new = train_models(
            self.library, self.config, source, [self.symbol], train_end=end, tag="new"
        )
        self.first = self.library.create_release(
            end.date() - timedelta(days=1),
            production=[m.name for m in self.old],
            created_by="tests",
        )
        self.second = self.library.create_release(
            end.date(), production=[m.name for m in self.new], created_by="tests"
        )
        settings = HamiltonSettings.from_config(
            self.config, symbols=(self.symbol,), metrics_port=None, health_port=0
        )
        self.engine = HamiltonEngine(
            self.config,
            settings,
            (self.symbol,),
            sink=EventSink(None, tmp / "spool.jsonl"),
            metrics=HamiltonMetrics(venue=self.config.cost_model.venue),
        )
        self.sensor = ReleaseSensor(self.library, self.engine)
        assert self.sensor.poll().release_id == self.second.id

    def served(self) -> set[str]:
        assert self.engine.release is not None
        return set(self.engine.release.coin(self.symbol.split("/")[0]).versions.values())

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(brain_app, list(args), obj={"config": self.config}, env=ENV)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_key_rollback_is_served_at_the_next_poll(world: World) -> None:
    assert world.served() == {m.name for m in world.new}
    key = world.new[0].key
    result = world.cli("rollback", key.slug, "--reason", "live drawdown", "--actor", "ops")
    assert result.exit_code == 0, result.output
    poll = world.sensor.poll()
    assert poll.status == "loaded" and poll.release_id not in (world.first.id, world.second.id)
    restored = _of_key(world.old, key.slug)
    assert restored.name in world.served()
    assert world.engine.release is not None
    version = world.engine.release.coin(key.coin).version_for(REGIME_CODES[Regime(key.regime)])
    assert version == restored.name
    change = world.library.stage_history(restored.name)[-1]
    assert (change.actor, change.to_stage) == ("ops", Stage.PRODUCTION)
    assert "live drawdown" in change.reason and change.at is not None
    release = world.library.latest_release()
    assert release is not None and release.created_by == "ops"
    assert "rollback of" in release.note


def test_release_rollback_restores_every_model_at_the_next_poll(world: World) -> None:
    result = world.cli("rollback", "--release", str(world.first.id), "--reason", "bad day")
    assert result.exit_code == 0, result.output
    poll = world.sensor.poll()
    assert poll.status == "loaded"
    assert world.served() == {m.name for m in world.old}
    latest = world.library.latest_release()
    assert latest is not None and latest.rollback_of_id == world.first.id
    assert all(world.library.get_model(m.name).stage is Stage.ARCHIVED for m in world.new)
    assert world.sensor.poll().status == "unchanged"


@pytest.mark.parametrize(
    "args",
    [
        ("rollback", "--reason", "r"),
        ("rollback", "BTC_RANGE_1h", "--release", "1", "--reason", "r"),
        ("rollback", "--release", "1", "--to", "2", "--reason", "r"),
    ],
)
def test_rollback_needs_exactly_one_target(world: World, args: tuple[str, ...]) -> None:
    result = world.cli(*args)
    assert result.exit_code == 2
    assert world.library.latest_release() == world.second


def _of_key(models: list[ModelVersion], slug: str) -> ModelVersion:
    return next(m for m in models if m.key.slug == slug)
