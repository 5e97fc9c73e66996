"""Kill and resume requests for a Hamilton process: the control file and the token check.

Two ways in, both ending in ``HamiltonEngine.kill(reason)`` / ``resume(reason)``:

* ``POST /control/kill`` and ``POST /control/resume`` on the health port, JSON
  ``{"reason": "..."}`` with ``Authorization: Bearer <token>``. The token is read from the
  environment variable named by ``hamilton.control_token_env``; without one the endpoints are
  disabled (403), a wrong or missing bearer is refused (401). See :func:`authorize`.
* When the service does not answer, ``coin-engine hamilton kill|resume`` writes the request to
  ``<state_dir>/control.json`` (:func:`write_control`, atomic). The service applies a pending
  request at start and while it runs (:func:`pending_request`), then records its id in
  ``control.applied.json`` (:func:`mark_applied`): each request applies once, across restarts
  too. The CLI only ever writes ``control.json`` and the service only ``control.applied.json``,
  so neither can overwrite the other's write.

The token itself is never logged, persisted or shown; only the variable's name is.
"""

import hmac
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from trading_core.config.models import EngineConfig
from trading_core.errors import FatalError
from trading_core.observability.logging import get_logger
from trading_core.risk import RiskState

CONTROL_FILE: Final = "control.json"
CONTROL_POLL_S: Final = 1.0  # how often a running service looks for a file request
APPLIED_FILE: Final = "control.applied.json"
MAX_REASON_CHARS: Final = 500
ControlAction = Literal["kill", "resume"]
ACTIONS: Final[tuple[ControlAction, ...]] = ("kill", "resume")


def _log() -> Any:
    return get_logger(__name__)


class ControlError(FatalError):
    """A control request, control file or state file that cannot be used (the message says
    which and why)."""


class ControlTarget(Protocol):
    """What a request is applied to (``HamiltonEngine``): ``lock`` is the lock its tick holds,
    so a request taken under it applies between two ticks, never inside one."""

    @property
    def lock(self) -> AbstractContextManager[Any]: ...

    @property
    def state(self) -> RiskState: ...

    def kill(self, reason: str) -> Any: ...

    def resume(self, reason: str) -> Any: ...


def check_reason(reason: object) -> str:
    """The stripped reason; ControlError when it is missing, empty, too long or not text."""
    if not isinstance(reason, str) or not reason.strip():
        raise ControlError("a reason is required: say why, e.g. --reason 'exchange incident'")
    text = reason.strip()
    if len(text) > MAX_REASON_CHARS:
        raise ControlError(f"reason has {len(text)} characters; at most {MAX_REASON_CHARS}")
    if any(ord(c) < 32 for c in text):
        raise ControlError("reason must be one line of text (no control characters)")
    return text


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """One kill or resume request; ``id`` makes applying it idempotent."""

    action: ControlAction
    reason: str
    id: str
    requested_at: datetime
    origin: str = "cli"

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ControlError(f"control action {self.action!r}; allowed: {list(ACTIONS)}")
        check_reason(self.reason)
        if not self.id or not self.id.isprintable():
            raise ControlError(f"control request id {self.id!r} must be non-empty text")
        if self.requested_at.utcoffset() != timedelta(0):
            raise ControlError(f"requested_at {self.requested_at!r} must be timezone-aware UTC")

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "id": self.id,
            "requested_at": self.requested_at.isoformat(),
            "origin": self.origin,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ControlRequest":
        missing = [k for k in ("action", "reason", "id", "requested_at") if k not in data]
        if missing:
            raise ControlError(f"control request is missing keys {missing}")
        try:
            requested_at = datetime.fromisoformat(str(data["requested_at"]))
        except ValueError:
            raise ControlError(
                f"control request requested_at {data['requested_at']!r} is not an ISO time"
            ) from None
        return cls(
            action=data["action"],
            reason=data["reason"],
            id=str(data["id"]),
            requested_at=requested_at,
            origin=str(data.get("origin", "cli")),
        )


