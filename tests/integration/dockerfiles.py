"""docker/Dockerfile and docker/gpu.Dockerfile read as BuildKit parses them (the `dockerfile`
package): stages, the instructions a target runs, and the ENV its containers start with. Shared by
the Dockerfile checks and tests/e2e/test_readonly_install.py, which runs the installed package
under exactly the settings an image sets."""

from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
DOCKERFILES = (DOCKERFILE, DOCKER_DIR / "gpu.Dockerfile")
CONSTRAINTS = REPO_ROOT / "constraints.txt"


def dockerfile_stages(path: Path) -> dict[str, list[Any]]:
    """Instructions per build stage (``FROM x AS name``), in order, parsed by BuildKit's parser."""
    dockerfile = pytest.importorskip("dockerfile", reason="pip install 'dockerfile>=3.3,<4'")
    stages: dict[str, list[Any]] = {}
    current: list[Any] = []
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            current = [command]
            stages[command.value[2] if len(command.value) == 3 else f"#{len(stages)}"] = current
        else:
            current.append(command)
    return stages


def stage_chain(stages: dict[str, list[Any]], target: str) -> list[Any]:
    """The instructions a target runs, its parent stages' first (``FROM base AS hamilton``)."""
    commands = stages[target]
    parent = commands[0].value[0]
    return [*stage_chain(stages, parent), *commands[1:]] if parent in stages else commands[1:]


def runtime_env(path: Path, target: str) -> dict[str, str]:
    """The ENV a container of ``target`` starts with (the read-only install test runs the
    installed package under exactly these settings)."""
    env: dict[str, str] = {}
    for command in stage_chain(dockerfile_stages(path), target):
        if command.cmd == "ENV":
            values = list(command.value)
            env.update(zip(values[::2], values[1::2], strict=True))
    return env


def runtime_targets(path: Path) -> list[str]:
    """Stages that end with a USER and a CMD: the ones a container runs."""
    return [
        name
        for name, commands in dockerfile_stages(path).items()
        if {"USER", "CMD"} <= {command.cmd for command in commands}
    ]
