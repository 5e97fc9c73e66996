"""``bench/hamilton_live.py`` at a tiny size (5 coins, 3 bars, a 3-tick soak), so that the
benchmark of Hamilton with the live broker against the local Binance simulator cannot rot:
every figure is produced, the live lanes place exactly one exchange order per client order id,
and the soak loses no decision event across its restart."""

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "hamilton_live.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_hamilton_live", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_bench_runs_at_tiny_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench()
    # a "not found" is final after recv_window + 2 s: shorter, so that the first orders of
    # each broker need not wait 7 s
    monkeypatch.setattr(bench, "RECV_WINDOW_MS", 500)
    out = tmp_path / "hamilton_live.json"
    bench.main(
        [
            *("--coins", "5", "--bars", "3", "--slow-ticks", "1"),
            *("--soak-hours", "0.05", "--soak-coins", "5"),
            *("--fault-every", "1", "--rss-every", "1", "--out", str(out)),
        ]
    )
    figures = json.loads(out.read_text())

    lanes = figures["latency"]["lanes"]
    assert set(lanes) == {"live", "live_no_rate_limit", "paper"}
    for name, lane in lanes.items():
        assert lane["tick_ms"]["n"] == 2, name  # 3 bars, the first one untimed
        assert lane["cost_accuracy"]["n_filled"] >= 0
    for name in ("live", "live_no_rate_limit"):
        assert lanes[name]["quiet_after_tick_ms"]["n"] == 2
        assert lanes[name]["tick_ms_slow_exchange"]["n"] == 1
        assert lanes[name]["max_orders_per_client_id"] <= 1

    soak = figures["soak"]
    assert soak["ticks"] == 3
    assert soak["no_lost_event"] is True
    assert soak["library"]["decision_events"] == 3 * 5
    assert soak["spool_after_final_flush"] == 0
    assert soak["max_orders_per_client_id"] <= 1
    assert soak["restart"]["at_tick"] == 1
    assert len(soak["rss_series"]) == 3
    assert sum(soak["faults_injected"].values()) >= 1
