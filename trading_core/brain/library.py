"""BrainLibrary: the versioned store of models the training DAG writes and Hamilton reads.

One object per process, shared by threads (Dagster ops, Dask-driver threads): it holds a
SQLAlchemy engine (thread-safe pool) and an artifact root; every call runs in its own
transaction. Writes that lose a race against another writer (thread or process) are retried;
the database's unique constraints make duplicates impossible rather than unlikely.
"""

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from trading_core.brain import lifecycle, models_store
from trading_core.brain.artifacts import ArtifactStore
from trading_core.brain.db import Database
from trading_core.brain.library_data import BrainDataMixin
from trading_core.brain.migrate import current_revision, head_revision, upgrade_to_head
from trading_core.brain.pipeline_runs import PipelineRunsMixin
from trading_core.brain.records import (
    ModelKey,
    ModelVersion,
    StageChange,
    VerifyProblem,
    canonical_json,
    finite_floats,
    parse_model_name,
)
from trading_core.config import EngineConfig
from trading_core.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ModelNotFoundError,
)
from trading_core.observability.logging import get_logger
from trading_core.storage import StorageLocation, parse_location
from trading_core.types import Stage


def _log() -> Any:
    # Looked up per call: a logger bound at import would miss a later configure_logging().
    return get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class BrainLibrary(BrainDataMixin, PipelineRunsMixin):
    """Model versions, stages, releases, artifacts, rankings, events (see package docs)."""

    def __init__(
        self,
        dsn: str,
        artifact_root: str | Path | StorageLocation,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = Database(dsn)
        self._clock = clock
        self.artifacts = ArtifactStore(artifact_root)

    @classmethod
    def from_config(cls, config: EngineConfig) -> "BrainLibrary":
        section = config.training.model_versioning
        # the artifact store's URL: a local folder or s3://bucket/prefix shared by every host
        artifacts = parse_location(section.storage_path, endpoint_url=config.storage.endpoint_url)
        return cls(section.brain_library_dsn.get_secret_value(), artifacts)

    @property
    def masked_dsn(self) -> str:
        return self._db.masked_dsn

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and operators; the product uses the methods)."""
        return self._db.engine

    def __repr__(self) -> str:
        return f"BrainLibrary({self.masked_dsn!r}, artifact_root={str(self.artifacts.root)!r})"

    def close(self) -> None:
        self._db.dispose()

    # --- schema --------------------------------------------------------------------------

    def migrate(self) -> str:
        """Bring the schema to the newest migration; returns the revision reached."""
        with self._db.translated():
            revision = upgrade_to_head(self._db.write_engine)
        _log().info("brain_migrated", dsn=self.masked_dsn, revision=revision)
        return revision

    def schema_is_current(self) -> bool:
        with self._db.translated():
            return current_revision(self._db.engine) == head_revision()

    # --- models --------------------------------------------------------------------------

    def register_model(
        self,
        key: ModelKey,
        artifact: bytes,
        *,
        metrics: Mapping[str, float],
        params: Mapping[str, Any],
        feature_list: Sequence[str],
        data_hash: str,
        partition_date: date,
        created_at: datetime,
        reliability: Mapping[str, float] | None = None,
        correlation: Mapping[str, Mapping[str, float]] | None = None,
        artifact_format: str = "ubj",
        actor: str = "training",
    ) -> ModelVersion:
        """Store a trained model as the key's next candidate version.

        Idempotent: the same key, training data hash and params return the existing version.
        """
        models_store.validated_registration(
            metrics=metrics,
            params=params,
            feature_list=feature_list,
            data_hash=data_hash,
            created_at=created_at,
            partition_date=partition_date,
            artifact_format=artifact_format,
        )
        params_sha256 = models_store.params_digest(params)
        fields: dict[str, Any] = {
            "metrics": finite_floats(metrics, "metrics"),
            "params": dict(params),
            "params_sha256": params_sha256,
            "feature_list": list(feature_list),
            "training_data_hash": data_hash,
            "artifact_format": artifact_format,
            "partition_date": partition_date,
            "reliability": models_store.validated_reliability(reliability),
            "correlation": models_store.validated_correlation(correlation),
        }
        ref = self.artifacts.put(artifact)

        def work(session: Session) -> tuple[ModelVersion, bool]:
            key_row = models_store.lock_key(session, key)
            found = models_store.find_by_identity(session, key, data_hash, params_sha256)
            if found is not None:
                return models_store.to_record(found), False
            row = models_store.insert_version(
                session, key_row, key, ref, fields=fields, created_at=created_at,
                actor=actor, now=self._clock(),
            )  # fmt: skip
            return models_store.to_record(row), True

        record, created = self._db.write(work)
        if created:
            _log().info("model_registered", model=record.name, key=key.slug, version=record.version)
        elif record.artifact_sha256 != ref.sha256:
            _log().warning(
                "model_register_artifact_differs",
                model=record.name,
                stored_sha256=record.artifact_sha256,
                offered_sha256=ref.sha256,
            )
        return record

    def get_model(self, name: str) -> ModelVersion:
        with self._db.read() as session:
            return models_store.to_record(models_store.get_row(session, name))

    def list_models(
        self,
        coin: str | None = None,
        regime: str | None = None,
        timeframe: str | None = None,
        stage: Stage | str | None = None,
    ) -> list[ModelVersion]:
        wanted = None if stage is None else Stage(stage)
        with self._db.read() as session:
            rows = models_store.list_rows(
                session, coin=coin, regime=regime, timeframe=timeframe, stage=wanted
            )
            return [models_store.to_record(r) for r in rows]

    def _in_stage(self, key: ModelKey, stage: Stage) -> ModelVersion | None:
        with self._db.read() as session:
            row = models_store.stage_row(session, key, stage)
            return None if row is None else models_store.to_record(row)

    def production_model(self, key: ModelKey) -> ModelVersion | None:
        return self._in_stage(key, Stage.PRODUCTION)

    def shadow_model(self, key: ModelKey) -> ModelVersion | None:
        return self._in_stage(key, Stage.SHADOW)

    def best_model(
        self,
        key: ModelKey,
        metric: str,
        higher_is_better: bool = True,
        stages: Collection[Stage] = (Stage.CANDIDATE, Stage.SHADOW, Stage.PRODUCTION),
    ) -> ModelVersion | None:
        """The version of ``key`` with the best ``metric`` among ``stages`` (archived models
        are out by default); ties go to the newer version; None when none reports it."""
        candidates = [
            m
            for m in self.list_models(key.coin, key.regime, key.timeframe)
            if m.stage in stages and metric in m.metrics
        ]
        if not candidates:
            return None
        sign = 1.0 if higher_is_better else -1.0
        return max(candidates, key=lambda m: (sign * m.metrics[metric], m.version))

    def record_validation(
        self,
        name: str,
        *,
        metrics: Mapping[str, float],
        validation: Mapping[str, Any],
        reliability: Mapping[str, float] | None = None,
        correlation: Mapping[str, Mapping[str, float]] | None = None,
        serving_tables: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Attach out-of-sample results to a registered model: ``metrics`` are merged into its
        metrics; ``validation``, reliability, correlation and serving tables are replaced.
        Re-running with the same results leaves the row unchanged (idempotent)."""
        merged_metrics = finite_floats(metrics, "metrics")
        payload = {
            "validation": json.loads(canonical_json(dict(validation), "validation")),
            "serving_tables": None
            if serving_tables is None
            else json.loads(canonical_json(dict(serving_tables), "serving_tables")),
            "reliability": models_store.validated_reliability(reliability),
            "correlation": models_store.validated_correlation(correlation),
        }

        def work(session: Session) -> ModelVersion:
            row = models_store.get_row(session, name, lock=True)
            row.metrics = {**dict(row.metrics), **merged_metrics}
            for field, value in payload.items():
                setattr(row, field, value)
            return models_store.to_record(row)

        record = self._db.write(work)
        _log().info("model_validated", model=name, eligible=validation.get("eligible"))
        return record

    def record_gate(
        self, name: str, *, metrics: Mapping[str, float], gate: Mapping[str, Any]
    ) -> ModelVersion:
        """Attach the promotion gate's figures: ``metrics`` merged into the model's metrics,
        ``gate`` stored as ``validation["gate"]`` (the rest of the validation is kept)."""
        merged_metrics = finite_floats(metrics, "metrics")
        gate_payload = json.loads(canonical_json(dict(gate), "gate"))

        def work(session: Session) -> ModelVersion:
            row = models_store.get_row(session, name, lock=True)
            row.metrics = {**dict(row.metrics), **merged_metrics}
            row.validation = {**dict(row.validation or {}), "gate": gate_payload}
            return models_store.to_record(row)

        record = self._db.write(work)
        _log().info("model_gated", model=name, passed=gate.get("passed"))
        return record

    # --- stages --------------------------------------------------------------------------

    def set_stage(
        self,
        name: str,
        stage: Stage | str,
        *,
        actor: str,
        reason: str,
        statistics: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Move a model to ``stage``; entering production (or shadow) archives the key's
        previous production (or shadow) model in the same transaction."""
        target = Stage(stage)
        key = parse_model_name(name)[0]

        def work(session: Session) -> ModelVersion:
            models_store.lock_key(session, key)
            row = models_store.get_row(session, name)
            lifecycle.change_stage(
                session, row, target, actor=actor, reason=reason, statistics=statistics,
                at=self._clock(),
            )  # fmt: skip
            return models_store.to_record(row)

        record = self._db.write(work)
        _log().info("model_stage_set", model=name, stage=target.value, actor=actor, reason=reason)
        return record

    def record_stage_review(
        self,
        name: str,
        *,
        actor: str,
        reason: str,
        statistics: Mapping[str, Any] | None = None,
    ) -> StageChange:
        """Record in the stage history a decision that leaves the model in its stage (e.g. a
        shadow test that keeps waiting, with its statistics); returns the entry written."""
        key = parse_model_name(name)[0]

        def work(session: Session) -> StageChange:
            models_store.lock_key(session, key)
            row = models_store.get_row(session, name)
            at = self._clock()
            lifecycle.review(session, row, actor=actor, reason=reason, statistics=statistics, at=at)
            stage = Stage(row.stage)
            return StageChange(name, stage, stage, actor, reason, at, statistics)

        change = self._db.write(work)
        _log().info("model_stage_reviewed", model=name, stage=change.to_stage.value, actor=actor)
        return change

    def promote(
        self,
        name: str,
        *,
        actor: str,
        reason: str,
        statistics: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        return self.set_stage(
            name, Stage.PRODUCTION, actor=actor, reason=reason, statistics=statistics
        )

    def rollback(
        self, key: ModelKey, *, to_version: int | None = None, actor: str, reason: str
    ) -> ModelVersion:
        """The key's previous production version (or ``to_version``) serves again; the
        current one is archived. Both moves are in the stage history."""

        def work(session: Session) -> ModelVersion:
            row = lifecycle.rollback_key(
                session, key, to_version=to_version, actor=actor, reason=reason, at=self._clock()
            )
            return models_store.to_record(row)

        record = self._db.write(work)
        _log().warning(
            "model_rolled_back", key=key.slug, model=record.name, actor=actor, reason=reason
        )
        return record

    def stage_history(self, name_or_key: str | ModelKey) -> list[StageChange]:
        """The audit trail of one model (by name) or of every version of a key, oldest first."""
        with self._db.read() as session:
            if isinstance(name_or_key, ModelKey) or name_or_key.count("_") == 2:
                key = (
                    name_or_key
                    if isinstance(name_or_key, ModelKey)
                    else ModelKey.parse(name_or_key)
                )
                rows = models_store.list_rows(
                    session, coin=key.coin, regime=key.regime, timeframe=key.timeframe, stage=None
                )
                if not rows:
                    raise ModelNotFoundError(f"no model versions of {key.slug}")
                ids = [r.id for r in rows]
            else:
                ids = [models_store.get_row(session, name_or_key).id]
            entries = lifecycle.history_rows(session, ids)
            return [models_store.history_record(entry, name) for entry, name in entries]

    # --- artifacts -----------------------------------------------------------------------

    def load_artifact(self, version: ModelVersion | str) -> bytes:
        """The model's bytes, verified against the sha256 recorded at registration."""
        record = self.get_model(version) if isinstance(version, str) else version
        return self.artifacts.load(record.artifact_sha256)

    def verify_artifacts(self) -> list[VerifyProblem]:
        """Re-hash every artifact the library references; an empty list means all is well."""
        problems: list[VerifyProblem] = []
        for model in self.list_models():
            try:
                self.artifacts.load(model.artifact_sha256)
            except ArtifactNotFoundError as exc:
                problems.append(
                    VerifyProblem(model.name, model.artifact_sha256, "missing", str(exc))
                )
            except ArtifactIntegrityError as exc:
                problems.append(
                    VerifyProblem(model.name, model.artifact_sha256, "corrupt", str(exc))
                )
        if problems:
            _log().error("brain_artifacts_invalid", problems=len(problems))
        return problems
