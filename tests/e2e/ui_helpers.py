"""Helpers for browser tests of the Dagster UI: ``dagster dev`` on a free loopback port in its own
process group (stopped with SIGINT, then the whole group, and checked gone), GraphQL calls,
Debian's headless Chromium through Playwright, and screenshot checks.

Chromium is Debian's ``/usr/bin/chromium`` (scripts/install_system_deps.sh installs it); never
``playwright install`` (it downloads browsers, which this machine cannot). Missing Chromium is a
skip, except under ``CI=true`` where it is a failure.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts" / "dagster-ui"
WORKSPACE_QUERY = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""


class DagsterDevError(RuntimeError):
    """``dagster dev`` exited, failed to load the code location, or did not become ready."""


@dataclass(frozen=True)
class DagsterDev:
    """A running ``dagster dev``: the UI and GraphQL at ``base_url``, its output in ``log_path``."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST a query to /graphql; the response's ``data`` (GraphQL errors raise)."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1:<port>/graphql
            f"{self.base_url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            answer: dict[str, Any] = json.load(response)
        if answer.get("errors"):
            raise DagsterDevError(f"GraphQL errors for {query!r}: {answer['errors']}")
        data: dict[str, Any] = answer["data"]
        return data

    def dismiss_first_visit_popup(self) -> None:
        """The UI's first-visit (NUX) dialog would cover every screenshot (STACK_NOTES)."""
        self.graphql("mutation { setNuxSeen }")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def require_chromium() -> Path:
    """Debian's Chromium, or skip (fail under CI=true: CI must run the browser tests)."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} missing: run scripts/install_system_deps.sh as root"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def running_dagster_dev(
    module: str, env: Mapping[str, str], port: int, log_path: Path, *, ready_timeout_s: float = 120
) -> Iterator[DagsterDev]:
    """``dagster dev -m module`` on 127.0.0.1:``port``, ready once the code location has loaded.

    It runs in a new session (its own process group): SIGINT to ``dagster dev`` shuts down its
    webserver, daemon and code server; whatever is left of the group is then terminated, and
    the context fails if anything of it survives.
    """
    command = [
        str(Path(sys.executable).parent / "dagster"), "dev", "-m", module,
        "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    dev = DagsterDev(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_loaded(dev, ready_timeout_s)
        yield dev
    finally:
        survivors = stop_process_group(process)
    if survivors:
        raise DagsterDevError(f"processes of dagster dev still running: {survivors}")


def stop_process_group(process: subprocess.Popen[bytes], timeout_s: float = 30) -> list[int]:
    """SIGINT the leader, then SIGTERM and SIGKILL the rest of its group; pids still alive."""
    group = process.pid  # leader of its own session: pgid == pid
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):  # then the group is terminated below
            process.wait(timeout=timeout_s)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not group_members(group):
            break
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        _wait_until(lambda: not group_members(group), 10)
    if process.poll() is None:
        process.wait(timeout=5)
    return group_members(group)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _wait_until(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return bool(condition())


def _wait_loaded(dev: DagsterDev, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if dev.process.poll() is not None:
            raise DagsterDevError(
                f"dagster dev exited ({dev.process.returncode}): {dev.log_tail()}"
            )
        try:
            workspace = dev.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
            continue
        entries = workspace.get("locationEntries") or []
        loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
        errors = [e for e in loaded if e["locationOrLoadError"]["__typename"] == "PythonError"]
        if errors:
            raise DagsterDevError(f"code location failed to load: {errors}")
        if entries and len(loaded) == len(entries):
            return
        time.sleep(0.5)
    raise DagsterDevError(f"dagster dev not ready after {timeout_s} s: {dev.log_tail()}")


def save_screenshot(page: Any, name: str, *directories: Path) -> list[Path]:
    """A full-viewport PNG of ``page`` as ``<name>.png`` in each directory (created)."""
    png: bytes = page.screenshot(type="png")
    paths = []
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.png"
        path.write_bytes(png)
        paths.append(path)
    return paths


def png_problems(path: Path, *, min_size: tuple[int, int], min_colours: int = 64) -> list[str]:
    """Why ``path`` is not a real screenshot (empty list if it is one): not a PNG, smaller than
    ``min_size``, too few colours or one colour covering nearly everything (a blank page)."""
    with Image.open(path) as image:
        if image.format != "PNG":
            return [f"{path.name}: format {image.format}, expected PNG"]
        width, height = image.size
        problems = []
        if width < min_size[0] or height < min_size[1]:
            problems.append(f"{path.name}: {width}x{height} smaller than {min_size}")
        colours = image.convert("RGB").getcolors(maxcolors=width * height) or []
        if len(colours) < min_colours:
            problems.append(f"{path.name}: only {len(colours)} colours (< {min_colours})")
        dominant = max((count for count, _ in colours), default=0) / (width * height)
        if dominant > 0.97:
            problems.append(f"{path.name}: one colour covers {dominant:.1%} of the image")
        return problems
