"""Websocket fault schedule: ``sim.ws_faults.inject(kind, ...)`` or ``POST /_sim/ws_faults``.

Kinds (``path``: a connection's URL path must contain it, e.g. ``"/fstream"`` or ``"/stream/ws"``,
None: every connection; ``stream``: an ``fnmatch`` pattern over stream names, e.g.
``"btcusdt@kline_1m"``, ``"*@depth*"``; user data events count as stream ``"@userData"``):

* ``disconnect`` -- close matching connections now (``count`` 0) or after ``count`` more messages
  sent on each; ``abort=True`` drops the TCP connection without a close frame (else a close
  frame with ``code``, default 1001)
* ``delay`` -- for the next ``delay_s`` seconds messages of matching streams are held, then
  delivered together (in order) when the window ends; other streams flow on
* ``reorder`` -- on each matching connection the next ``count`` (default 2) messages of matching
  streams are delivered in reverse order (held until ``count`` arrived, or ``duration_s`` passed)
* ``depth_gap`` -- the next ``count`` (default 1) diff-depth events of ``symbol`` (a Binance id;
  None: every symbol) on ``venue`` (``"spot"`` / ``"futures"`` / None) are lost for every
  subscriber, so the following event's ``U`` is not the previous ``u + 1`` (``pu`` not ``u``)
* ``stall`` -- for ``duration_s`` seconds matching streams send nothing (their messages are
  dropped) while the connection stays open and pings go on
"""

import fnmatch
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast, get_args

WsFaultKind = Literal["disconnect", "delay", "reorder", "depth_gap", "stall"]
WS_FAULT_KINDS: Final[tuple[str, ...]] = get_args(WsFaultKind)
USER_DATA_STREAM: Final = "@userData"


@dataclass
class WsFault:
    kind: WsFaultKind
    path: str | None = None
    stream: str | None = None
    count: int = 0
    delay_s: float = 0.0
    duration_s: float = 0.0
    symbol: str | None = None
    venue: str | None = None
    abort: bool = False
    code: int = 1001
    id: int = 0
    created: float = field(default_factory=time.monotonic)
    # per connection: messages held (delay, reorder), messages still to send (disconnect)
    held: dict[int, list[str]] = field(default_factory=dict)
    left: dict[int, int] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)

    def matches_path(self, path: str) -> bool:
        return self.path is None or self.path in path

    def matches_stream(self, stream: str) -> bool:
        return self.stream is None or fnmatch.fnmatchcase(stream, self.stream)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "path": self.path, "stream": self.stream,
            "count": self.count, "delay_s": self.delay_s, "duration_s": self.duration_s,
            "symbol": self.symbol, "venue": self.venue, "abort": self.abort, "code": self.code,
        }  # fmt: skip


class WsFaultSchedule:
    """Active websocket faults; the server consults it for every message it sends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.active: list[WsFault] = []
        self.fired: list[tuple[str, str]] = []  # (kind, stream or path), for assertions
        self.on_inject: Callable[[WsFault], None] | None = None  # set by the server

    def inject(
        self,
        kind: str,
        *,
        path: str | None = None,
        stream: str | None = None,
        count: int | None = None,
        delay_s: float = 2.0,
        duration_s: float | None = None,
        symbol: str | None = None,
        venue: str | None = None,
        abort: bool = False,
        code: int = 1001,
    ) -> WsFault:
        if kind not in WS_FAULT_KINDS:
            raise ValueError(f"unknown ws fault kind {kind!r}; one of {', '.join(WS_FAULT_KINDS)}")
        if venue not in (None, "spot", "futures"):
            raise ValueError("venue must be 'spot', 'futures' or None")
        defaults = {"disconnect": 0, "reorder": 2, "depth_gap": 1}
        n = defaults.get(kind, 0) if count is None else int(count)
        if n < 0 or (kind in ("reorder", "depth_gap") and n < 1):
            raise ValueError("count out of range")
        fault = WsFault(
            cast(WsFaultKind, kind), path=path, stream=stream, count=n, delay_s=float(delay_s),
            duration_s=float(duration_s if duration_s is not None else
                             (30.0 if kind == "reorder" else 5.0)),
            symbol=symbol.upper() if symbol else None, venue=venue, abort=abort, code=code,
            id=next(self._ids),
        )  # fmt: skip
        with self._lock:
            self.active.append(fault)
        if self.on_inject is not None:
            self.on_inject(fault)
        return fault

    def remove(self, fault: WsFault) -> None:
        with self._lock:
            if fault in self.active:
                self.active.remove(fault)

    def snapshot(self) -> list[WsFault]:
        with self._lock:
            return list(self.active)

    def take_depth_gap(self, venue: str, symbol: str) -> bool:
        """Whether this depth event of ``symbol`` is to be lost (consumes one count)."""
        with self._lock:
            for fault in self.active:
                if fault.kind != "depth_gap" or fault.venue not in (None, venue):
                    continue
                if fault.symbol not in (None, symbol):
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self.active.remove(fault)
                self.fired.append(("depth_gap", symbol))
                return True
        return False

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.public() for f in self.active]

    def clear(self) -> None:
        with self._lock:
            self.active.clear()
