"""The release Hamilton serves: models, serving tables and gates, loaded and verified at once.

``load_release`` reads every model of a release for one timeframe, verifies each artifact's
sha256 (the Brain Library re-hashes on load), parses it with XGBoost, checks its feature list
against the learned engine's inputs and reads the coin's serving tables; the release's gates
override the configured ones. Anything wrong refuses the WHOLE release with a reason code, so
the previous release keeps serving; a half-loaded release is never served. Each shadow model
becomes a :class:`Challenger`: the coin's production set with the challenger in place of its
regime's model (and the production set's serving tables), which the shadow books trade.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final

import numpy as np

from trading_core.brain import BrainLibrary, ModelVersion, Release
from trading_core.decision.inputs import ServingTables
from trading_core.engines import ENGINE_NAMES, ML_INPUT_COLUMNS
from trading_core.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ConfigError,
    ReleaseRefusedError,
    TrainingError,
)
from trading_core.regime import RegimeGates
from trading_core.training.model import load_booster
from trading_core.training.predictor import RegimeModelPredictor
from trading_core.types import REGIME_CODES, REGIMES, Regime


def neutral_tables() -> ServingTables:
    """Tables of a coin without fitted ones: no correlation penalty and no consensus edge
    (the consensus then forecasts 0 bps, so nothing passes the cost check without a model)."""
    return ServingTables(np.ones((len(REGIMES), len(ENGINE_NAMES))), np.zeros(len(REGIMES)))


@dataclass(frozen=True)
class CoinModels:
    """One coin's serving set: a predictor over its regime models, tables and model names."""

    coin: str
    predictor: RegimeModelPredictor | None
    tables: ServingTables
    versions: Mapping[int, str] = field(default_factory=dict)  # regime code -> model name

    def version_for(self, regime_code: int) -> str | None:
        return self.versions.get(int(regime_code))


NO_MODELS: Final = CoinModels("", None, neutral_tables())


@dataclass(frozen=True)
class Challenger:
    """One shadow model: the key's production model it challenges (None: the key has none)
    and the coin's serving set with the challenger in place of that one regime model."""

    name: str
    champion: str | None
    regime_code: int
    models: CoinModels


@dataclass(frozen=True)
class ServedRelease:
    """A verified release: production models per coin, shadow challengers per coin, gates."""

    release: Release
    timeframe: str
    production: Mapping[str, CoinModels]
    shadow: Mapping[str, tuple[Challenger, ...]]
    gates: RegimeGates
    loaded_at: datetime

    @property
    def id(self) -> int:
        return self.release.id

    def coin(self, coin: str) -> CoinModels:
        return self.production.get(coin, NO_MODELS)

    def challengers(self, coin: str) -> tuple[Challenger, ...]:
        """The coin's shadow challengers, one per key in shadow (regime order)."""
        return self.shadow.get(coin, ())


def load_release(
    library: BrainLibrary,
    release: Release,
    *,
    timeframe: str,
    base_gates: RegimeGates,
    loaded_at: datetime,
    nthread: int = 1,
) -> ServedRelease:
    """Load and verify ``release`` (module docstring); raises :class:`ReleaseRefusedError`."""
    versions = [m for m in library.release_models(release.id) if m.key.timeframe == timeframe]
    blobs = {m.name: _artifact(library, release.id, m) for m in versions}
    production_models = [m for m in versions if m.role == "production"]
    production = _coin_sets(release.id, production_models, blobs, nthread)
    shadow: dict[str, tuple[Challenger, ...]] = {}
    for model in sorted(
        (m for m in versions if m.role == "shadow"), key=lambda m: (m.key.coin, m.key.regime)
    ):
        champions = [m for m in production_models if m.key.coin == model.key.coin]
        challenger = _challenger(release.id, model, champions, blobs, nthread)
        if model.key.coin in production:  # the very tables the champion's decisions use
            tables = production[model.key.coin].tables
            challenger = replace(challenger, models=replace(challenger.models, tables=tables))
        shadow[model.key.coin] = (*shadow.get(model.key.coin, ()), challenger)
    return ServedRelease(
        release=release,
        timeframe=timeframe,
        production=production,
        shadow=shadow,
        gates=_gates(release, base_gates),
        loaded_at=loaded_at,
    )


