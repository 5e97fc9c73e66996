"""The Brain Library: versioned models, stages, releases and content-addressed artifacts.

``BrainLibrary(dsn, artifact_root)`` over SQLite (embedded default) or PostgreSQL; the schema
comes only from the Alembic migrations in ``migrations/`` (``BrainLibrary.migrate()``).
"""

from trading_core.brain.artifacts import ArtifactRef, ArtifactStore, sha256_bytes
from trading_core.brain.events_store import decision_event_id
from trading_core.brain.library import BrainLibrary
from trading_core.brain.lifecycle import ALLOWED_TRANSITIONS, check_transition
from trading_core.brain.migrate import current_revision, head_revision, upgrade_to_head
from trading_core.brain.records import (
    EngineReliability,
    ModelKey,
    ModelVersion,
    RegimeGateOverride,
    Release,
    ShadowResult,
    StageChange,
    VerifyProblem,
    model_name,
    parse_model_name,
)
from trading_core.brain.schema import EXECUTION_STATUSES, FINAL_EXECUTION_STATUSES

__all__ = [
    "ALLOWED_TRANSITIONS",
    "EXECUTION_STATUSES",
    "FINAL_EXECUTION_STATUSES",
    "ArtifactRef",
    "ArtifactStore",
    "BrainLibrary",
    "EngineReliability",
    "ModelKey",
    "ModelVersion",
    "RegimeGateOverride",
    "Release",
    "ShadowResult",
    "StageChange",
    "VerifyProblem",
    "check_transition",
    "current_revision",
    "decision_event_id",
    "head_revision",
    "model_name",
    "parse_model_name",
    "sha256_bytes",
    "upgrade_to_head",
]
