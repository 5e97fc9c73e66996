"""Content-addressed artifact store: bytes live at ``root/ab/cdef...`` named by their sha256.

``root`` is a store URL (:mod:`trading_core.storage`). Locally a file is written once (temp file
in the same directory, fsync, ``os.replace``); on an object store (``s3://``) with one PUT of the
whole object, which S3 makes visible atomically. Either way nothing is ever overwritten, so a
reader sees either nothing or the complete bytes. Every load re-hashes: a flipped byte raises
:class:`ArtifactIntegrityError`, a missing file :class:`ArtifactNotFoundError`. Models are stored
as their own serialization (XGBoost UBJ or JSON bytes), never pickled.
"""

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trading_core.brain.records import require_sha256
from trading_core.errors import ArtifactIntegrityError, ArtifactNotFoundError, DataValidationError
from trading_core.storage import StorageLocation, parse_location


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """Where stored bytes are: their sha256, their URL (``file://`` or ``s3://``) and size."""

    sha256: str
    uri: str
    size_bytes: int


class ArtifactStore:
    """Write-once, hash-verified files under ``root``; safe for concurrent threads and processes.

    ``root`` is the resolved :class:`~pathlib.Path` of a local store (as before) and the
    :class:`~trading_core.storage.StorageLocation` of a remote one; ``url`` is the full URL."""

    def __init__(
        self, root: str | Path | StorageLocation, *, endpoint_url: str | None = None
    ) -> None:
        location = parse_location(root, endpoint_url=endpoint_url)
        self.root: Path | StorageLocation = location
        if location.is_local:
            self.root = location.local_path().expanduser().resolve()
            location = StorageLocation(location.protocol, str(self.root))
        self.location = location
        self.url = location.url

    def location_for(self, sha256: str) -> StorageLocation:
        require_sha256(sha256)
        return self.location.join(sha256[:2], sha256[2:])

    def path_for(self, sha256: str) -> Path:
        """The local file of ``sha256`` (a remote store: ValueError; see :meth:`location_for`)."""
        return self.location_for(sha256).local_path()

    def exists(self, sha256: str) -> bool:
        return self.location_for(sha256).is_file()

    def put(self, data: bytes) -> ArtifactRef:
        """Store ``data`` (a no-op when the same bytes are already stored)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"artifact must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if not data:
            raise DataValidationError("artifact is empty (0 bytes); refusing to store it")
        digest = sha256_bytes(data)
        file = self.location_for(digest)
        if file.is_file():
            self._verified(file, digest)  # never overwrite; a damaged copy must be looked at
        elif file.is_local:
            _write_atomically(file.local_path(), data)
        else:
            # One PUT: the object appears whole or not at all. Two writers of the same hash
            # race harmlessly, as locally: both PUT identical bytes.
            file.put(data)
        return ArtifactRef(sha256=digest, uri=file.url, size_bytes=len(data))

    def load(self, sha256: str) -> bytes:
        """The stored bytes, re-hashed; raises if missing or altered."""
        return self._verified(self.location_for(sha256), sha256)

    @staticmethod
    def _verified(file: StorageLocation, sha256: str) -> bytes:
        where: Path | str = file.local_path() if file.is_local else file.url
        data = file.fetch()  # remote: one GET
        if data is None:
            raise ArtifactNotFoundError(f"artifact {sha256} not found at {where}")
        actual = sha256_bytes(data)
        if actual != sha256:
            raise ArtifactIntegrityError(
                f"artifact {where} hashes to {actual}, expected {sha256}: the file was altered"
            )
        return data


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        # Two writers of the same hash race harmlessly: both files hold identical bytes.
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
