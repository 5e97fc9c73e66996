"""Content-addressed artifact store: bytes live at ``root/ab/cdef...`` named by their sha256.

A file is written once (temp file in the same directory, fsync, ``os.replace``) and never
overwritten, so a reader sees either nothing or the complete bytes. Every load re-hashes:
a flipped byte raises :class:`ArtifactIntegrityError`, a missing file
:class:`ArtifactNotFoundError`. Models are stored as their own serialization (XGBoost UBJ or
JSON bytes), never pickled.
"""

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trading_core.brain.records import require_sha256
from trading_core.errors import ArtifactIntegrityError, ArtifactNotFoundError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """Where stored bytes are: their sha256, a ``file://`` URI and their size."""

    sha256: str
    uri: str
    size_bytes: int


class ArtifactStore:
    """Write-once, hash-verified files under ``root``; safe for concurrent threads and processes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def path_for(self, sha256: str) -> Path:
        require_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:]

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def put(self, data: bytes) -> ArtifactRef:
        """Store ``data`` (a no-op when the same bytes are already stored)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"artifact must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if not data:
            raise ValueError("artifact is empty (0 bytes); refusing to store it")
        digest = sha256_bytes(data)
        path = self.path_for(digest)
        if path.is_file():
            self._verified(path, digest)  # never overwrite; a damaged copy must be looked at
        else:
            _write_atomically(path, data)
        return ArtifactRef(sha256=digest, uri=path.as_uri(), size_bytes=len(data))

    def load(self, sha256: str) -> bytes:
        """The stored bytes, re-hashed; raises if missing or altered."""
        path = self.path_for(sha256)
        if not path.is_file():
            raise ArtifactNotFoundError(f"artifact {sha256} not found at {path}")
        return self._verified(path, sha256)

    @staticmethod
    def _verified(path: Path, sha256: str) -> bytes:
        data = path.read_bytes()
        actual = sha256_bytes(data)
        if actual != sha256:
            raise ArtifactIntegrityError(
                f"artifact {path} hashes to {actual}, expected {sha256}: the file was altered"
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
