"""Fault schedules: per endpoint (``"POST /api/v3/order"``), a queue of faults consumed by the next
matching requests.

Kinds ("before": the request is NOT processed; "after": it is processed, then the answer fails):

* ``503_before`` -- 503 ``-1001 "Internal error; unable to process your request. Please try
  again."``
* ``500_before`` -- 500 ``-1000 "An unknown error occured while processing the request."``
* ``502_before`` -- 502 with an HTML body (a proxy in front of the venue failing)
* ``429`` -- 429 ``-1003`` with ``Retry-After: retry_after_s``
* ``418`` -- 418 ``-1003`` (IP auto-banned) with ``Retry-After``
* ``timeout_before`` -- waits ``delay_s``, then 503 ``-1007`` "Timeout waiting for response from
  backend server..." (the client has usually given up by then); nothing was processed
* ``reset_before`` -- the connection is closed without an answer; nothing was processed
* ``not_found`` -- a lookup answers ``-2013 "Order does not exist."`` (a cancel ``-2011
  "Unknown order sent."``) although the order exists: eventual consistency
* ``503_after`` -- processed (an order IS placed), then 503 ``-1001``
* ``accept_then_timeout`` -- processed, the answer is held ``delay_s`` (past the client's timeout)
* ``reset_after`` -- processed, then the connection is closed without an answer

The endpoint may use ``*`` for the method or the path (``"* /api/v3/order"``, ``"GET *"``).
"""

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Final, Literal, cast, get_args

FaultKind = Literal[
    "503_before",
    "500_before",
    "502_before",
    "429",
    "418",
    "timeout_before",
    "reset_before",
    "not_found",
    "503_after",
    "accept_then_timeout",
    "reset_after",
]
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)
AFTER_KINDS: Final = frozenset({"503_after", "accept_then_timeout", "reset_after"})
DEFAULT_DELAY_S: Final = 15.0


@dataclass
class Fault:
    endpoint: str
    kind: FaultKind
    remaining: int = 1
    delay_s: float = DEFAULT_DELAY_S
    retry_after_s: int = 1

    @property
    def after(self) -> bool:
        """The request is processed before the fault strikes."""
        return self.kind in AFTER_KINDS


def _normalize(endpoint: str) -> str:
    method, _, path = endpoint.strip().partition(" ")
    if not path:
        raise ValueError(f"endpoint {endpoint!r} must look like 'POST /api/v3/order'")
    return f"{method.upper()} {path.strip()}"


class FaultSchedule:
    """Thread-safe queue of injected faults, consumed in injection order per matching request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self.fired: list[tuple[str, str]] = []  # (request "METHOD /path", kind), for assertions

    def inject(
        self,
        endpoint: str,
        kind: str,
        *,
        count: int = 1,
        delay_s: float | None = None,
        retry_after_s: int = 1,
    ) -> Fault:
        """Queue ``kind`` for the next ``count`` requests to ``endpoint``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        fault = Fault(
            _normalize(endpoint),
            cast(FaultKind, kind),
            count,
            DEFAULT_DELAY_S if delay_s is None else float(delay_s),
            retry_after_s,
        )
        with self._lock:
            self._queue.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first queued fault matching this request (its count decremented), or None."""
        with self._lock:
            for fault in self._queue:
                want_method, _, want_path = fault.endpoint.partition(" ")
                if want_method in ("*", method.upper()) and want_path in ("*", path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._queue.remove(fault)
                    self.fired.append((f"{method.upper()} {path}", fault.kind))
                    return fault
        return None

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [asdict(f) for f in self._queue]

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
