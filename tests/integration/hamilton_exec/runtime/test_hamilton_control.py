"""The kill switch's control surface: authenticated POST /control/kill|resume applied between
ticks, the control file (idempotent, applied at start), GET /status, and the CLI's kill, resume
and status commands (one line and exit 2 on bad input; no secret in any output or file)."""

import asyncio
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from hamilton_exec.cli import app as hamilton_app
from hamilton_exec.runtime.control import (
    APPLIED_FILE,
    CONTROL_FILE,
    ControlDesk,
    ControlError,
    applied_id,
    authorize,
    new_request,
    pending_request,
    read_control,
    write_control,
)
from hamilton_exec.runtime.service import HamiltonService
from hamilton_exec.runtime.status import build_status
from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, ReplayWindow
from tests.integration.hamilton_fixtures import hamilton_config, market
from trading_core.config.models import EngineConfig
from trading_core.observability.logging import configure_logging
from trading_core.risk import Position, RiskState

TOKEN = "tok-3f9a7c1e5b2d4a6f8e0c1b3d5f7a9e2c"  # noqa: S105 - a test value, looked for
API_KEY = "key-AKIAEXAMPLE7Q2W4E6R"
API_SECRET = "sec-9d8c7b6a5f4e3d2c1b0a"  # noqa: S105 - a test value, looked for
TOKEN_ENV = "HAMILTON_CONTROL_TOKEN"  # noqa: S105 - a variable name


def _config(tmp: Path) -> EngineConfig:
    keys = {"exchange": {"api_key": API_KEY, "api_secret": API_SECRET}}
    return hamilton_config(tmp, n_coins=4, days=12, data=keys)


def _service(config: EngineConfig, *, health_port: int | None = 0, **kw: Any) -> HamiltonService:
    source = market(config)
    window = ReplayWindow(source.end - timedelta(days=2), source.end, kw.pop("speed", 0.0))
    settings = HamiltonSettings.from_config(
        config, replay=window, metrics_port=None, health_port=health_port, **kw
    )
    return build_service(config, settings, library=None, source=source).service


@contextmanager
def _running(service: HamiltonService, *, tick_s: float = 0.1) -> Iterator[str]:
    """Run ``service`` in a thread, each tick slowed to ``tick_s`` (held under the engine's
    lock, as a real tick is); yields the health base URL once a tick was decided."""
    engine, original = service.engine, service.engine.on_tick

    def slow_tick(tick: Any) -> Any:
        with engine.lock:
            time.sleep(tick_s)
            return original(tick)

    engine.on_tick = slow_tick  # type: ignore[method-assign]
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(s=asyncio.run(service.run())))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        serving = service.settings.health_port is None or service.health_port is not None
        while not (serving and service.summary.ticks) and thread.is_alive():
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.02)
            serving = service.settings.health_port is None or service.health_port is not None
        yield f"http://127.0.0.1:{service.health_port}"
    finally:
        service.request_stop("test")
        thread.join(timeout=60)
    assert not thread.is_alive()


