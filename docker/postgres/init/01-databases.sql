-- Runs once, when the postgres container starts on an empty data volume, as POSTGRES_USER.
-- One server, two databases: Dagster's run/event storage and the Brain Library.
-- The Brain Library schema itself is created and upgraded by Alembic (`coin-engine brain migrate`).
CREATE DATABASE dagster;
CREATE DATABASE brain;
