"""JSON logs of the Dagster code location: structlog lines with ``service="engine"`` and the
run's keys (``run_id``, ``partition``, ``step_key``), secrets masked.

Two paths end in the same lines (``trading_core.observability.logging``):

* :func:`bind_run` at the top of every asset configures structlog in the step's process and
  binds the run's keys, so the domain's own lines (Brain Library, market store, Dask fan-out)
  carry them;
* :data:`engine_console_logger` replaces Dagster's coloured console logger (``loggers=`` of the
  Definitions) in runs whose run config selects it (:data:`JSON_LOGS_RUN_CONFIG`: the default of
  the scheduled jobs; ``--config-json`` for an ad-hoc run): every log record of such a run,
  framework events and ``context.log`` calls alike, is rendered by structlog with the keys read
  from the record's Dagster metadata.

Keys a record does not have are ``null`` (a run-level event has no ``step_key``), so every line
of a run has the same keys. With the in-process executor a domain line of an asset check that
follows an asset in the same process keeps that asset's ``step_key`` (bound, not passed).
"""

import logging
from collections.abc import Mapping
from typing import Any, Final

import dagster as dg

from engine_assets.resources import EngineConfigResource
from trading_core.config import EngineConfig, secret_values
from trading_core.observability.logging import bind_context, configure_logging, get_logger

SERVICE = "engine"
PARTITION_TAG = "dagster/partition"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
# dagster._core.log_manager.LOG_RECORD_METADATA_ATTR: where Dagster puts a record's run metadata
_DAGSTER_META = "dagster_meta"
# Dagster instantiates a job's loggers only when the run config names them ("not currently
# possible to globally configure the logger for all jobs", docs: Customizing Dagster's built-in
# loggers): the named jobs carry this as their default run config; an ad-hoc run passes it.
JSON_LOGS_RUN_CONFIG: Final[dict[str, Any]] = {"loggers": {"console": {}}}


def configure_engine_logging(config: EngineConfig) -> None:
    """structlog for this process: the config's format and level, ``service="engine"``, the
    config's secrets masked."""
    configure_logging(
        fmt=config.observability.log_format,
        level=config.observability.log_level,
        path=config.observability.log_path,
        service=SERVICE,
        secrets=secret_values(config),
    )


def bind_run(context: dg.AssetExecutionContext, config: EngineConfig) -> None:
    """Call first in an asset: JSON logging configured, ``run_id``/``partition``/``step_key``
    bound to every following line of the step."""
    configure_engine_logging(config)
    bind_context(
        run_id=context.run.run_id,
        partition=_context_partition(context),
        # an asset's step key is its op's handle (no graph-backed or dynamic assets here)
        step_key=str(context.op_execution_context.op_handle),
    )


def partition_of_tags(tags: Mapping[str, str]) -> str | None:
    """The run's partition from its tags: a key, ``start...end`` for a range run, else None."""
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    start, end = (tags.get(tag) for tag in RANGE_TAGS)
    return f"{start}...{end}" if start and end else None


def _context_partition(context: dg.AssetExecutionContext) -> str | None:
    if context.has_partition_key:
        return str(context.partition_key)
    if context.has_partition_key_range:
        keys = context.partition_key_range
        return f"{keys.start}...{keys.end}"
    return None


class StructlogHandler(logging.Handler):
    """Renders a Dagster log record through structlog with the run's keys as fields."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            meta: Mapping[str, Any] = getattr(record, _DAGSTER_META, None) or {}
            event = meta.get("dagster_event")
            get_logger("dagster").log(
                record.levelno,
                meta.get("orig_message") or record.getMessage(),
                run_id=meta.get("run_id"),
                partition=partition_of_tags(meta.get("job_tags") or {}),
                step_key=meta.get("step_key"),
                job=meta.get("job_name"),
                dagster_event=event.event_type_value if event is not None else None,
            )
        except Exception:  # noqa: BLE001 - logging.Handler contract: report, never raise
            self.handleError(record)


@dg.logger(
    config_schema={"config_dir": dg.Field(str, default_value="", is_required=False)},
    description="A run's Dagster logs as JSON lines (structlog): service, run_id, partition, "
    "step_key; level and format from observability.log_level / log_format.",
)
def engine_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = EngineConfigResource(config_dir=init_context.logger_config["config_dir"]).load()
    configure_engine_logging(config)
    logger = logging.Logger("dagster", level=config.observability.log_level)
    logger.addHandler(StructlogHandler())
    return logger
