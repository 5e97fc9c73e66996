"""The images' runtime conditions without a container engine: the project installed from its
wheel into a root-owned, read-only environment and run by an unprivileged user whose HOME is
read-only (the ``hamilton``/``dask`` images: ``USER engine``, root-owned site-packages,
HOME=/app owned by root). numba's ``cache=True`` kernels then have nowhere to write unless
``NUMBA_CACHE_DIR`` names a writable directory.

How the environment is built, and why that is honest:

* the wheel is built from a copy of the sources (``pip wheel --no-deps --no-build-isolation``,
  offline, with .venv's setuptools) and installed with ``--no-deps`` into a fresh venv made by
  Debian's ``/usr/bin/python3.11`` (the pyenv interpreter behind .venv lives under /root, which
  the unprivileged user cannot enter; a python:3.11 image is a different build of 3.11 too);
* the third-party packages come from .venv: one ``.pth`` line appends .venv's site-packages to
  ``sys.path``. A plain path line does not run the ``.pth`` files of that directory, so .venv's
  editable hook for this project stays inert, and the fresh venv's own site-packages comes
  first: ``trading_core`` and the ``coin-engine`` entry points resolve to the wheel's copy (the
  tests assert the path). Installing the whole stack again would cost ~40 s and need PyPI;
* the venv is chowned to root and made read-only (``chmod -R a-w``); ``/app`` is a root-owned,
  read-only directory holding ``config/`` and a ``data/`` owned by the user, as in the image;
* the commands run through ``setpriv`` as nobody (65534) with a clean environment: PATH, HOME and
  the ENV of the Dockerfile's target (read from docker/Dockerfile, so the test and the image use
  one set of settings), the image's absolute paths (NUMBA_CACHE_DIR) moved under the scratch
  root and created with the owner the Dockerfile's RUN gives them.

The release the replay trades is trained beforehand as root with the Hamilton test helpers.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dockerfiles import DOCKERFILE, runtime_env
from tests.integration.hamilton_fixtures import (
    full_history_symbols,
    hamilton_config,
    hamilton_config_data,
    make_release,
    market,
)
from trading_core.brain import BrainLibrary

REPO_ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3.11")
IMAGE_TARGET = "hamilton"  # the image whose ENV the commands run under
NOBODY = 65534
SOURCES = (
    "pyproject.toml",
    "README.md",
    "trading_core",
    "engine_assets",
    "hamilton_exec",
    "coin_engine",
)
LOCATOR_ERROR = "no locator available for file"
TIMEOUT_S = 240

DASK_TASK = """
import json
import sys

from distributed import Client, LocalCluster


def rolling_mean_task(n: int) -> tuple[str, list[float]]:
    # imported on the worker: the client never imports the project
    import numpy as np

    from trading_core.features import rolling

    out = np.empty(n)
    rolling.rolling_mean(np.arange(n, dtype=np.float64), 4, 0, out)
    return rolling.__file__, out.tolist()


if __name__ == "__main__":
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        path, out = client.submit(rolling_mean_task, 8).result(timeout=180)
    print(json.dumps({"file": path, "out": out}))
"""


@dataclass(frozen=True)
class Installed:
    root: Path  # stands for the image's /
    venv: Path
    app: Path  # the image's WORKDIR and the user's HOME
    image_env: dict[str, str]  # the hamilton target's ENV, paths under root
    engine_env: dict[str, str]  # ENGINE__ overrides: the small synthetic market and the release
    symbols: list[str]

    def run(
        self, *args: str, numba_cache: bool = True, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.app),
            "LANG": "C.UTF-8",
            **self.image_env,
            **self.engine_env,
            **(extra or {}),
        }
        if not numba_cache:
            env.pop("NUMBA_CACHE_DIR", None)
        setpriv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
        return subprocess.run(
            [*setpriv, *args], cwd=self.app, env=env, capture_output=True, text=True,
            timeout=TIMEOUT_S, check=False,
        )  # fmt: skip


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _overrides(data: dict[str, Any], prefix: str = "ENGINE") -> dict[str, str]:
    """Nested config data as the ENGINE__SECTION__KEY variables containers are configured by
    (values are read back as YAML, so a flow-style dump round-trips lists and numbers)."""
    env: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}__{key.upper()}"
        if isinstance(value, dict):
            env.update(_overrides(value, name))
        else:
            env[name] = value if isinstance(value, str) else json.dumps(value)
    return env


def _build_wheel(scratch: Path) -> Path:
    """The project's wheel, built from a copy of the sources (nothing is written in the repo)."""
    source = scratch / "src"
    for name in SOURCES:
        origin = REPO_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy(origin, source / name)
    wheels = scratch / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(source)],
        check=True, capture_output=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    shutil.rmtree(source)
    (wheel,) = wheels.glob("coin_engine-*.whl")
    return wheel


def _make_venv(venv: Path, wheel: Path) -> None:
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    (site,) = (venv / "lib").glob("python3.*/site-packages")
    # a bare path line: .venv's own .pth files (the editable hook of this project) do not run
    third_party = sysconfig.get_path("purelib")
    (site / "zz_project_venv_packages.pth").write_text(third_party + "\n")
    subprocess.run(["chown", "-R", "0:0", str(venv)], check=True)
    subprocess.run(["chmod", "-R", "a-w", str(venv)], check=True)


