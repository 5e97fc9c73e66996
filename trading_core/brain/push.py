"""The release of the current stages: every production and shadow model of the Brain Library,
plus the current regime-gate overrides, as one release (what Hamilton follows).

One function for the training DAG's daily push (``brain_library_push``) and for the command
line's rollback (``coin-engine brain rollback``), so both write the same release content."""

from datetime import date
from typing import Any

from trading_core.brain.library import BrainLibrary
from trading_core.brain.records import RegimeGateOverride
from trading_core.brain.releases import PushOutcome
from trading_core.observability.logging import get_logger
from trading_core.types import Stage

log = get_logger(__name__)


def push_current_stages(
    library: BrainLibrary, release_date: date, *, note: str = "", created_by: str
) -> PushOutcome:
    """The day's push: every production and shadow model, plus the current gate overrides.

    ``pushed``: a new release (atomic). ``unchanged``: the content equals the latest release's,
    nothing written, so the release keeps its age and Hamilton reloads nothing.
    ``refused_older_day``: the latest release is of a later day; nothing written.
    ``nothing_to_release``: no model in production or shadow yet."""
    production = sorted(m.name for m in library.list_models(stage=Stage.PRODUCTION))
    shadow = sorted(m.name for m in library.list_models(stage=Stage.SHADOW))
    if not production and not shadow:
        log.warning(
            "release_skipped", reason="no production or shadow model", date=str(release_date)
        )
        return PushOutcome("nothing_to_release", release_date, library.latest_release())
    overrides = library.current_regime_gates(as_of=release_date)
    gates = {regime: _gate_payload(o) for regime, o in overrides.items()} or None
    outcome = library.push_daily_release(
        release_date,
        production=production,
        shadow=shadow,
        gates=gates,
        created_by=created_by,
        note=note,
    )
    release = outcome.release
    fields = {
        "date": str(release_date),
        "release_id": None if release is None else release.id,
        "production": len(production),
        "shadow": len(shadow),
    }
    if outcome.status == "pushed":
        log.info("release_pushed", **fields)
    elif outcome.status == "unchanged":
        log.info("release_unchanged", **fields)
    else:
        latest_day = None if release is None else str(release.release_date)
        log.warning("release_refused_older_day", latest_release_date=latest_day, **fields)
    return outcome


def _gate_payload(override: RegimeGateOverride) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "enabled_engines": list(override.enabled_engines),
        "disabled_engines": list(override.disabled_engines),
    }
    if override.weight_multipliers:
        payload["weight_multipliers"] = dict(override.weight_multipliers)
    return payload
