"""A write-ahead journal of order sends: which client ids were ever handed to ``create_order``.

Binance refuses a duplicate client order id only while that order is OPEN, so a decision that
is made again after a crash (same bar, same id) must not be sent again if an earlier process
sent it, even if it has filled since. The engine's saved state cannot tell: a crash between
the send and the next save forgets the send. The journal can: the id is appended (flushed and
``fsync``-ed) BEFORE the request leaves, so

* an id the journal does not know was never sent by any process: it may be sent at once;
* an id it knows may be on the exchange: it is looked up first, and a "not found" only counts
  once the journalled send is older than the venue's ``recvWindow`` plus a margin (a delayed
  copy of the request can no longer be accepted).

Without a journal the broker must assume that every order may have been sent at its start
(a lookup before every first send, and a wait during the first seconds after a start).

Lines older than ``keep_s`` (a day by default: a decision's id is derived from its bar, and no
decision is re-made a day later) are dropped when the journal is opened.
"""

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from trading_core.observability.logging import get_logger

DAY_S = 86_400.0


def _log() -> Any:
    return get_logger(__name__)


class SendJournal:
    """Append-only, fsync-ed record of send attempts (see the module docstring). Thread-safe."""

    def __init__(
        self, path: Path, *, keep_s: float = DAY_S, now: Callable[[], float] = time.time
    ) -> None:
        if not keep_s > 0:
            raise ValueError(f"keep_s {keep_s!r} must be > 0")
        self.path = Path(path)
        self._lock = threading.Lock()
        self._sent = self._load(now() - keep_s)
        self._rewrite()
        self._handle: TextIO | None = self.path.open("a", encoding="utf-8")

    def last_sent(self, client_order_id: str) -> float | None:
        """When ``client_order_id`` was last handed to the exchange (local s), None: never."""
        with self._lock:
            return self._sent.get(client_order_id)

    def record(self, client_order_id: str, sent_at_s: float) -> None:
        """Durably note a send attempt; returns only once it is on disk (raises OSError
        otherwise: the caller must then not send)."""
        line = json.dumps({"id": client_order_id, "at": sent_at_s}, sort_keys=True) + "\n"
        with self._lock:
            if self._handle is None:
                raise OSError(f"send journal {self.path} is closed")
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._sent[client_order_id] = sent_at_s

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._sent)

    def _load(self, oldest_s: float) -> dict[str, float]:
        sent: dict[str, float] = {}
        if not self.path.exists():
            return sent
        for number, raw in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                entry = json.loads(raw)
                client_id, at = str(entry["id"]), float(entry["at"])
            except (ValueError, KeyError, TypeError):
                # a torn last line (crash mid-write): that send never left (the write comes
                # first), so nothing is lost by skipping it
                _log().warning("send_journal_line_skipped", path=str(self.path), line=number)
                continue
            if at >= oldest_s:
                sent[client_id] = max(at, sent.get(client_id, at))
        return sent

    def _rewrite(self) -> None:
        """Compact the file to the kept entries (temp file, fsync, rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for client_id, at in sorted(self._sent.items(), key=lambda item: item[1]):
                handle.write(json.dumps({"id": client_id, "at": at}, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
