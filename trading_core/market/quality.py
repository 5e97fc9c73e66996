"""What a read of many candle files left out: rejected and repaired candles counted by reason
label (see :mod:`trading_core.market.validation`) and the files that could not be read."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class DataQuality:
    """Candles dropped (``rejected_candles``) and fixed (``repaired_candles``) per reason label,
    summed over the coins read, and the corrupt files skipped (paths, sorted)."""

    rejected_candles: Mapping[str, int] = field(default_factory=dict)
    repaired_candles: Mapping[str, int] = field(default_factory=dict)
    corrupt_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("rejected_candles", "repaired_candles"):
            counts = {k: int(v) for k, v in sorted(getattr(self, name).items()) if v}
            object.__setattr__(self, name, MappingProxyType(counts))
        object.__setattr__(self, "corrupt_files", tuple(sorted(set(self.corrupt_files))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rejected_candles": dict(self.rejected_candles),
            "repaired_candles": dict(self.repaired_candles),
            "corrupt_files": list(self.corrupt_files),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DataQuality":
        data = json.loads(text)
        return cls(
            rejected_candles=data.get("rejected_candles", {}),
            repaired_candles=data.get("repaired_candles", {}),
            corrupt_files=tuple(data.get("corrupt_files", ())),
        )


def sum_counts(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Per-reason counts added up."""
    total: dict[str, int] = {}
    for one in counts:
        for reason, n in one.items():
            total[reason] = total.get(reason, 0) + n
    return total
