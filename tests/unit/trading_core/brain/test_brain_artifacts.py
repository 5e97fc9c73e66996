"""Content-addressed artifact store: layout, write-once, verification on every load."""

import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading_core.brain import ArtifactStore
from trading_core.errors import ArtifactIntegrityError, ArtifactNotFoundError, ConfigError

PAYLOAD = b"{U\x04trees[...]}" * 50


def test_put_lays_out_by_sha256_and_returns_file_uri(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    ref = store.put(PAYLOAD)
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    path = tmp_path.resolve() / digest[:2] / digest[2:]
    assert (ref.sha256, ref.size_bytes, ref.uri) == (digest, len(PAYLOAD), path.as_uri())
    assert path.read_bytes() == PAYLOAD
    assert store.load(digest) == PAYLOAD


def test_put_same_bytes_twice_keeps_one_file_untouched(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    first = store.put(PAYLOAD)
    path = store.path_for(first.sha256)
    mtime = path.stat().st_mtime_ns
    assert store.put(PAYLOAD) == first
    assert path.stat().st_mtime_ns == mtime
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


@pytest.mark.parametrize("offset", [0, len(PAYLOAD) // 2, len(PAYLOAD) - 1])
def test_load_flipped_byte_raises_integrity_error(tmp_path: Path, offset: int) -> None:
    store = ArtifactStore(tmp_path)
    ref = store.put(PAYLOAD)
    path = store.path_for(ref.sha256)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match=ref.sha256):
        store.load(ref.sha256)


def test_put_onto_damaged_copy_refuses_to_overwrite(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    ref = store.put(PAYLOAD)
    store.path_for(ref.sha256).write_bytes(b"damaged")
    with pytest.raises(ArtifactIntegrityError):
        store.put(PAYLOAD)
    assert store.path_for(ref.sha256).read_bytes() == b"damaged"


def test_load_missing_raises_not_found(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    ref = store.put(PAYLOAD)
    os.remove(store.path_for(ref.sha256))
    with pytest.raises(ArtifactNotFoundError, match=ref.sha256):
        store.load(ref.sha256)


@pytest.mark.parametrize("bad", ["abc", "G" * 64, "A" * 64])
def test_bad_sha256_raises_value_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        ArtifactStore(tmp_path).load(bad)


def test_put_empty_or_non_bytes_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        store.put(b"")
    with pytest.raises(TypeError, match="bytes"):
        store.put("text")  # type: ignore[arg-type]


def test_put_from_many_threads_same_bytes_one_file(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        refs = set(pool.map(lambda _: store.put(PAYLOAD), range(32)))
    assert len(refs) == 1
    (ref,) = refs
    assert store.load(ref.sha256) == PAYLOAD
    assert len(list(store.path_for(ref.sha256).parent.iterdir())) == 1


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=4096))
def test_put_load_roundtrip_any_bytes(tmp_path: Path, data: bytes) -> None:
    store = ArtifactStore(tmp_path)
    assert store.load(store.put(data).sha256) == data


def _remote_store() -> ArtifactStore:
    """A store on a non-local fsspec filesystem (memory://): the object-store code path that
    s3:// takes (S3 itself: tests/integration/trading_core/test_s3_storage.py)."""
    return ArtifactStore(f"memory://artifact-tests/{uuid.uuid4().hex}")


def test_remote_put_load_returns_store_url_and_verifies() -> None:
    store = _remote_store()
    ref = store.put(PAYLOAD)
    assert ref.uri == f"{store.url}/{ref.sha256[:2]}/{ref.sha256[2:]}"
    assert ref.uri.startswith("memory://artifact-tests/")
    assert store.exists(ref.sha256) and store.load(ref.sha256) == PAYLOAD
    assert store.put(PAYLOAD) == ref
    with pytest.raises(ValueError, match="not on the local filesystem"):
        store.path_for(ref.sha256)


def test_remote_flipped_byte_raises_integrity_error_and_is_not_overwritten() -> None:
    store = _remote_store()
    ref = store.put(PAYLOAD)
    file = store.location_for(ref.sha256)
    damaged = bytearray(PAYLOAD)
    damaged[len(damaged) // 2] ^= 0x01
    file.filesystem().pipe_file(file.path, bytes(damaged))
    with pytest.raises(ArtifactIntegrityError, match=ref.sha256):
        store.load(ref.sha256)
    with pytest.raises(ArtifactIntegrityError):
        store.put(PAYLOAD)
    assert file.filesystem().cat_file(file.path) == bytes(damaged)


def test_remote_missing_raises_not_found() -> None:
    store = _remote_store()
    ref = store.put(PAYLOAD)
    file = store.location_for(ref.sha256)
    file.filesystem().rm_file(file.path)
    assert not store.exists(ref.sha256)
    with pytest.raises(ArtifactNotFoundError, match=ref.sha256):
        store.load(ref.sha256)


def test_bad_scheme_raises_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"'gs://models/a'.*allowed schemes: file, s3, memory"):
        ArtifactStore("gs://models/a")
