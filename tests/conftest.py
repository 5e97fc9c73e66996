"""Suite-wide fixtures."""

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    """structlog back to its defaults around each test: a CLI test run through CliRunner leaves
    it writing to the runner's stream, which is closed once the runner is done."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