def _call(url: str, body: Any = None, token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body else None
    method = "POST" if data is not None else "GET"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _cli(config: EngineConfig, *args: str, token: str | None = None) -> Result:
    env = {TOKEN_ENV: token or ""}
    return CliRunner().invoke(hamilton_app, list(args), obj={"config": config}, env=env)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the endpoints ------------------------------------------------------------------------------


def test_control_without_a_configured_token_answers_403(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    service = _service(_config(tmp_path))
    with _running(service) as base:
        for action in ("kill", "resume"):
            status, body = _call(f"{base}/control/{action}", {"reason": "test"}, token=TOKEN)
            assert (status, body["error"]) == (403, f"control disabled: set {TOKEN_ENV}")
        assert not service.engine.state.kill_switch


def test_kill_and_resume_over_http_apply_between_ticks_and_persist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    config = _config(tmp_path)
    service = _service(config)
    engine = service.engine
    calls: list[bool] = []
    original_kill = engine.kill

    def spy_kill(reason: str, *args: Any, **kwargs: Any) -> Any:
        # the engine's lock is held by its caller; a tick in flight would hold it too
        calls.append(engine.lock._is_owned())  # type: ignore[attr-defined]
        return original_kill(reason, *args, **kwargs)

    monkeypatch.setattr(engine, "kill", spy_kill)
    state_file = Path(config.hamilton.state_path) / "hamilton_state.json"
    with _running(service, tick_s=0.15) as base:
        kill = f"{base}/control/kill"
        assert _call(kill, {"reason": "test"}, token="x")[0] == 401  # noqa: S106
        assert _call(kill, {"reason": "test"})[0] == 401
        assert _call(kill, "not json", token=TOKEN)[0] == 400
        status, body = _call(kill, {"reason": "  "}, token=TOKEN)
        assert status == 400 and "reason" in body["error"]
        assert not engine.state.kill_switch and calls == []
        status, body = _call(f"{base}/control/kill", {"reason": "exchange incident"}, TOKEN)
        assert status == 200, body
        assert body["kill_switch"] is True and body["risk_state"] == "halted"
        assert calls == [True]
        assert engine.state.kill_switch
        assert json.loads(state_file.read_text())["risk_state"]["kill_switch"] is True
        status, view = _call(f"{base}/status")
        assert status == 200 and view["source"] == "service"
        assert view["risk"]["state"] == "halted" and view["risk"]["kill_switch"] is True
        assert view["risk"]["kill_reason"] == "exchange incident"
        status, body = _call(f"{base}/control/resume", {"reason": "all clear"}, TOKEN)
        assert status == 200 and body["kill_switch"] is False
        assert not engine.state.kill_switch
    assert json.loads(state_file.read_text())["risk_state"]["kill_switch"] is False


def test_control_file_request_applies_once_at_start_and_while_running(tmp_path: Path) -> None:
    config = _config(tmp_path)
    state_dir = Path(config.hamilton.state_path)
    state_dir.mkdir(parents=True)
    request = new_request("kill", "set before the start", origin="test")
    write_control(state_dir, request)
    service = _service(config, health_port=None, max_bars=2)
    seen: list[bool] = []
    original = service.engine.on_tick

    def watched_tick(tick: Any) -> Any:
        seen.append(service.engine.state.kill_switch)
        return original(tick)

    service.engine.on_tick = watched_tick  # type: ignore[method-assign]
    asyncio.run(service.run())
    assert seen and all(seen)  # applied before the first tick
    assert applied_id(state_dir) == request.id and pending_request(state_dir) is None
    restarted = _service(config, health_port=None, speed=7_200.0)  # 0.5 s a bar
    kills: list[str] = []
    restarted.engine.kill = kills.append  # type: ignore[method-assign, assignment]
    with _running(restarted, tick_s=0.0):
        assert restarted.engine.state.kill_switch  # restored from the saved state
        resume = new_request("resume", "file resume", origin="test")
        write_control(state_dir, resume)
        deadline = time.monotonic() + 10
        while restarted.engine.state.kill_switch and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not restarted.engine.state.kill_switch
    assert kills == []  # the kill already applied was not applied again
    assert applied_id(state_dir) == resume.id


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_bad_input_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    config = _config(tmp_path)
    for args in (
        ("kill",),
        ("resume", "--reason", " "),
        ("status", "--state-dir", str(tmp_path / "nowhere"), "--port", str(_free_port())),
        ("kill", "--reason", "x", "--state-dir", str(tmp_path / "nowhere"), "--port", "0"),
    ):
        result = _cli(config, *args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.output)
        assert "Traceback" not in result.output


def test_cli_kill_without_a_service_writes_the_control_file(tmp_path: Path) -> None:
    config = _config(tmp_path)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    port = str(_free_port())
    result = _cli(config, "kill", "--reason", "nobody home", "--port", port)
    assert result.exit_code == 0, result.output
    first = read_control(state_dir)
    assert first is not None and (first.action, first.reason) == ("kill", "nobody home")
    assert _cli(config, "resume", "--reason", "back", "--port", port).exit_code == 0
    second = read_control(state_dir)
    assert second is not None and second.action == "resume" and second.id != first.id
    assert not (state_dir / APPLIED_FILE).exists()


def test_cli_kill_status_resume_through_the_service_never_show_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    logs = io.StringIO()
    configure_logging(fmt="json", stream=logs)  # not into the CLI's captured output
    config = _config(tmp_path)
    service = _service(config)
    with _running(service) as base:
        port = base.rsplit(":", 1)[1]
        refused = _cli(config, "kill", "--reason", "no token", "--port", port, token="x")  # noqa: S106
        assert refused.exit_code == 2 and "401" in refused.output
        killed = _cli(config, "kill", "--reason", "manual stop", "--port", port, token=TOKEN)
        assert killed.exit_code == 0 and "kill switch ON" in killed.output, killed.output
        live = _cli(config, "status", "--port", port, "--json")
        assert live.exit_code == 0, live.output
        view = json.loads(live.output)
        assert view["source"] == "service" and view["risk"]["kill_reason"] == "manual stop"
        table = _cli(config, "status", "--port", port)
        assert "HALTED" in table.output and "ON: manual stop" in table.output
    saved = _cli(config, "status", "--port", str(_free_port()), "--json")
    assert saved.exit_code == 0, saved.output
    from_file = json.loads(saved.output)
    assert from_file["source"].startswith("saved state")
    assert from_file["risk"]["kill_switch"] is True
    assert from_file["risk"]["kill_reason"] == "manual stop"
    assert from_file["last_tick_at"] is not None and from_file["release_id"] is None
    outputs = [refused.output, killed.output, live.output, table.output, saved.output]
    assert "kill_switch_on" in logs.getvalue()
    outputs.append(logs.getvalue())
    files = [p.read_text() for p in Path(config.hamilton.state_path).iterdir() if p.is_file()]
    for text in outputs + files:
        for secret in (TOKEN, API_KEY, API_SECRET):
            assert secret not in text


# --- the pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token", "status"),
    [
        ("Bearer right", None, 403),
        (None, "right", 401),
        ("Basic right", "right", 401),
        ("Bearer wrong", "right", 401),
        ("Bearer right", "right", 200),
        ("bearer  right ", "right", 200),
    ],
)
def test_authorize_answers_by_token_and_header(
    header: str | None, token: str | None, status: int
) -> None:
    assert authorize(header, token, token_env=TOKEN_ENV).status == status


def test_control_file_is_idempotent_and_checked(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="does not exist"):
        write_control(tmp_path / "missing", new_request("kill", "x", origin="test"))
    request = new_request("kill", "x", origin="test")
    write_control(tmp_path, request)
    assert read_control(tmp_path) == request
    applied: list[str] = []

    class Target:
        lock = threading.RLock()
        state = RiskState(cash_usd=1.0, day=datetime.now(UTC).date(), day_start_equity_usd=1.0)

        def kill(self, reason: str) -> None:
            applied.append(reason)

        def resume(self, reason: str) -> None:
            applied.append(f"resume {reason}")

    desk = ControlDesk(Target(), tmp_path, lambda: None)
    assert desk.apply_file() == request and desk.apply_file() is None
    assert applied == ["x"]
    (tmp_path / CONTROL_FILE).write_text("{not json")
    assert desk.apply_file() is None  # logged, the service goes on
    with pytest.raises(ControlError, match="not JSON"):
        read_control(tmp_path)
    desk.close()
    write_control(tmp_path, new_request("resume", "late", origin="test"))
    assert desk.apply_file() is None and applied == ["x"]  # closed: left for the next start


def test_build_status_computes_pnl_and_shows_only_known_fields() -> None:
    state = RiskState(
        cash_usd=50_000.0,
        day=datetime(2026, 5, 4, tzinfo=UTC).date(),
        day_start_equity_usd=101_000.0,
        positions={"ETH/USDT": Position(10.0, 2_000.0, 2_100.0, 3)},
        kill_switch=True,
        kill_reason="incident",
    )
    order = {"client_order_id": "ham-1", "symbol": "ETH/USDT", "signed_qty": -10.0}
    snapshot = {
        "risk_state": state.to_dict(),
        "orders": {"ham-1": {"order": {**order, "reduce_only": True}, "filled_qty": 4.0}},
        "clock_offset_ms": -12,
        "api_secret": API_SECRET,
        "last_open_ms": {"ETH/USDT": 1_777_888_800_000},
    }
    view = build_status(snapshot, initial_capital_usd=100_000.0, source="test")
    assert view["pnl"]["unrealized_usd"] == pytest.approx(1_000.0)
    assert view["pnl"]["total_usd"] == pytest.approx(-29_000.0)
    assert view["pnl"]["realized_usd"] == pytest.approx(-30_000.0)
    assert view["risk"] == {**view["risk"], "state": "halted", "kill_reason": "incident"}
    assert view["open_orders"][0]["side"] == "sell" and view["open_orders"][0]["filled_qty"] == 4.0
    assert view["clock_offset_ms"] == -12
    assert API_SECRET not in json.dumps(view)
    pending = {"risk_state": state.to_dict(), "broker": {"pending": [order]}}
    assert build_status(pending, initial_capital_usd=1.0, source="t")["open_orders"][0]["qty"] == 10
    with pytest.raises(ControlError, match="risk_state"):
        build_status({}, initial_capital_usd=1.0, source="t")
