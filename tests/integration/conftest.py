"""Fixtures shared by the integration tests."""

from tests.integration.dagster_fixtures import isolated_engine_env
from tests.integration.s3_server import s3_bucket, s3_server

__all__ = ["isolated_engine_env", "s3_bucket", "s3_server"]
