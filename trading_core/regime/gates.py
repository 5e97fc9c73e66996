"""Regime gates: which engines vote in a regime (hard) and how much they weigh (soft).

Hard gates, per regime (``enabled_mask``):

* ILLIQUID: no engine votes, ever (even with the gates switched off).
* ``regime_gates.enabled`` false: the gates are open, every engine votes (ILLIQUID aside).
* A regime with a non-empty ``enabled_engines`` list: only those engines vote; an engine in
  neither list does not vote (the list is an allow-list, as the seed's mapping reads).
* A regime with an empty ``enabled_engines`` list: every engine votes except ``disabled_engines``.
* ``disabled_engines`` never vote.

Soft gates (``weight_multipliers``): 1.0 by default, times the regime's configured
``weight_multipliers[engine]``, times ``off_regime_multiplier`` (default 0.5) when the engine's
declared regimes (EngineSpec.regimes) do not include the regime, so an engine voting outside its
home regime counts half. With the gates switched off every multiplier is 1.0.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from trading_core.config.models import RegimeGate, RegimeGatesSection
from trading_core.engines.registry import ENGINE_NAMES, ENGINE_REGISTRY
from trading_core.errors import ConfigError
from trading_core.types import REGIMES, Regime

DEFAULT_OFF_REGIME_MULTIPLIER: Final = 0.5
_GATE_KEYS: Final = frozenset(RegimeGate.model_fields)


def _validate_names(section: RegimeGatesSection, engine_names: tuple[str, ...]) -> None:
    allowed = set(engine_names)
    for regime in REGIMES:
        gate: RegimeGate = getattr(section, regime.value)
        lists = {
            "enabled_engines": gate.enabled_engines,
            "disabled_engines": gate.disabled_engines,
            "weight_multipliers": tuple(gate.weight_multipliers),
        }
        for key, names in lists.items():
            unknown = [n for n in names if n not in allowed]
            if unknown:
                raise ConfigError(
                    f"regime_gates.{regime.value}.{key}: engine {unknown[0]!r} is not a "
                    f"registered engine; allowed: {sorted(allowed)}"
                )


def _mask(section: RegimeGatesSection, names: tuple[str, ...], regime: Regime) -> np.ndarray:
    if regime is Regime.ILLIQUID:
        return np.zeros(len(names), dtype=bool)
    if not section.enabled:
        return np.ones(len(names), dtype=bool)
    gate: RegimeGate = getattr(section, regime.value)
    allowed = set(gate.enabled_engines) if gate.enabled_engines else set(names)
    blocked = set(gate.disabled_engines)
    return np.array([n in allowed and n not in blocked for n in names], dtype=bool)


@dataclass(frozen=True, slots=True, eq=False)
class RegimeGates:
    """Hard and soft gates over ``engine_names`` (in that order), built by ``from_config``."""

    section: RegimeGatesSection
    engine_names: tuple[str, ...]
    engine_regimes: Mapping[str, tuple[Regime, ...]]
    off_regime_multiplier: float = DEFAULT_OFF_REGIME_MULTIPLIER
    _masks: Mapping[Regime, npt.NDArray[np.bool_]] = field(init=False, repr=False)
    _weights: Mapping[Regime, npt.NDArray[np.float64]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(set(self.engine_names)) != len(self.engine_names):
            raise ConfigError(f"engine_names {list(self.engine_names)} contain duplicates")
        if not 0.0 <= self.off_regime_multiplier <= 1.0:
            raise ConfigError(
                f"off_regime_multiplier {self.off_regime_multiplier!r} must be in [0, 1]"
            )
        missing = [n for n in self.engine_names if n not in self.engine_regimes]
        if missing:
            raise ConfigError(f"engines {missing} have no declared regimes")
        _validate_names(self.section, self.engine_names)
        masks = {r: _mask(self.section, self.engine_names, r) for r in REGIMES}
        weights = {r: self._compute_weights(r) for r in REGIMES}
        for arrays in (masks, weights):
            for array in arrays.values():
                array.setflags(write=False)
        object.__setattr__(self, "_masks", MappingProxyType(masks))
        object.__setattr__(self, "_weights", MappingProxyType(weights))

    @classmethod
    def from_config(
        cls,
        section: RegimeGatesSection,
        engine_names: tuple[str, ...] = ENGINE_NAMES,
        *,
        off_regime_multiplier: float | None = None,
        engine_regimes: Mapping[str, tuple[Regime, ...]] | None = None,
    ) -> "RegimeGates":
        """Gates from config; every engine named in it must be in ``engine_names`` (ConfigError
        naming regime, engine and allowed names). Declared regimes default to the registry's."""
        names = tuple(engine_names)
        if engine_regimes is None:
            unknown = [n for n in names if n not in ENGINE_REGISTRY]
            if unknown:
                raise ConfigError(
                    f"engines {unknown} are not registered; pass engine_regimes for them or use "
                    f"names from {list(ENGINE_NAMES)}"
                )
            engine_regimes = {n: ENGINE_REGISTRY[n].regimes for n in names}
        multiplier = (
            section.off_regime_multiplier
            if off_regime_multiplier is None
            else off_regime_multiplier
        )
        return cls(section, names, MappingProxyType(dict(engine_regimes)), multiplier)

    def _compute_weights(self, regime: Regime) -> npt.NDArray[np.float64]:
        if not self.section.enabled:
            return np.ones(len(self.engine_names))
        gate: RegimeGate = getattr(self.section, regime.value)
        return np.array(
            [
                gate.weight_multipliers.get(name, 1.0)
                * (1.0 if regime in self.engine_regimes[name] else self.off_regime_multiplier)
                for name in self.engine_names
            ]
        )

    def enabled_mask(self, regime: Regime | str) -> npt.NDArray[np.bool_]:
        """Which engines vote in ``regime`` (bool per engine, read-only)."""
        return self._masks[Regime(regime)]

    def weight_multipliers(self, regime: Regime | str) -> npt.NDArray[np.float64]:
        """Soft weight per engine in ``regime`` (read-only), independent of the hard mask."""
        return self._weights[Regime(regime)]

    def effective_weights(self, regime: Regime | str) -> npt.NDArray[np.float64]:
        """``weight_multipliers`` with engines that may not vote set to 0."""
        return np.where(self.enabled_mask(regime), self.weight_multipliers(regime), 0.0)

    def gate(self, regime: Regime | str) -> RegimeGate:
        """The configured gate of ``regime``."""
        gate: RegimeGate = getattr(self.section, Regime(regime).value)
        return gate

    def with_overrides(self, gates_payload: Mapping[str, Any]) -> "RegimeGates":
        """New gates with ``gates_payload`` (e.g. the Brain Library's weekly override or
        ``auto_gate``'s output) applied: ``{"enabled": bool, "<REGIME>": {"enabled_engines":
        [...], "disabled_engines": [...], "weight_multipliers": {...}}}``, every key optional.
        A list given replaces the configured one; an engine newly enabled (disabled) is removed
        from the other list unless the payload gives both lists."""
        merged = self.section.model_dump()
        for key, value in gates_payload.items():
            if key == "enabled":
                merged["enabled"] = value
            elif key in Regime.__members__:
                merged[key] = _merge_gate(key, merged[key], value)
            else:
                raise ConfigError(
                    f"gates override key {key!r} is unknown; allowed: 'enabled', "
                    f"{[r.value for r in REGIMES]}"
                )
        try:
            section = RegimeGatesSection.model_validate(merged)
        except ValidationError as err:
            raise ConfigError(f"gates override is invalid: {err}") from err
        return RegimeGates(
            section, self.engine_names, self.engine_regimes, self.off_regime_multiplier
        )


def _merge_gate(regime: str, current: dict[str, Any], update: Any) -> dict[str, Any]:
    if not isinstance(update, Mapping):
        raise ConfigError(f"gates override {regime!r} must be a mapping, got {update!r}")
    unknown = set(update) - _GATE_KEYS
    if unknown:
        raise ConfigError(
            f"gates override {regime}: keys {sorted(unknown)} unknown; "
            f"allowed: {sorted(_GATE_KEYS)}"
        )
    merged = {**current, **update}
    for given, other in (
        ("enabled_engines", "disabled_engines"),
        ("disabled_engines", "enabled_engines"),
    ):
        if given in update and other not in update:
            newly = set(update[given])
            merged[other] = [n for n in current[other] if n not in newly]
    return merged
