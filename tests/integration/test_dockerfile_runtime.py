"""The images' runtime settings (issue 13): every runtime target has a numba cache its user owns,
every pip install is held to constraints.txt, the extras fit each role, and the settings are the
ones tests/e2e/test_readonly_install.py runs the installed package under."""

import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dockerfiles import (
    CONSTRAINTS,
    DOCKERFILE,
    DOCKERFILES,
    REPO_ROOT,
    dockerfile_stages,
    runtime_env,
    runtime_targets,
    stage_chain,
)


def _project_extras(path: Path, target: str) -> set[str]:
    """The extras of the project's wheel the target's pip installs name (``...whl)[cpu,ui]``)."""
    runs = " ".join(
        c.value[0] for c in stage_chain(dockerfile_stages(path), target) if c.cmd == "RUN"
    )
    return {
        extra for group in re.findall(r"\.whl\)\[([\w,]+)\]", runs) for extra in group.split(",")
    }


def test_dockerfiles_install_exactly_one_xgboost_flavour_and_the_ui_only_for_dagster() -> None:
    extras = {
        (path.name, target): _project_extras(path, target)
        for path in DOCKERFILES
        for target in runtime_targets(path)
    }
    assert extras == {
        ("Dockerfile", "dagster"): {"cpu", "ui"},
        ("Dockerfile", "dask"): {"cpu"},
        ("Dockerfile", "hamilton"): {"cpu"},
        ("gpu.Dockerfile", "worker"): {"gpu"},
    }


@pytest.mark.parametrize(
    ("path", "target"),
    [(path, target) for path in DOCKERFILES for target in runtime_targets(path)],
    ids=lambda value: value.name if isinstance(value, Path) else value,
)
def test_dockerfile_runtime_target_has_a_numba_cache_its_user_owns(path: Path, target: str) -> None:
    """numba's cache=True kernels die at import without a writable cache (issue 13): every
    target that runs as a user sets NUMBA_CACHE_DIR to a directory its RUN lines create and
    give to that user."""
    commands = stage_chain(dockerfile_stages(path), target)
    cache = runtime_env(path, target).get("NUMBA_CACHE_DIR")
    assert cache and cache.startswith("/"), (path.name, target)
    (user,) = {command.value[0] for command in commands if command.cmd == "USER"}
    runs = [command.value[0] for command in commands if command.cmd == "RUN"]
    created = [run for run in runs if re.search(rf"mkdir -p [^&]*{re.escape(cache)}(\s|$)", run)]
    owned = [
        run for run in runs
        if re.search(rf"chown (-R )?{user}(:{user})? [^&]*{re.escape(cache)}(\s|$)", run)
    ]  # fmt: skip
    assert created and owned, (path.name, target, runs)


def test_dockerfiles_runtime_settings_are_the_read_only_test_settings() -> None:
    """tests/e2e/test_readonly_install.py runs the installed package under the hamilton target's
    ENV (read with runtime_env); the other targets and the GPU image share those settings."""
    from tests.e2e import test_readonly_install

    used = vars(test_readonly_install)
    assert (used["DOCKERFILE"], used["IMAGE_TARGET"]) == (DOCKERFILE, "hamilton")
    assert used["runtime_env"] is runtime_env
    reference = runtime_env(DOCKERFILE, "hamilton")
    shared = ("NUMBA_CACHE_DIR", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")
    for path in DOCKERFILES:
        for target in runtime_targets(path):
            env = runtime_env(path, target)
            assert {k: env.get(k) for k in shared} == {k: reference[k] for k in shared}, target


def test_dockerfiles_every_pip_install_uses_the_constraints() -> None:
    """The lock file reaches every pip command of both images, from the path it is copied to."""
    for path in DOCKERFILES:
        stages = dockerfile_stages(path)
        for name in stages:
            commands = stage_chain(stages, name)
            copied = {
                command.value[-1].replace("./", f"{_workdir(commands)}/", 1)
                for command in commands
                if command.cmd == "COPY" and "constraints.txt" in command.value[:-1]
            }
            pips = [
                command.value[0] for command in commands
                if command.cmd == "RUN" and re.search(r"\bpip (install|wheel)\b", command.value[0])
            ]  # fmt: skip
            for run in pips:
                used = re.findall(r"(?:-c |--constraint[ =]|PIP_CONSTRAINT=)(\S+)", run)
                assert used, (path.name, name, run)
                assert all(
                    target in copied or f"{target.rsplit('/', 1)[0]}/" in copied for target in used
                ), (path.name, name, used, copied)


def _workdir(commands: list[Any]) -> str:
    workdirs = [command.value[0] for command in commands if command.cmd == "WORKDIR"]
    return workdirs[-1] if workdirs else ""


def test_constraints_pin_the_dask_version_dask_cuda_accepts() -> None:
    pins = dict(
        line.split("==", 1)
        for line in CONSTRAINTS.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert pins["dask"] == pins["distributed"] == "2026.7.1"
    assert pins["dask-cuda"].startswith("26.10.")
    assert pins["rapids-dask-dependency"].startswith("26.10.")
    assert pins["xgboost"] == pins["xgboost-cpu"]
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "CONSTRAINTS := constraints.txt" in makefile
    assert '-c $(CONSTRAINTS) -e ".[$(EXTRAS)]"' in makefile
