"""A real external Dask cluster for tests and benchmarks: ``dask scheduler`` and ``dask worker``
started as separate processes on loopback, the way docs/deploy.md deploys them.

Each worker runs in its own empty directory (it must find nothing there: the engine config names
its store and artifacts by absolute path) with numba's cache in a private directory, seeded from
the source tree's cache so the workers do not spend ~30 s each compiling the kernels again.
Usable without pytest (bench/training_dag.py starts one too).
"""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from distributed import Client

ROOT = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")


class DaskServersError(RuntimeError):
    """The scheduler or its workers did not come up (the message carries their log tails)."""


@dataclass
class DaskServers:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    logs: Path
    worker_dirs: list[Path] = field(default_factory=list)

    def client(self, timeout: str = "30s") -> Client:
        return Client(self.address, timeout=timeout)

    def log_tails(self, chars: int = 1500) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}"
            for path in sorted(self.logs.glob("*.log"))
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed_numba_cache(cache_dir: Path, package: Path = ROOT / "trading_core") -> int:
    """Copy the in-tree numba cache (``__pycache__/*.nbi|nbc``) to where numba looks for it under
    ``NUMBA_CACHE_DIR`` (``<dir name>_<sha1 of the dir path>``, numba's user-provided locator);
    the index carries the source file's stamp, so a stale copy is just recompiled."""
    copied = 0
    for pycache in package.rglob("__pycache__"):
        source_dir = str(pycache.parent.resolve())
        digest = hashlib.sha1(source_dir.encode()).hexdigest()  # noqa: S324 - numba's own naming
        target = cache_dir / f"{pycache.parent.name}_{digest}"
        for cached in [*pycache.glob("*.nbi"), *pycache.glob("*.nbc")]:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(cached, target / cached.name)
            copied += 1
    return copied


def _start(
    args: list[str], *, cwd: Path, env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        # own session: teardown can signal the CLI and the nanny's worker process together
        return subprocess.Popen(
            [str(DASK), *args],
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(procs: list[subprocess.Popen[bytes]], grace_s: float = 10.0) -> None:
    """SIGTERM every process group at once (each closes in a few seconds), then SIGKILL what
    is left: a nanny's worker process may outlive its CLI parent."""
    for proc in procs:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)


@contextmanager
def dask_servers(
    base: Path,
    *,
    n_workers: int = 2,
    nthreads: int = 1,
    worker_args: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    timeout_s: float = 90.0,
) -> Iterator[DaskServers]:
    """A scheduler on 127.0.0.1:<free port> and ``n_workers`` ``dask worker`` processes, all
    stopped (terminate, then kill) on exit. Raises DaskServersError when they cannot start
    within ``timeout_s``."""
    logs = base / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    numba_cache = base / "numba-cache"
    seed_numba_cache(numba_cache)
    run_env = {
        **(env if env is not None else os.environ),
        "NUMBA_CACHE_DIR": str(numba_cache),
        # the project is installed in the venv; ROOT on the path keeps a plain checkout working
        "PYTHONPATH": str(ROOT),
        "POLARS_MAX_THREADS": str(nthreads),
    }
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler_dir = base / "scheduler"
    scheduler_dir.mkdir(exist_ok=True)
    loopback = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
    scheduler = _start(
        ["scheduler", "--port", str(port), *loopback],
        cwd=scheduler_dir,
        env=run_env,
        log=logs / "scheduler.log",
    )
    servers = DaskServers(address, scheduler, [], logs)
    try:
        for index in range(n_workers):
            workdir = base / f"worker-{index}"
            workdir.mkdir()
            servers.worker_dirs.append(workdir)
            servers.workers.append(
                _start(
                    ["worker", address, "--nworkers", "1", "--nthreads", str(nthreads),
                     "--name", f"ext-{index}", *loopback, *worker_args],
                    cwd=workdir,
                    env=run_env,
                    log=logs / f"worker-{index}.log",
                )
            )  # fmt: skip
        _wait_for_workers(servers, n_workers, timeout_s)
        yield servers
    finally:
        _stop(servers.workers)
        _stop([scheduler])


def _wait_for_workers(servers: DaskServers, n_workers: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    try:
        with Client(servers.address, timeout=f"{timeout_s}s") as client:
            while len(client.scheduler_info(n_workers=-1)["workers"]) < n_workers:
                dead = [
                    p.args for p in [servers.scheduler, *servers.workers] if p.poll() is not None
                ]
                if dead or time.monotonic() > deadline:
                    raise DaskServersError(
                        f"{n_workers} dask workers did not connect to {servers.address} within "
                        f"{timeout_s:.0f} s (exited: {dead})\n{servers.log_tails()}"
                    )
                time.sleep(0.2)
    except OSError as exc:  # the scheduler never accepted a connection
        raise DaskServersError(
            f"dask scheduler at {servers.address} unreachable: {exc}\n{servers.log_tails()}"
        ) from exc
