"""``coin-engine data rank`` on the configured (synthetic) source."""

import pytest
from typer.testing import CliRunner

from coin_engine.cli.app import app
from tests.unit.market_fixtures import fresh_structlog  # noqa: F401  (autouse)


def test_data_rank_prints_the_ranked_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE__DATA__SYNTHETIC__N_COINS", "40")
    monkeypatch.setenv("ENGINE__DATA__SYNTHETIC__DAYS", "20")
    result = CliRunner().invoke(app, ["data", "rank", "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "BTC/USDT" in result.output and "ETH/USDT" in result.output
    assert "removed by filter" in result.output and "min_daily_volume_usd" in result.output


def test_data_fetch_rejects_a_bad_date() -> None:
    result = CliRunner().invoke(
        app, ["data", "fetch", "--symbols", "BTC/USDT", "--since", "yesterday"]
    )
    assert result.exit_code != 0
    assert "not a date" in result.output
