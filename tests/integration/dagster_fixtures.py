"""Shared setup for Dagster tests: an isolated config (temp Brain Library, store, small market)."""

from collections.abc import Iterator
from pathlib import Path

import pytest


def engine_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """ENGINE__ overrides that keep every artifact of a run inside ``tmp_path``."""
    env = {
        "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": f"sqlite:///{tmp_path}/brain.db",
        "ENGINE__TRAINING__MODEL_VERSIONING__STORAGE_PATH": str(tmp_path / "artifacts"),
        "ENGINE__DATA__STORE_PATH": str(tmp_path / "ohlcv"),
        "ENGINE__HAMILTON__STATE_PATH": str(tmp_path / "hamilton"),
        "ENGINE__OBSERVABILITY__DECISION_EVENTS__STORAGE_PATH": str(tmp_path / "events"),
    }
    env.update(extra)
    return env


@pytest.fixture
def isolated_engine_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every path of the engine config inside ``tmp_path`` (offered by conftest.py)."""
    for key, value in engine_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    yield tmp_path
