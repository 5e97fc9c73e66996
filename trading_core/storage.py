"""Where the engine's shared files live, named by one URL: a local folder or an object store.

``data.store_path`` (candles) and ``training.model_versioning.storage_path`` (model artifacts)
are either a plain path / ``file://`` URL (the local fast path: the stores use ``pathlib`` and
``os.replace`` as before) or ``s3://bucket/prefix`` (any S3-compatible server), read and written
through fsspec so that a Dask worker on another host or the Hamilton container sees the same
files. ``memory://`` (fsspec's in-process store) serves tests.

S3 credentials and endpoint come from the standard AWS environment that botocore reads
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` or
``AWS_ENDPOINT_URL_S3``, ``AWS_DEFAULT_REGION``); ``storage.endpoint_url`` in the config may name
the endpoint instead (never a secret: URLs carrying credentials are refused).
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from trading_core.errors import ConfigError

LOCAL_SCHEME: Final = "file"
SUPPORTED_SCHEMES: Final = ("file", "s3", "memory")
# "s3:" or "memory:" but not a Windows drive letter ("C:"): a scheme is two characters or more
_SCHEME_RE: Final = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):")
_ALLOWED_TEXT: Final = "a plain path, file:///abs/path, s3://bucket/prefix or memory://prefix"


@dataclass(frozen=True, slots=True)
class StorageLocation:
    """A folder on some filesystem: ``protocol`` plus the filesystem's own ``path`` (a local
    path as given for ``file``; ``bucket/prefix`` for ``s3``; ``/prefix`` for ``memory``)."""

    protocol: str
    path: str
    endpoint_url: str | None = None

    @property
    def is_local(self) -> bool:
        return self.protocol == LOCAL_SCHEME

    @property
    def url(self) -> str:
        """The full URL: ``file:///abs/path`` or ``s3://bucket/prefix``."""
        if self.is_local:
            return Path(self.path).absolute().as_uri()
        return f"{self.protocol}://{self.path.lstrip('/')}"

    def local_path(self) -> Path:
        """The folder as a :class:`~pathlib.Path`; only for ``file`` locations."""
        if not self.is_local:
            raise ValueError(f"{self.url} is not on the local filesystem")
        return Path(self.path)

    def join(self, *parts: str) -> "StorageLocation":
        """The location ``parts`` below this one (``/``-separated on every protocol)."""
        clean = [p.strip("/") for p in parts if p.strip("/")]
        path = "/".join([self.path.rstrip("/") or "/", *clean]).replace("//", "/")
        return StorageLocation(self.protocol, path, self.endpoint_url)

    def filesystem(self) -> Any:
        """The fsspec filesystem serving this location (instances are cached by fsspec, and
        rebuilt in a forked child, so calling this per operation is cheap)."""
        import fsspec  # type: ignore[import-untyped]

        return fsspec.filesystem(self.protocol, **_storage_options(self))

    def is_file(self) -> bool:
        if self.is_local:
            return self.local_path().is_file()
        return bool(self.filesystem().isfile(self.path))

    def fetch(self) -> bytes | None:
        """The whole file, or None when there is none. Remote: one GET, so the bytes are one
        version of the object even while a writer replaces it."""
        try:
            if self.is_local:
                return self.local_path().read_bytes()
            return bytes(self.filesystem().cat_file(self.path))
        except FileNotFoundError:
            return None

    def put(self, data: bytes) -> None:
        """Replace the remote object with one PUT (atomic on S3: readers see the old or the new
        object). Local stores keep their own temp-file + ``os.replace`` writes."""
        if self.is_local:
            raise ValueError(f"{self.url}: write local files atomically in place")
        self.filesystem().pipe_file(self.path, data)

    def names(self) -> list[str]:
        """The entries directly below this folder (none when it does not exist)."""
        if self.is_local:
            root = self.local_path()
            return [entry.name for entry in root.iterdir()] if root.is_dir() else []
        try:
            listed = self.filesystem().ls(self.path, detail=False)
        except FileNotFoundError:
            return []
        return [str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in listed]

    def __str__(self) -> str:
        return self.url


def _storage_options(location: StorageLocation) -> dict[str, Any]:
    if location.protocol != "s3":
        return {}
    # Another process may write (training workers, the DAG): a cached listing would hide new
    # candle files from list_symbols, so every listing asks the server.
    options: dict[str, Any] = {"use_listings_cache": False}
    if location.endpoint_url:
        options["endpoint_url"] = location.endpoint_url
    return options


def parse_location(
    value: "str | Path | StorageLocation", *, endpoint_url: str | None = None
) -> StorageLocation:
    """Parse a store URL (module docstring); raises :class:`~trading_core.errors.ConfigError`
    naming the value and the allowed forms when the scheme is unknown or the URL malformed."""
    if isinstance(value, StorageLocation):
        if endpoint_url and not value.endpoint_url:
            return StorageLocation(value.protocol, value.path, endpoint_url)
        return value
    if isinstance(value, Path):
        return StorageLocation(LOCAL_SCHEME, str(value))
    text = str(value).strip()
    if not text:
        raise ConfigError(f"storage location is empty; use {_ALLOWED_TEXT}")
    match = _SCHEME_RE.match(text)
    if match is None:
        return StorageLocation(LOCAL_SCHEME, str(Path(text)))
    scheme = match["scheme"].lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise ConfigError(
            f"storage location {text!r} has the unsupported scheme {scheme!r}; allowed schemes: "
            f"{', '.join(SUPPORTED_SCHEMES)} (or a plain path)"
        )
    parts = urlsplit(text)
    if not text[len(scheme) + 1 :].startswith("//") or "@" in parts.netloc:
        raise ConfigError(
            f"storage location {text!r} is malformed; use {_ALLOWED_TEXT} "
            "(credentials belong in the AWS_* environment, never in the URL)"
        )
    if scheme == LOCAL_SCHEME:
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"storage location {text!r}: a file URL needs an absolute path "
                "(file:///abs/path); for a relative folder give the plain path"
            )
        return StorageLocation(LOCAL_SCHEME, unquote(parts.path) or "/")
    path = (parts.netloc + parts.path).rstrip("/")
    if scheme == "s3" and not parts.netloc:
        raise ConfigError(f"storage location {text!r} names no bucket; use s3://bucket/prefix")
    if scheme == "memory":
        path = "/" + path.lstrip("/")
    return StorageLocation(scheme, path, endpoint_url or None)


def check_location(value: str) -> str:
    """``value`` if it parses as a store URL; else ValueError (for pydantic validators, which
    turn it into the config loader's ConfigError naming the key)."""
    try:
        parse_location(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return value


def check_endpoint(value: str | None) -> str | None:
    """An http(s) endpoint without credentials (they belong in the environment)."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise ValueError(
            f"endpoint_url {value!r}: expected http(s)://host[:port] without credentials "
            "(set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment)"
        )
    return value
