"""structlog configured once: JSON lines when not a terminal, pretty console output in one.

Every service binds a consistent set of context keys (``service`` plus, where they apply,
``run_id``/``partition``, ``symbol``, ``release_id``) with :func:`bind_context`.
"""

import logging
import sys
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import Any, Literal, TextIO

import structlog

_SECRET_MASK = "**********"  # noqa: S105 - the mask, not a secret
_state: dict[str, Any] = {"configured": False, "secrets": ()}


def _scrub_secrets(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace any registered secret value wherever it appears in a log line."""
    secrets: tuple[str, ...] = _state["secrets"]
    if not secrets:
        return event_dict
    for key, value in list(event_dict.items()):
        event_dict[key] = _scrub(value, secrets)
    return event_dict


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    """Strings anywhere inside lists, tuples and dicts; other values as they are."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, _SECRET_MASK)
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, secrets) for v in value)
    if isinstance(value, BaseException):
        return _scrub(f"{type(value).__name__}: {value}", secrets)
    return value


def configure_logging(
    *,
    fmt: Literal["auto", "json", "console"] = "auto",
    level: str = "INFO",
    service: str | None = None,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    path: str | None = None,
) -> None:
    """Configure structlog and the stdlib root logger. Safe to call again (reconfigures).

    Lines go to ``stream``, else appended to the file at ``path`` (``observability.log_path``),
    else to stderr."""
    out = stream or (_log_file(path) if path else sys.stderr)
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    _state["secrets"] = tuple(s for s in secrets if s)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        _scrub_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=True)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    _state["configured"] = True


def _log_file(path: str) -> TextIO:
    """One append handle per file and process (reconfiguring must not reopen or truncate it)."""
    files: dict[str, TextIO] = _state.setdefault("files", {})
    if path not in files:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        files[path] = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - kept open
    return files[path]


def bind_context(**values: Any) -> None:
    """Bind keys (symbol, release_id, run_id, partition, ...) to every following log line."""
    structlog.contextvars.bind_contextvars(**values)


def get_logger(name: str | None = None) -> Any:
    """A lazy structlog logger (safe at import time: it picks up the configuration in force when
    it first logs); ``name`` becomes the ``logger_name`` key."""
    return structlog.get_logger(logger_name=name) if name else structlog.get_logger()
