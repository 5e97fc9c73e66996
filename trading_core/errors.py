"""The one exception tree of the project.

Whether an error is worth retrying is its *type*: every error derives from either
:class:`RetryableError` (a temporary condition: network, a locked row, an unreachable database)
or :class:`FatalError` (retrying cannot help: bad config, bad data, a corrupt artifact).
Callers decide with ``isinstance(err, RetryableError)`` or ``err.retryable``; never by message.

Messages quote the bad value and say what is allowed.
"""

from collections.abc import Sequence
from typing import Any, ClassVar, Final


class CoinEngineError(Exception):
    """Root of every error raised by trading_core, engine_assets and hamilton_exec."""

    retryable: ClassVar[bool] = False


class RetryableError(CoinEngineError):
    """A temporary condition: the same call may succeed later."""

    retryable: ClassVar[bool] = True


class FatalError(CoinEngineError):
    """Retrying the same call with the same input cannot succeed."""

    retryable: ClassVar[bool] = False


# --- configuration -------------------------------------------------------------------------


class ConfigError(FatalError, ValueError):
    """A config file, key or value is wrong. The message names file, dotted key, value, allowed.
    Also a :class:`ValueError` (see :class:`DataValidationError`)."""

    def __init__(self, message: str, *, issues: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.issues = tuple(issues)


# --- market data ---------------------------------------------------------------------------


class DataValidationError(FatalError, ValueError):
    """Data that must not be used: candles (the message lists the offending rows, ``rows``
    holds them), a record or payload handed to the Brain Library, an exchange answer, a value
    given on the command line. The message names the bad value and what is allowed.

    Also a :class:`ValueError`: it replaces the bare ``ValueError`` these checks raised, so a
    caller that catches ``ValueError`` (a CLI argument parser, a payload loader) stays right,
    while ``coin-engine`` prints it as one line (a :class:`CoinEngineError`)."""

    def __init__(self, message: str, *, rows: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.rows = tuple(rows)


class DataSourceError(FatalError):
    """A data source cannot serve the request (unknown symbol, missing file, bad timeframe)."""


class CorruptDataFileError(DataSourceError):
    """A stored data file cannot be read (truncated, not parquet, wrong columns). The message is
    one line naming the file and the fix; ``path`` is the file."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path

    @classmethod
    def all_unreadable(
        cls, corrupt: "Sequence[CorruptDataFileError]", what: str
    ) -> "CorruptDataFileError":
        """The error when every input is corrupt: the file's own when there is one, else one
        line counting them and naming the first (``what``: e.g. "1h candle files in data/")."""
        if len(corrupt) == 1:
            return corrupt[0]
        return cls(
            f"all {len(corrupt)} {what} are unreadable (first: {corrupt[0]})",
            path=corrupt[0].path,
        )


class ExchangeTemporaryError(RetryableError):
    """Network trouble, rate limit (429), exchange maintenance or 5xx: retry with backoff."""


class ExchangePermanentError(FatalError):
    """Authentication, bad symbol, bad request, insufficient funds: retrying cannot help."""


# --- Brain Library -------------------------------------------------------------------------


class BrainLibraryError(FatalError):
    """A Brain Library operation failed in a way retrying cannot fix."""


class BrainUnavailableError(RetryableError):
    """The Brain Library database cannot be reached right now."""


class VersionConflictError(RetryableError):
    """Two writers raced for the same version number; the loser retries."""


class ModelNotFoundError(BrainLibraryError):
    """No model version, key or release matches the request."""


class StageTransitionError(BrainLibraryError):
    """A stage change that the lifecycle does not allow (e.g. archived -> shadow)."""


class ArtifactIntegrityError(BrainLibraryError):
    """An artifact's bytes do not hash to the sha256 recorded for it."""


class ArtifactNotFoundError(BrainLibraryError):
    """An artifact recorded in the Brain Library is missing from the artifact store."""


RELEASE_REFUSAL_REASONS: Final = (
    "checksum_mismatch",
    "artifact_missing",
    "unreadable_model",
    "feature_mismatch",
    "bad_serving_tables",
    "bad_gates",
)


class ReleaseRefusedError(BrainLibraryError):
    """A release cannot be served (bad artifact, unreadable model): the previous one stays.
    ``reason`` is one of :data:`RELEASE_REFUSAL_REASONS` (a metric label)."""

    def __init__(self, release_id: int, reason: str, detail: str) -> None:
        if reason not in RELEASE_REFUSAL_REASONS:
            raise ValueError(f"refusal reason {reason!r}; allowed: {list(RELEASE_REFUSAL_REASONS)}")
        super().__init__(f"release {release_id} refused ({reason}): {detail}")
        self.release_id = release_id
        self.reason = reason


# --- training and validation ---------------------------------------------------------------


class TrainingError(FatalError):
    """Training one key failed for a reason retrying cannot fix."""


class LeakageError(FatalError):
    """A validation split or a feature lets future information into training."""


class InsufficientDataError(FatalError):
    """Too few bars/windows/trades to do what was asked (a skip reason, not a crash)."""


# --- execution -------------------------------------------------------------------------------


class LiveTradingRefusedError(FatalError):
    """Live trading was not asked for explicitly, or its exchange keys are missing."""