def _artifact(library: BrainLibrary, release_id: int, model: ModelVersion) -> bytes:
    try:
        return library.load_artifact(model)
    except ArtifactIntegrityError as exc:
        raise ReleaseRefusedError(release_id, "checksum_mismatch", f"{model.name}: {exc}") from exc
    except ArtifactNotFoundError as exc:
        raise ReleaseRefusedError(release_id, "artifact_missing", f"{model.name}: {exc}") from exc


def _challenger(
    release_id: int,
    model: ModelVersion,
    champions: list[ModelVersion],
    blobs: Mapping[str, bytes],
    nthread: int,
) -> Challenger:
    champion = next((m for m in champions if m.key.regime == model.key.regime), None)
    others = [m for m in champions if m.key.regime != model.key.regime]
    return Challenger(
        name=model.name,
        champion=None if champion is None else champion.name,
        regime_code=REGIME_CODES[Regime(model.key.regime)],
        models=_coin_models(release_id, model.key.coin, [*others, model], blobs, nthread),
    )


def _coin_sets(
    release_id: int, models: list[ModelVersion], blobs: Mapping[str, bytes], nthread: int
) -> dict[str, CoinModels]:
    by_coin: dict[str, list[ModelVersion]] = {}
    for model in models:
        by_coin.setdefault(model.key.coin, []).append(model)
    return {
        coin: _coin_models(release_id, coin, group, blobs, nthread)
        for coin, group in sorted(by_coin.items())
    }


def _coin_models(
    release_id: int,
    coin: str,
    models: list[ModelVersion],
    blobs: Mapping[str, bytes],
    nthread: int,
) -> CoinModels:
    boosters = {}
    for model in models:
        if tuple(model.feature_list) != ML_INPUT_COLUMNS:
            raise ReleaseRefusedError(
                release_id,
                "feature_mismatch",
                f"{model.name} was trained on {len(model.feature_list)} features that are not "
                f"the learned engine's {len(ML_INPUT_COLUMNS)} inputs (ML_INPUT_COLUMNS)",
            )
        try:
            boosters[REGIME_CODES[Regime(model.key.regime)]] = load_booster(
                blobs[model.name], nthread=nthread
            )
        except TrainingError as exc:
            raise ReleaseRefusedError(
                release_id, "unreadable_model", f"{model.name}: {exc}"
            ) from exc
    return CoinModels(
        coin=coin,
        predictor=RegimeModelPredictor(boosters),
        tables=_tables(release_id, models),
        versions={REGIME_CODES[Regime(m.key.regime)]: m.name for m in models},
    )


def _tables(release_id: int, models: list[ModelVersion]) -> ServingTables:
    payloads = [m.serving_tables for m in models if m.serving_tables]
    if not payloads:
        return neutral_tables()
    try:
        tables = ServingTables.from_payload(dict(payloads[0]))
    except (KeyError, TypeError, ValueError) as exc:
        names = [m.name for m in models]
        raise ReleaseRefusedError(
            release_id, "bad_serving_tables", f"serving tables of {names}: {exc!r}"
        ) from exc
    if tables.engine_names != ENGINE_NAMES:
        raise ReleaseRefusedError(
            release_id,
            "bad_serving_tables",
            f"tables list engines {list(tables.engine_names)}; expected {list(ENGINE_NAMES)}",
        )
    return tables


def _gates(release: Release, base: RegimeGates) -> RegimeGates:
    if not release.gates:
        return base
    try:
        return base.with_overrides(dict(release.gates))
    except ConfigError as exc:
        raise ReleaseRefusedError(release.id, "bad_gates", str(exc)) from exc
