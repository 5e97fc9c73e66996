"""Fixtures shared by the integration tests."""

from tests.integration.dagster_fixtures import isolated_engine_env

__all__ = ["isolated_engine_env"]
