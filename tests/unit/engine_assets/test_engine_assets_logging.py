"""engine_assets.logging: a run's Dagster records and the domain's lines become JSON lines with
service, run_id, partition and step_key, secrets masked (a tiny partitioned asset, in process)."""

import json

import dagster as dg
import pytest

from engine_assets.logging import (
    JSON_LOGS_RUN_CONFIG,
    bind_run,
    engine_console_logger,
    partition_of_tags,
)
from engine_assets.resources import EngineConfigResource
from trading_core.observability.logging import get_logger

SECRET = "exk-unit-4d1f0b9a"  # noqa: S105 - a test value for the exchange API key
days = dg.DailyPartitionsDefinition(start_date="2026-10-01", timezone="UTC")


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"dagster/partition": "2026-10-31"}, "2026-10-31"),
        (
            {
                "dagster/asset_partition_range_start": "2026-10-01",
                "dagster/asset_partition_range_end": "2026-10-31",
            },
            "2026-10-01...2026-10-31",
        ),
        ({"dagster/asset_partition_range_start": "2026-10-01"}, None),
        ({}, None),
    ],
)
def test_partition_of_tags_reads_key_or_range(tags: dict[str, str], expected: str | None) -> None:
    assert partition_of_tags(tags) == expected


@dg.asset(partitions_def=days)
def noisy(context: dg.AssetExecutionContext, engine_config: EngineConfigResource) -> None:
    bind_run(context, engine_config.load())
    get_logger("trading_core.test").info("domain_line", api_key=SECRET)
    context.log.info(f"framework line with {SECRET}")


def _run(monkeypatch: pytest.MonkeyPatch, run_config: dict[str, object]) -> str:
    monkeypatch.setenv("ENGINE__DATA__EXCHANGE__API_KEY", SECRET)
    monkeypatch.setenv("ENGINE__OBSERVABILITY__LOG_FORMAT", "json")
    defs = dg.Definitions(
        assets=[noisy],
        jobs=[dg.define_asset_job("noisy_job", selection=[noisy])],
        resources={"engine_config": EngineConfigResource()},
        loggers={"console": engine_console_logger},
    )
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("noisy_job").execute_in_process(
            run_config=run_config, partition_key="2026-10-31", instance=instance
        )
    assert result.success
    return result.run_id


def test_selected_logger_renders_every_line_as_json_with_run_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = _run(monkeypatch, JSON_LOGS_RUN_CONFIG)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line: JSON or this fails
    events = {r["event"] for r in records}
    assert "domain_line" in events
    assert any(e.startswith("framework line with") for e in events)
    for record in records:
        assert record["service"] == "engine"
        assert record["run_id"] == run_id
        assert record["partition"] == "2026-10-31"
        assert record["step_key"] == "noisy"
    assert SECRET not in "\n".join(lines)
    assert "**********" in "\n".join(lines)  # masked, not dropped


def test_without_the_run_config_dagster_keeps_its_text_console(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Dagster only instantiates loggers named in the run config: why the jobs default to it
    _run(monkeypatch, {})
    err = capsys.readouterr().err
    assert any(not line.startswith("{") for line in err.splitlines() if line.strip())
    assert SECRET not in "\n".join(x for x in err.splitlines() if x.startswith("{"))
