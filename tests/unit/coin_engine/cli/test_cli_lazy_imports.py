"""Start-up of ``coin-engine`` (issues 13 and 15): the root app names every command group in a
table and imports a group only when the command line names it. ``--help`` lists every group
without importing either half or the numeric stack; ``engine run`` imports nothing of Hamilton."""

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from coin_engine.cli.app import COMMANDS, app, load_command

# what `--help` must not import: both halves, the domain's heavy modules, the numeric stack
NOT_FOR_HELP = (
    "dagster",
    "hamilton_exec",
    "engine_assets",
    "trading_core.brain",
    "trading_core.config",
    "scipy",
    "statsmodels",
    "polars",
    "numpy",
    "numba",
    "sqlalchemy",
    "pydantic",
)
# what `brain ls` must not import: it reads the Brain Library (config, SQLAlchemy) and nothing
# of the numeric stack, the migrations tool or either half
NOT_FOR_BRAIN_LS = (
    "dagster",
    "hamilton_exec",
    "engine_assets",
    "alembic",
    "numpy",
    "numba",
    "polars",
    "scipy",
    "statsmodels",
    "pyarrow",
)
# what `engine run` must not import just to start: the Hamilton half and the data fetcher (the
# run never calls them) and the heavy modules only one function needs (imported there)
NOT_AT_START = (
    "hamilton_exec",
    "ccxt",
    "aiohttp",
    "matplotlib",
    "scipy.signal",
    "bidask",
    "coin_engine.demo.shadow",
)
PROBE = """
import json, sys
from coin_engine.cli.app import run
sys.argv = ["coin-engine", *{argv!r}]
try:
    run()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {names!r} if m in sys.modules)))
"""


def _imported(
    argv: list[str], names: tuple[str, ...], env: dict[str, str] | None = None
) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, names=names)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env=env,
    )
    imported: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return imported


def test_help_lists_every_group_with_its_help() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for name, (_, short_help) in COMMANDS.items():
        assert name in result.output
        assert short_help.split(":")[0].split()[0] in result.output


def test_help_imports_neither_half_nor_the_numeric_stack() -> None:
    assert _imported(["--help"], NOT_FOR_HELP) == []


def test_brain_ls_imports_neither_half_nor_the_numeric_stack(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": f"sqlite:///{tmp_path}/b.db",
        "ENGINE__TRAINING__MODEL_VERSIONING__STORAGE_PATH": str(tmp_path / "artifacts"),
        "ENGINE__OBSERVABILITY__LOG_PATH": str(tmp_path / "cli.log"),
    }
    assert _imported(["brain", "migrate"], (), env) == []
    assert _imported(["brain", "ls"], NOT_FOR_BRAIN_LS, env) == []


def test_engine_run_start_up_imports_nothing_it_does_not_use() -> None:
    assert _imported(["engine", "run", "--help"], NOT_AT_START) == []


def test_every_table_entry_loads_as_a_command() -> None:
    for name in ("config", "brain", "events", "data"):
        assert load_command(name).name == name


def test_unknown_command_exits_2() -> None:
    result = CliRunner().invoke(app, ["nope"])
    assert result.exit_code == 2


def test_dagster_definitions_load_without_preview_warning() -> None:
    # a fresh process: the warning fires once, at the decorators, when the module is imported
    probe = (
        "import warnings\n"
        "import dagster as dg\n"
        "warnings.simplefilter('error', dg.PreviewWarning)\n"
        "import engine_assets.definitions\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "PreviewWarning" not in done.stderr
