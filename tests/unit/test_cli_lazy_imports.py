"""Start-up of ``coin-engine engine run`` (issue 13): the command line names its plugin, and the
Dagster code location loads without what the run never uses (Hamilton, ccxt, matplotlib...)."""

import json
import subprocess
import sys

from trading_core.cli.app import _command_named

# what `engine run` must not import just to start: the Hamilton half and the data fetcher (the
# run never calls them) and the heavy modules only one function needs (imported there)
NOT_AT_START = (
    "hamilton_exec",
    "ccxt",
    "aiohttp",
    "matplotlib",
    "scipy.signal",
    "bidask",
    "engine_assets.demo_shadow",
)
PROBE = """
import json, sys
sys.argv = ["coin-engine", "engine", "run", "--help"]
import trading_core.cli.app
import engine_assets.definitions
print(json.dumps(sorted(m for m in {names!r} if m in sys.modules)))
"""


def test_command_named_skips_global_options_and_their_values() -> None:
    assert _command_named(["-c", "engine", "--config", "x.yaml", "engine", "run"]) == "engine"
    assert _command_named(["--config=x.yaml", "hamilton", "run"]) == "hamilton"
    assert _command_named(["--help"]) is None
    assert _command_named([]) is None


def test_engine_run_start_up_imports_nothing_it_does_not_use() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(names=NOT_AT_START)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
