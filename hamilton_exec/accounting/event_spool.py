"""The event sink's spool: a JSON-lines file of records waiting for the Brain Library.

Replaced as a whole and atomically (temp file, fsync, rename), so a crash leaves the old spool
or the new one, never half of one. A line that is not a record (a hand edit, a foreign file) is
moved to ``<spool>.corrupt`` with an error log instead of blocking every later flush.
"""

import json
import os
from pathlib import Path
from typing import Any, Final

from trading_core.observability.logging import get_logger

# record kind -> the key that holds its data
KINDS: Final = {
    "event": "event",
    "outcome": "outcome",
    "shadow_period": "period",
    "execution": "execution",
}


def _log() -> Any:
    return get_logger(__name__)


class SpoolFile:
    """Read and replace the spool; ``depth`` is its record count after the last replace."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.depth = self._count()

    def _count(self) -> int:
        if not self.path.exists():
            return 0
        text = self.path.read_text(encoding="utf-8")
        return sum(1 for line in text.splitlines() if line.strip())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        records, bad = [], []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad.append(line)
                continue
            kind = record.get("kind") if isinstance(record, dict) else None
            if kind in KINDS and KINDS[kind] in record:
                records.append(record)
            else:
                bad.append(line)
        if bad:
            quarantine = self.path.with_suffix(".corrupt")
            with quarantine.open("a", encoding="utf-8") as handle:
                handle.write("".join(f"{line}\n" for line in bad))
                handle.flush()
                os.fsync(handle.fileno())
            _log().error("spool_lines_quarantined", count=len(bad), path=str(quarantine))
        return records

    def replace(self, records: list[dict[str, Any]]) -> None:
        """The spool becomes ``records`` (none: the file is removed). On an OS error (a full
        disk) the old spool stays whole and the error is raised."""
        if not records:
            self.path.unlink(missing_ok=True)
            self.depth = 0
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            _log().error("spool_write_failed", path=str(self.path), error=str(exc))
            raise
        self.depth = len(records)
