"""The package-boundary contracts ([tool.importlinter] in pyproject.toml) hold, and break on a
forbidden import: `lint-imports` runs over a copy of the packages in tmp_path, once unmodified and
once with one module added that crosses a boundary."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = REPO_ROOT / "pyproject.toml"


def _config() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    return config


def _contract_name(contract_id: str) -> str:
    names = {c["id"]: c["name"] for c in _config()["contracts"]}
    return str(names[contract_id])


def _lint_imports_bin() -> str:
    beside = Path(sys.executable).with_name("lint-imports")
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[dev]'")
    return found


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with root's pyproject.toml, root first on the import path (the editable
    install's finder comes after it), one wide line per contract."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
        "COLUMNS": "400",
        "NO_COLOR": "1",
    }
    env.pop("COVERAGE_PROCESS_START", None)
    return subprocess.run(
        [_lint_imports_bin(), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def packages_copy(tmp_path: Path) -> Path:
    """The root packages and pyproject.toml copied to tmp_path (sources only)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc")
    for package in _config()["root_packages"]:
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=skip)
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    return tmp_path


def _flat(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())


def test_unmodified_packages_keep_every_contract(packages_copy: Path) -> None:
    result = _lint_imports(packages_copy)
    output = _flat(result)
    assert result.returncode == 0, output
    assert "0 broken" in output
    for contract in _config()["contracts"]:
        assert f"{' '.join(contract['name'].split())} KEPT" in output


# one forbidden import (or circle) per contract, added to a copy of the packages
BREAKS: list[tuple[dict[str, str], str]] = [
    ({"trading_core/_leak.py": "from dagster import asset\n"}, "domain-pure"),
    ({"hamilton_exec/_leak.py": "import engine_assets.definitions\n"}, "halves-independent"),
    ({"engine_assets/_leak.py": "import coin_engine.cli.app\n"}, "layers"),
    ({"hamilton_exec/tick/_leak.py": "import hamilton_exec.runtime.wiring\n"}, "hamilton-layers"),
    (
        {"hamilton_exec/_leak.py": "from trading_core.training import distributed\n"},
        "hamilton-no-training-fanout",
    ),
    ({"trading_core/features/_leak.py": "import distributed\n"}, "dask-in-training"),
    ({"engine_assets/_leak.py": "import matplotlib.pyplot\n"}, "matplotlib-in-reporting"),
    ({"coin_engine/_leak.py": "import pandas\n"}, "no-pandas"),
    (
        {
            "trading_core/market/_leak.py": "import trading_core.market._leak_back\n",
            "trading_core/market/_leak_back.py": "import trading_core.market._leak\n",
        },
        "no-import-circles",
    ),
]


def test_every_contract_has_a_breaking_case_listed() -> None:
    assert sorted(c["id"] for c in _config()["contracts"]) == sorted(i for _, i in BREAKS)


@pytest.mark.parametrize(("files", "contract_id"), BREAKS, ids=[i for _, i in BREAKS])
def test_forbidden_import_breaks_its_contract(
    packages_copy: Path, files: dict[str, str], contract_id: str
) -> None:
    for module, source in files.items():
        (packages_copy / module).write_text(source)
    result = _lint_imports(packages_copy)
    output = _flat(result)
    assert result.returncode != 0, output
    assert f"{' '.join(_contract_name(contract_id).split())} BROKEN" in output
    assert "_leak" in output
