"""structlog setup: JSON lines, bound context, secrets scrubbed wherever they appear."""

import io
import json
from pathlib import Path

from trading_core.observability.logging import bind_context, configure_logging, get_logger


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_service_and_bound_context() -> None:
    stream = io.StringIO()
    log = get_logger("test")  # created before configuration: must still follow it
    configure_logging(fmt="json", service="hamilton", stream=stream)
    bind_context(symbol="BTC/USDT", release_id=7)
    log.info("decision_logged", action="hold")
    (line,) = _lines(stream)
    assert line["service"] == "hamilton" and line["symbol"] == "BTC/USDT"
    assert line["release_id"] == 7 and line["event"] == "decision_logged"
    assert line["logger_name"] == "test" and line["level"] == "info"


def test_secrets_are_masked_at_any_depth() -> None:
    stream = io.StringIO()
    configure_logging(fmt="json", stream=stream, secrets=["s3cr3t-key", "hunter2"])
    get_logger().warning(
        "exchange_error",
        message="auth failed for s3cr3t-key",
        details={"dsn": "postgresql://u:hunter2@h/db", "tries": [1, "hunter2"]},
        error=RuntimeError("key s3cr3t-key rejected"),
    )
    text = stream.getvalue()
    assert "s3cr3t-key" not in text and "hunter2" not in text
    assert text.count("**********") >= 4


def test_level_filter_drops_debug() -> None:
    stream = io.StringIO()
    configure_logging(fmt="json", level="INFO", stream=stream)
    get_logger().debug("noise")
    assert stream.getvalue() == ""


def test_a_log_path_is_appended_to_across_reconfigurations(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "demo.log"
    configure_logging(path=str(path), service="cli")
    get_logger().info("first")
    configure_logging(path=str(path), service="engine")  # a Dagster step reconfigures
    get_logger().info("second")
    configure_logging(fmt="json", stream=io.StringIO())
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["event"], r["service"]) for r in records] == [("first", "cli"), ("second", "engine")]
