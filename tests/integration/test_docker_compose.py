"""docker/: the compose file validates with the Compose CLI (no Docker daemon needed), every file
it and the Dockerfiles reference exists, ports and names agree across files, and the Dagster
instance file works against a real PostgreSQL.

Images are not built here (no daemon, no registry): the Dockerfiles are parsed with BuildKit's
own parser (the `dockerfile` package) and their COPY sources checked instead."""

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yml"
EXAMPLE_ENV = DOCKER_DIR / "example.env"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install_system_deps.sh"
EXPECTED_SERVICES = {
    "postgres",
    "brain-migrate",
    "dagster-code",
    "dagster-webserver",
    "dagster-daemon",
    "dask-scheduler",
    "dask-worker",
    "dask-cuda-worker",
    "hamilton",
    "prometheus",
    "grafana",
}
ONE_SHOT_SERVICES = {"brain-migrate"}
# services running the project's own code, configured through ENGINE__... variables
ENGINE_SERVICES = EXPECTED_SERVICES - {"postgres", "dask-scheduler", "prometheus", "grafana"}
SECRETS = {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
DOCKERFILE_INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip
PG_ADMIN_URL = make_url(
    os.environ.get("DAGSTER_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
)


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _require_compose_cli() -> list[str]:
    cli = _compose_cli()
    if cli is None and os.geteuid() == 0:
        subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, timeout=600)
        cli = _compose_cli()
    if cli is not None:
        return cli
    message = f"neither `docker compose` nor docker-compose: run {INSTALL_SCRIPT} as root"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*_require_compose_cli(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args]
    # only the env file may supply values: drop any from the calling shell
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        command, cwd=DOCKER_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The compose file as the Compose CLI resolves it, with example.env and the gpu profile."""
    result = _compose(EXAMPLE_ENV, "--profile", "gpu", "config")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The compose file as written (PyYAML resolves the anchors and merge keys)."""
    config: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return config


def _example_env() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in EXAMPLE_ENV.read_text().splitlines()
        if line and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def _dockerfiles(raw: dict[str, Any]) -> set[Path]:
    return {
        (DOCKER_DIR / service["build"]["context"] / service["build"]["dockerfile"]).resolve()
        for service in raw["services"].values()
        if "build" in service
    }


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_compose_config_validates_all_services(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == EXPECTED_SERVICES


def test_compose_config_missing_secret_fails(tmp_path: Path) -> None:
    """The CLI check is real: without the secrets it refuses, naming the variable."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = _compose(empty, "config")
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_compose_gpu_worker_only_in_gpu_profile(resolved: dict[str, Any]) -> None:
    gpu = resolved["services"]["dask-cuda-worker"]
    assert gpu["profiles"] == ["gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert [name for name, s in resolved["services"].items() if s.get("profiles")] == [
        "dask-cuda-worker"
    ]


def test_compose_long_running_services_have_healthchecks(resolved: dict[str, Any]) -> None:
    missing = [
        name
        for name, service in resolved["services"].items()
        if name not in ONE_SHOT_SERVICES
        and (
            service.get("healthcheck", {}).get("disable")
            or not service.get("healthcheck", {}).get("test")
        )
    ]
    assert missing == []


def test_compose_one_shot_services_gate_their_dependents(resolved: dict[str, Any]) -> None:
    for name in ONE_SHOT_SERVICES:
        assert resolved["services"][name]["restart"] == "no"
    waits = {
        dependent: service["depends_on"]["brain-migrate"]["condition"]
        for dependent, service in resolved["services"].items()
        if "brain-migrate" in service.get("depends_on", {})
    }
    assert waits == {
        "dagster-code": "service_completed_successfully",
        "hamilton": "service_completed_successfully",
    }


@pytest.mark.parametrize("service", sorted(ENGINE_SERVICES))
def test_compose_engine_overrides_load_with_real_config(
    resolved: dict[str, Any], service: str
) -> None:
    """Every ENGINE__... variable a service gets names a real key with a valid value."""
    from trading_core.config.loader import default_config_paths, load_config

    environment = resolved["services"][service].get("environment", {})
    overrides = {
        key: str(value) for key, value in environment.items() if key.startswith("ENGINE__")
    }
    config = load_config(default_config_paths(REPO_ROOT / "config"), env=overrides)
    if "ENGINE__HAMILTON__MODE" in overrides:
        assert config.hamilton.mode == "paper"
    if "ENGINE__OBSERVABILITY__PROMETHEUS__HOST" in overrides:
        assert (config.observability.prometheus.host, config.observability.prometheus.port) == (
            "0.0.0.0",  # noqa: S104 - inside its container Hamilton must listen on every interface
            9108,
        )


def test_compose_published_ports_bind_loopback(raw: dict[str, Any]) -> None:
    ports = [port for service in raw["services"].values() for port in service.get("ports", [])]
    assert ports
    assert [port for port in ports if not str(port).startswith("127.0.0.1:")] == []


def test_compose_bind_mounts_exist(raw: dict[str, Any]) -> None:
    sources = [
        volume.split(":", 1)[0]
        for service in raw["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith(".")
    ]
    assert len(sources) >= 4
    assert [source for source in sources if not (DOCKER_DIR / source).exists()] == []


def test_compose_named_volumes_declared(raw: dict[str, Any]) -> None:
    used = {
        volume.split(":", 1)[0]
        for service in raw["services"].values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == set(raw["volumes"])


def test_compose_builds_reference_existing_dockerfiles_and_targets(raw: dict[str, Any]) -> None:
    dockerfile = pytest.importorskip("dockerfile", reason="pip install 'dockerfile>=3.3,<4'")
    for name, service in raw["services"].items():
        if "build" not in service:
            continue
        build = service["build"]
        context = (DOCKER_DIR / build["context"]).resolve()
        assert context == REPO_ROOT, name
        path = context / build["dockerfile"]
        stages = {
            command.value[2]
            for command in dockerfile.parse_file(str(path))
            if command.cmd == "FROM" and len(command.value) == 3
        }
        assert build.get("target") is None or build["target"] in stages, (name, stages)


def test_dockerfiles_parse_and_copy_only_existing_unignored_sources(raw: dict[str, Any]) -> None:
    dockerfile = pytest.importorskip("dockerfile", reason="pip install 'dockerfile>=3.3,<4'")
    paths = _dockerfiles(raw)
    assert {path.name for path in paths} == {"Dockerfile", "gpu.Dockerfile"}
    for path in paths:
        commands = dockerfile.parse_file(str(path))
        assert {command.cmd for command in commands} <= DOCKERFILE_INSTRUCTIONS, path.name
        ignore = Path(f"{path}.dockerignore").read_text().splitlines()
        allowed = [line[1:] for line in ignore if line.startswith("!")]
        sources = [
            source
            for command in commands
            if command.cmd == "COPY"
            and not any(flag.startswith("--from") for flag in command.flags)
            for source in command.value[:-1]
        ]
        assert sources, path.name
        for source in sources:
            assert (REPO_ROOT / source).exists(), (path.name, source)
            assert any(source == a or source.startswith(a + "/") for a in allowed), (
                path.name,
                source,
            )


def test_compose_variables_documented_in_example_env() -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))
    documented = set(_example_env())
    # Compose reads COMPOSE_* itself: they appear in no ${...}
    assert used == {name for name in documented if not name.startswith("COMPOSE_")}
    assert documented - used == {"COMPOSE_PROJECT_NAME"}


def test_example_env_secrets_are_placeholders() -> None:
    example = _example_env()
    assert {key: example[key] for key in SECRETS} == dict.fromkeys(SECRETS, "change-me")


@pytest.mark.parametrize(
    ("path", "ignored"),
    [("docker/.env", True), ("docker/production.env", True), ("docker/example.env", False)],
)
def test_env_files_git_ignored_except_example(path: str, ignored: bool) -> None:
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO_ROOT, check=False)
    assert (result.returncode == 0) is ignored


def test_prometheus_targets_match_service_ports(raw: dict[str, Any]) -> None:
    prometheus = yaml.safe_load((DOCKER_DIR / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    services = raw["services"]
    hamilton_port = services["hamilton"]["environment"]["ENGINE__OBSERVABILITY__PROMETHEUS__PORT"]
    scheduler_port = _flag(services["dask-scheduler"]["command"], "--dashboard-address").lstrip(":")
    worker_port = _flag(services["dask-worker"]["command"], "--dashboard-address").lstrip(":")
    assert jobs["hamilton"]["static_configs"][0]["targets"] == [f"hamilton:{hamilton_port}"]
    assert jobs["dask-scheduler"]["static_configs"][0]["targets"] == [
        f"dask-scheduler:{scheduler_port}"
    ]
    worker_sd = jobs["dask-worker"]["dns_sd_configs"][0]
    assert (worker_sd["names"], str(worker_sd["port"])) == (["dask-worker"], worker_port)


def test_grafana_mounts_match_provisioning(raw: dict[str, Any]) -> None:
    grafana = raw["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"] if volume.startswith("."))
    provider = yaml.safe_load(
        (DOCKER_DIR / "grafana/provisioning/dashboards/provider.yml").read_text()
    )
    datasource = yaml.safe_load(
        (DOCKER_DIR / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert provider["providers"][0]["options"]["path"] == mounts["./grafana/dashboards"]
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (
        DOCKER_DIR / "grafana/dashboards" / home.relative_to(mounts["./grafana/dashboards"])
    ).is_file()
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in raw["services"]["prometheus"]["ports"]


def test_workspace_points_at_code_server(raw: dict[str, Any]) -> None:
    from dagster._core.workspace.config_schema import process_workspace_config

    workspace = yaml.safe_load((DOCKER_DIR / "dagster" / "workspace.yaml").read_text())
    assert process_workspace_config(workspace).success
    (entry,) = workspace["load_from"]
    code = raw["services"]["dagster-code"]["command"]
    assert entry["grpc_server"] == {
        "host": "dagster-code",
        "port": int(_flag(code, "--port")),
        "location_name": _flag(code, "--location-name"),
    }
    assert _flag(code, "--module-name") == "engine_assets.definitions"
    for name in ("dagster-webserver", "dagster-daemon"):
        assert (
            _flag(raw["services"][name]["command"], "--workspace")
            == "/opt/dagster/dagster_home/workspace.yaml"
        )


def test_dagster_env_names_match_dagster_yaml(raw: dict[str, Any]) -> None:
    instance = (DOCKER_DIR / "dagster" / "dagster.yaml").read_text()
    read = set(re.findall(r"\{env: (\w+)\}", instance))
    assert read == {"DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"}
    for name in ("dagster-code", "dagster-webserver", "dagster-daemon"):
        assert read <= set(raw["services"][name]["environment"]), name


def test_postgres_init_creates_the_databases_services_use(raw: dict[str, Any]) -> None:
    created = set(
        re.findall(
            r"CREATE DATABASE (\w+);", (DOCKER_DIR / "postgres/init/01-databases.sql").read_text()
        )
    )
    dsn = raw["services"]["hamilton"]["environment"][
        "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN"
    ]
    used = {raw["services"]["dagster-code"]["environment"]["DAGSTER_PG_DB"], dsn.rsplit("/", 1)[1]}
    assert created == used == {"dagster", "brain"}


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped afterwards."""
    name = f"dagster_compose_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL unreachable: {error}")
        pytest.skip(f"PostgreSQL unreachable: {error}")
    try:
        yield name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_dagster_yaml_opens_postgres_instance(
    scratch_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compose stack's instance file, with the env names compose sets, opens a real
    PostgreSQL-backed Dagster instance (Dagster creates its tables)."""
    from dagster import DagsterInstance

    shutil.copy(DOCKER_DIR / "dagster" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_HOST", PG_ADMIN_URL.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_USER", PG_ADMIN_URL.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", PG_ADMIN_URL.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", scratch_database)
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        storages = {type(instance.run_storage).__name__, type(instance.event_log_storage).__name__}
        assert storages == {"PostgresRunStorage", "PostgresEventLogStorage"}
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_run_records(limit=1) == []
    finally:
        instance.dispose()