def _train_release(app: Path) -> tuple[dict[str, str], list[str]]:
    """A real release (XGBoost models in a SQLite Brain Library) under app/data, as root."""
    data_dir = app / "data"
    config = hamilton_config(data_dir)
    source = market(config)
    symbols = full_history_symbols(source)[:2]
    library = BrainLibrary.from_config(config)
    try:
        library.migrate()
        make_release(library, config, source, symbols, train_end=source.end - timedelta(days=3))
    finally:
        library.close()
    return _overrides(hamilton_config_data(data_dir)), symbols


def _chown_nobody(path: Path) -> None:
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(path)], check=True)


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        _skip_or_fail("needs root and setpriv to run commands as an unprivileged user")
    if not SYSTEM_PYTHON.exists():
        _skip_or_fail(f"{SYSTEM_PYTHON} missing: the unprivileged user needs a reachable Python")
    # pytest's tmp_path lives under a 0700 directory the unprivileged user cannot enter
    root = Path(tempfile.mkdtemp(prefix="coin-engine-ro-"))
    try:
        root.chmod(0o755)
        venv, app = root / "opt" / "venv", root / "app"
        _make_venv(venv, _build_wheel(root))
        shutil.copytree(REPO_ROOT / "config", app / "config")
        (app / "data").mkdir()
        engine_env, symbols = _train_release(app)
        _chown_nobody(app / "data")
        subprocess.run(["chmod", "-R", "a-w", str(app / "config")], check=True)
        app.chmod(0o555)
        image_env = runtime_env(DOCKERFILE, IMAGE_TARGET)
        # the image's writable absolute paths, created as its RUN lines do (owned by the user)
        for name in {"NUMBA_CACHE_DIR"} & set(image_env):
            moved = root / image_env[name].lstrip("/")
            moved.mkdir(parents=True)
            _chown_nobody(moved)
            image_env[name] = str(moved)
        (root / "dask_task.py").write_text(DASK_TASK)
        yield Installed(root, venv, app, image_env, engine_env, symbols)
    finally:
        shutil.rmtree(root)


@pytest.mark.e2e
@pytest.mark.slow
def test_readonly_install_without_numba_cache_dir_fails_like_the_image(
    installed: Installed,
) -> None:
    """The condition is reproduced: the image's crash (issue 13) in Hamilton and on a worker.
    ``brain migrate`` crashed too until issue 15: the Brain Library commands no longer load
    numba at all, so it now succeeds without the setting."""
    migrate = installed.run("coin-engine", "brain", "migrate", numba_cache=False)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    replay = installed.run(
        "coin-engine", "hamilton", "run", "--replay", "--max-bars", "3", "--speed", "0",
        "--symbols", ",".join(installed.symbols), "--metrics-port", "0", "--health-port", "0",
        numba_cache=False,
    )  # fmt: skip
    assert replay.returncode != 0
    assert "cannot cache function" in replay.stderr, replay.stderr[-3000:]
    assert LOCATOR_ERROR in replay.stderr and str(installed.venv) in replay.stderr
    task = installed.run("python", str(installed.root / "dask_task.py"), numba_cache=False)
    assert task.returncode == 1
    assert "cannot cache function" in task.stderr and LOCATOR_ERROR in task.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_readonly_install_with_image_settings_migrates_replays_and_runs_a_dask_task(
    installed: Installed,
) -> None:
    """With the Dockerfile's ENV the same install migrates, replays and computes on a worker;
    the three commands share one NUMBA_CACHE_DIR, as the processes of one container do."""
    fresh_dsn = f"sqlite:///{installed.app / 'data' / 'migrated.db'}"
    migrate = installed.run(
        "coin-engine", "brain", "migrate",
        extra={"ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": fresh_dsn},
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    assert "schema at revision" in migrate.stdout

    replay = installed.run(
        "coin-engine", "hamilton", "run", "--replay", "--max-bars", "3", "--speed", "0",
        "--symbols", ",".join(installed.symbols), "--metrics-port", "0", "--health-port", "0",
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr[-3000:]
    state_file = installed.app / "data" / "state" / "hamilton_state.json"
    state = json.loads(state_file.read_text())
    assert set(state["memories"]) == set(installed.symbols)

    task = installed.run("python", str(installed.root / "dask_task.py"))
    assert task.returncode == 0, task.stderr[-3000:]
    result = json.loads(task.stdout.splitlines()[-1])
    assert result["file"].startswith(str(installed.venv))
    assert result["out"][3:] == [t - 1.5 for t in range(3, 8)]

    cache = Path(installed.image_env["NUMBA_CACHE_DIR"])  # the replay above needed it
    assert list(cache.rglob("*.nbi")), "numba wrote no index into NUMBA_CACHE_DIR"
    assert not list(installed.venv.rglob("*.nbi")), "numba wrote into the read-only install"
