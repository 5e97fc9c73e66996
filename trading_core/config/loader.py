"""Load the three YAML files, apply environment overrides, validate once.

Environment overrides (one scheme): ``ENGINE__<SECTION>__<KEY>[__<KEY>...]=<value>``, matched
case-insensitively to the dotted key, the value parsed as YAML (so ``3``, ``true``, ``[1h, 4h]``
keep their types). Example: ``ENGINE__RISK__PRESET=aggressive``.

Secrets (``data.exchange.api_key``, ``data.exchange.api_secret`` and a DSN carrying a password)
are accepted only from the environment; a file that holds one is rejected.
"""

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from trading_core.config.models import EngineConfig
from trading_core.errors import ConfigError

ENV_PREFIX = "ENGINE__"
CONFIG_FILES = ("scalable_engine.yaml", "risk_presets.yaml", "consensus_config.yaml")
SECRET_KEYS = frozenset({"data.exchange.api_key", "data.exchange.api_secret"})
DSN_KEY = "training.model_versioning.brain_library_dsn"


def default_config_paths(config_dir: str | Path = "config") -> list[Path]:
    """The three standard files in ``config_dir`` (those that exist)."""
    base = Path(config_dir)
    return [base / name for name in CONFIG_FILES if (base / name).exists()]


def load_config(
    paths: Iterable[str | Path] | None = None,
    env: Mapping[str, str] | None = None,
) -> EngineConfig:
    """Merge the YAML files, apply ``ENGINE__...`` overrides from ``env``, validate.

    ``paths=None`` reads the standard files from ``./config``; ``env=None`` reads ``os.environ``.
    Raises :class:`ConfigError` naming the file (or variable), the dotted key, the bad value and
    what is allowed.
    """
    file_list = [Path(p) for p in paths] if paths is not None else default_config_paths()
    environ = os.environ if env is None else env
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in file_list:
        _merge_file(path, merged, origin)
    _apply_env(environ, merged, origin)
    try:
        return EngineConfig.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, origin) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: top level must be a mapping of sections, got {type(data).__name__}"
        )
    return data


def _merge_file(path: Path, merged: dict[str, Any], origin: dict[str, str]) -> None:
    data = _read_yaml(path)
    for section, body in data.items():
        if section in merged:
            raise ConfigError(
                f"{path}: section {section!r} is already defined in {origin[section]}; "
                "define each section in one file"
            )
        merged[section] = body
        origin[section] = str(path)
    for dotted in _dotted_keys(data):
        origin.setdefault(dotted, str(path))
        _refuse_file_secret(path, dotted, _get(data, dotted))


def _dotted_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, Mapping):
            keys.extend(_dotted_keys(value, dotted + "."))
    return keys


def _get(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def _refuse_file_secret(path: Path, dotted: str, value: Any) -> None:
    if value in (None, ""):
        return
    if dotted in SECRET_KEYS:
        raise ConfigError(
            f"{path}: {dotted} is a secret and must not be written in a file; set "
            f"{ENV_PREFIX}{dotted.upper().replace('.', '__')} in the environment instead"
        )
    if dotted == DSN_KEY and _dsn_has_password(str(value)):
        raise ConfigError(
            f"{path}: {dotted} carries a password; put the DSN in the environment as "
            f"{ENV_PREFIX}TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN"
        )


def _dsn_has_password(dsn: str) -> bool:
    try:
        return make_url(dsn).password is not None
    except ArgumentError:
        return False


def _apply_env(environ: Mapping[str, str], merged: dict[str, Any], origin: dict[str, str]) -> None:
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            raise ConfigError(
                f"environment variable {name}: names no key; use ENGINE__SECTION__KEY"
            )
        path = _resolve_env_path(name, parts)
        raw = environ[name]
        value: Any = raw if ".".join(path) in SECRET_KEYS | {DSN_KEY} else _parse_env_value(raw)
        node = merged
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
        origin[".".join(path)] = f"environment variable {name}"


def _parse_env_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _resolve_env_path(name: str, parts: list[str]) -> list[str]:
    """Map case-insensitive env parts to the model's field names (dict keys stay as written)."""
    model: type[BaseModel] | None = EngineConfig
    path: list[str] = []
    for part in parts:
        if model is None:
            path.append(part.lower())
            continue
        fields = {f.lower(): f for f in model.model_fields}
        field = fields.get(part.lower())
        if field is None:
            allowed = ", ".join(sorted(model.model_fields))
            dotted = ".".join([*path, part.lower()])
            raise ConfigError(
                f"environment variable {name}: unknown key {dotted!r}; allowed here: {allowed}"
            )
        path.append(field)
        model = _submodel(model, field)
    return path


def _submodel(model: type[BaseModel], field: str) -> type[BaseModel] | None:
    annotation = model.model_fields[field].annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _config_error(exc: ValidationError, origin: Mapping[str, str]) -> ConfigError:
    issues = []
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"])
        source = _source_of(dotted, origin)
        value = err.get("input")
        shown = "<secret>" if _looks_secret(dotted) else repr(value)
        if err["type"] == "extra_forbidden":
            parent = dotted.rsplit(".", 1)[0] if "." in dotted else ""
            allowed = _allowed_keys(parent)
            issues.append(f"{source}: unknown key {dotted!r}; allowed keys here: {allowed}")
        else:
            issues.append(f"{source}: {dotted} = {shown}: {err['msg']}")
    message = "invalid configuration:\n  " + "\n  ".join(issues)
    return ConfigError(message, issues=issues)


def _looks_secret(dotted: str) -> bool:
    return dotted in SECRET_KEYS or dotted == DSN_KEY


def _source_of(dotted: str, origin: Mapping[str, str]) -> str:
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        found = origin.get(".".join(parts[:n]))
        if found:
            return found
    return "defaults"


def _allowed_keys(parent: str) -> str:
    model: type[BaseModel] | None = EngineConfig
    for part in [p for p in parent.split(".") if p]:
        if model is None or part not in model.model_fields:
            return "(see config/*.yaml)"
        model = _submodel(model, part)
    if model is None:
        return "(free-form mapping)"
    return ", ".join(sorted(model.model_fields))


def config_as_dict(config: EngineConfig) -> dict[str, Any]:
    """The effective config as plain data with every secret masked (for ``config show``)."""
    data = config.model_dump(mode="json")
    dsn = config.training.model_versioning.brain_library_dsn.get_secret_value()
    data["training"]["model_versioning"]["brain_library_dsn"] = mask_dsn(dsn)
    exchange = data["data"]["exchange"]
    for key in ("api_key", "api_secret"):
        secret = getattr(config.data.exchange, key)
        exchange[key] = None if secret is None else "**********"
    return data


def mask_dsn(dsn: str) -> str:
    """A DSN with its password replaced by ``***``; unparsable DSNs are masked whole."""
    try:
        return make_url(dsn).render_as_string(hide_password=True)
    except ArgumentError:
        return "**********"


def secret_values(config: EngineConfig) -> list[str]:
    """Every secret string in ``config`` (for tests and log scrubbing)."""
    found: list[str] = []
    for secret in (config.data.exchange.api_key, config.data.exchange.api_secret):
        if isinstance(secret, SecretStr) and secret.get_secret_value():
            found.append(secret.get_secret_value())
    password = _dsn_password(config.training.model_versioning.brain_library_dsn.get_secret_value())
    if password:
        found.append(password)
    return found


def _dsn_password(dsn: str) -> str | None:
    try:
        return make_url(dsn).password
    except ArgumentError:
        return None
