"""Bad invocations of the real ``coin-engine`` console script (issue 15): each prints one line
naming the bad value and what is allowed, exits 2, and never shows a traceback.

Every case fails before any heavy work, on a tiny store in a temporary folder: one parquet file
that is garbage (a truncated download) and a migrated, empty Brain Library. ``events query``
that matches nothing is no error: it exits 0 and prints a hint line on stderr (README, "Command
line").
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.dagster_fixtures import engine_env

COIN_ENGINE = str(Path(sys.executable).parent / "coin-engine")
GARBAGE = b"not a parquet file, a truncated download" * 8
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "config")
REPLAY = ("hamilton", "run", "--replay", "--metrics-port", "0", "--health-port", "0")

# (id, argv, exit code, the line expected on stderr: a regex)
CASES = [
    (
        "partition-not-a-date",
        ("engine", "run", "--partition", "2026-13-45"),
        2,
        r"^error: --partition '2026-13-45' is not a date; allowed: a day YYYY-MM-DD from "
        r"2020-01-01 to \d{4}-\d\d-\d\d$",
    ),
    (
        "partition-before-start",
        ("engine", "run", "--partition", "2019-12-31"),
        2,
        r"^error: --partition '2019-12-31' is not a daily partition; allowed: .* from 2020-01-01",
    ),
    (
        "replay-from-not-a-date",
        (*REPLAY, "--from", "yesterday"),
        2,
        r"^error: --from 'yesterday' is not a UTC date or datetime; allowed: YYYY-MM-DD",
    ),
    (
        "replay-to-before-from",
        (*REPLAY, "--from", "2021-07-11", "--to", "2021-07-10"),
        2,
        r"^error: --to 2021-07-10T00:00:00\+00:00 is not after --from 2021-07-11T00:00:00\+00:00",
    ),
    (
        "replay-unknown-symbol",
        (*REPLAY, "--from", "2021-07-10", "--to", "2021-07-11", "--symbols", "NOPE/USDT"),
        2,
        r"^error: --symbols NOPE/USDT: not in the parquet source; allowed: BAD/USDT; "
        r"list them with coin-engine data rank$",
    ),
    (
        "config-validate-folder",
        ("config", "validate", CONFIG_DIR),
        2,
        r"^error: config validate: '.*config' is a folder; allowed: YAML files, e\.g\. "
        r".*scalable_engine\.yaml",
    ),
    (
        "corrupt-parquet",
        ("data", "rank"),
        2,
        r"^error: .*BAD_USDT-1h\.parquet.*coin-engine data fetch",
    ),
    (
        "rollback-unknown-key",
        ("brain", "rollback", "NOPE_RANGE_1h", "--reason", "test"),
        2,
        r"^error: brain rollback: no model key 'NOPE_RANGE_1h' in the Brain Library; .*"
        r"\(list them: coin-engine brain ls\)$",
    ),
    (
        "events-no-match-hint",
        ("events", "query", "--symbol", "NOPE/USDT"),
        0,
        r"^hint: no decision event matches --symbol NOPE/USDT; see the newest events: "
        r"coin-engine events query --limit 20$",
    ),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A tiny parquet store (one garbage file) and a migrated, empty Brain Library."""
    root = tmp_path_factory.mktemp("bad_invocations")
    store = root / "ohlcv"
    store.mkdir()
    (store / "BAD_USDT-1h.parquet").write_bytes(GARBAGE)
    values = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE__")}
    values.update(engine_env(root, ENGINE__DATA__SOURCE="parquet"))
    values["ENGINE__OBSERVABILITY__LOG_PATH"] = str(root / "engine.log")  # stderr: errors only
    values["COLUMNS"] = "400"  # rich wraps at the terminal width: keep each line whole
    values["NO_COLOR"] = "1"
    migrated = subprocess.run(
        [COIN_ENGINE, "brain", "migrate"],
        env=values,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    return values


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("argv", "code", "line"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_invocation_prints_one_line_and_no_traceback(
    env: dict[str, str], argv: tuple[str, ...], code: int, line: str
) -> None:
    done = subprocess.run(
        [COIN_ENGINE, *argv], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr[-3000:]
    assert done.returncode == code, done.stderr[-2000:]
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, done.stderr[-2000:]
    assert re.search(line, lines[0]), lines[0]