def new_request(
    action: ControlAction, reason: object, *, origin: str, now: datetime | None = None
) -> ControlRequest:
    """A request with a fresh id (the reason is checked and stripped)."""
    return ControlRequest(
        action=action,
        reason=check_reason(reason),
        id=uuid.uuid4().hex,
        requested_at=now or datetime.now(UTC),
        origin=origin,
    )


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> Path:
    """Temp file in the same folder, fsync, rename: a reader sees the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(data), handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ControlError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ControlError(f"{path} is not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ControlError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def write_control(state_dir: Path, request: ControlRequest) -> Path:
    """Leave ``request`` for the service in ``<state_dir>/control.json`` (replaces an earlier
    one: the newest request wins). The folder must exist (a typo must not hide a kill)."""
    if not state_dir.is_dir():
        raise ControlError(
            f"state dir {state_dir} does not exist: give the --state-dir of the Hamilton service "
            "(default: hamilton.state_path)"
        )
    return write_json_atomic(state_dir / CONTROL_FILE, request.to_dict())


def read_control(state_dir: Path) -> ControlRequest | None:
    """The request in ``control.json`` (None when there is none); ControlError if unusable."""
    data = _read_json(state_dir / CONTROL_FILE)
    return None if data is None else ControlRequest.from_dict(data)


def applied_id(state_dir: Path) -> str | None:
    """The id of the last file request the service applied (None before the first)."""
    data = _read_json(state_dir / APPLIED_FILE)
    return None if data is None else str(data.get("id") or "") or None


def pending_request(state_dir: Path) -> ControlRequest | None:
    """The file request not yet applied, or None."""
    request = read_control(state_dir)
    if request is None or request.id == applied_id(state_dir):
        return None
    return request


def mark_applied(state_dir: Path, request: ControlRequest, *, applied_at: datetime) -> Path:
    """Record that ``request`` was applied (so it is never applied again)."""
    return write_json_atomic(
        state_dir / APPLIED_FILE,
        {**request.to_dict(), "applied_at": applied_at.isoformat()},
    )


def apply_request(target: ControlTarget, request: ControlRequest) -> None:
    """``target.kill(reason)`` or ``target.resume(reason)``."""
    if request.action == "kill":
        target.kill(request.reason)
    else:
        target.resume(request.reason)


class ControlDesk:
    """The service's side: applies requests to the engine under its tick lock, then saves the
    state (``save``) so a kill survives a crash. Call from worker threads, never the event
    loop (the lock waits for the tick in flight). After :meth:`close` (the service is
    stopping) nothing more is applied: HTTP callers get None (the CLI then leaves the request
    in the control file, applied at the next start)."""

    def __init__(self, target: ControlTarget, state_dir: Path, save: Callable[[], Any]) -> None:
        self.target, self.state_dir, self.save = target, state_dir, save
        self.open = True
        self._reported: str | None = None  # the file problem last logged (logged once)

    def apply(self, request: ControlRequest) -> dict[str, Any] | None:
        """Apply ``request`` between ticks; what the state is now (None once closed)."""
        with self.target.lock:
            if not self.open:
                return None
            apply_request(self.target, request)
            self.save()
            state = self.target.state
        _log().warning(
            "control_applied",
            action=request.action,
            reason=request.reason,
            request_id=request.id,
            origin=request.origin,
            kill_switch=state.kill_switch,
        )
        return {
            **request.to_dict(),
            "applied": True,
            "kill_switch": state.kill_switch,
            "risk_state": state.effective_state.value,
        }

    def apply_file(self) -> ControlRequest | None:
        """Apply the pending file request, if any, and record it as applied. A control file
        that cannot be read, or a request that fails, is logged once and tried again on the
        next call (a kill must not be dropped)."""
        try:
            request = pending_request(self.state_dir)
            if request is None or self.apply(request) is None:
                return None
            mark_applied(self.state_dir, request, applied_at=datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - the service keeps running; retried next poll
            problem = repr(exc)
            if problem != self._reported:
                self._reported = problem
                _log().error("control_file_failed", path=str(self.state_dir), error=problem)
            return None
        self._reported = None
        return request

    def close(self) -> None:
        """No more requests (waits for one being applied)."""
        with self.target.lock:
            self.open = False


# --- the token ----------------------------------------------------------------------------------


def control_token(config: EngineConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The control token from the variable ``hamilton.control_token_env`` names (None: unset
    or blank, the endpoints are disabled)."""
    env = os.environ if environ is None else environ
    token = env.get(config.hamilton.control_token_env, "").strip()
    return token or None


@dataclass(frozen=True, slots=True)
class AuthVerdict:
    """HTTP status of the authorization check (200 allowed, 401 or 403) and why."""

    status: int
    message: str

    @property
    def allowed(self) -> bool:
        return self.status == 200


def authorize(header: str | None, token: str | None, *, token_env: str) -> AuthVerdict:
    """Check an ``Authorization`` header against the token, in constant time."""
    if token is None:
        return AuthVerdict(403, f"control disabled: set {token_env}")
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return AuthVerdict(401, "missing bearer token: send 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return AuthVerdict(401, "wrong control token")
    return AuthVerdict(200, "ok")


# --- the client side (the CLI) ------------------------------------------------------------------


def service_url(config: EngineConfig, port: int | None) -> str | None:
    """The service's health address for a client (None when its port is random: 0)."""
    chosen = config.hamilton.health_port if port is None else port
    if not chosen:
        return None
    host = config.hamilton.health_host
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - a client
    return f"http://{f'[{host}]' if ':' in host else host}:{chosen}"


def call_service(
    method: str, url: str, *, timeout: float, body: Any = None, token: str | None = None
) -> tuple[int, dict[str, Any]] | None:
    """(status, JSON body) of a request to the service; None when nothing answers."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the token: no proxy
    try:
        with direct.open(request, timeout=timeout) as response:
            status, raw = int(response.status), response.read()
    except urllib.error.HTTPError as error:
        status, raw = int(error.code), error.read()
    except (urllib.error.URLError, OSError):
        return None
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError:
        parsed = {"error": raw[:200].decode(errors="replace")}
    return status, parsed if isinstance(parsed, dict) else {"body": parsed}


def same_state_dir(service_dir: object, given: Path | None) -> bool:
    """False only when --state-dir was given and the service answering runs elsewhere."""
    if given is None or not isinstance(service_dir, str):
        return True
    return Path(service_dir) == given.resolve()
