"""Suite-wide fixtures."""

from collections.abc import Iterator

import pytest
import structlog
from hypothesis import settings

# Property tests draw the same examples on every run and machine (a CI run must not find a new
# counterexample by chance; a failing example is reproduced by running the test again).
settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.load_profile("deterministic")


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    """structlog back to its defaults around each test: a CLI test run through CliRunner leaves
    it writing to the runner's stream, which is closed once the runner is done."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
