"""The synthetic market's no-edge mode has a name that survives YAML (issue 15): ``no_edge``;
``"null"`` (a string, quoted in YAML) is its old name, a bare YAML ``null`` is refused."""

from pathlib import Path

import pytest

from trading_core.config import default_config_paths, load_config
from trading_core.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[4] / "config"


def _mode(value: str) -> str:
    env = {"ENGINE__DATA__SYNTHETIC__MODE": value}
    return load_config(default_config_paths(CONFIG_DIR), env=env).data.synthetic.mode


@pytest.mark.parametrize("value", ["no_edge", '"null"', "'null'"])
def test_no_edge_and_quoted_null_alias_load_as_no_edge(value: str) -> None:
    assert _mode(value) == "no_edge"


def test_structured_mode_stays_structured() -> None:
    assert _mode("structured") == "structured"


def test_bare_yaml_null_mode_refused_naming_the_allowed_modes() -> None:
    with pytest.raises(ConfigError, match=r"ENGINE__DATA__SYNTHETIC__MODE.*structured, no_edge"):
        _mode("null")
