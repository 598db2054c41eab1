"""docker-compose.yml and docker/: no Docker engine here, so the structure is checked in
Python, and with `docker compose config` / `docker-compose config` where a client exists."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from tests.tools import requires_tool

ROOT = Path(settings.BASE_DIR)
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD", "METRICS_BEARER_TOKEN", "GRAFANA_ADMIN_PASSWORD")
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)")  # ${NAME:-x}, ${NAME:?x}; not $${NAME}
SECRET_VALUES = {name: f"test-{name.lower()}" for name in SECRETS}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # resolves the x-app anchors and << merges


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_every_service_the_issue_names_with_health_checks(services):
    expected = {"db", "redis", "migrate", "web", "worker", "beat", "prometheus", "grafana", "seed"}
    assert set(services) == expected
    for name in expected - {"migrate", "seed"}:
        assert services[name]["healthcheck"]["test"], name


def test_depends_on_targets_exist_and_migrations_run_once_first(services):
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            assert dependency != name
            assert condition["condition"] in {
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            }
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--no-input"]
    for name in ("web", "worker", "beat", "seed"):
        needs = services[name]["depends_on"]
        assert needs["migrate"] == {"condition": "service_completed_successfully"}, name
        assert needs["db"] == {"condition": "service_healthy"}, name


def test_build_contexts_dockerfiles_and_bind_mounts_exist(services):
    for name, service in services.items():
        if "build" in service:
            context = ROOT / service["build"]["context"]
            assert context.is_dir(), name
            assert (context / service["build"]["dockerfile"]).is_file(), name
        else:
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", service["image"]), name  # pinned tag
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), (name, source)


def test_ports_are_unique_and_match_what_listens(services, compose):
    published = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            *_, host, container = port.rsplit(":", 2)
            published[name] = (host, int(container))
    assert set(published) == {"web", "prometheus", "grafana"}
    assert len({host for host, _ in published.values()}) == 3
    assert published["web"][1] == 8000
    assert published["prometheus"][1] == 9090
    assert published["grafana"][1] == 3000
    # gunicorn listens where compose publishes and where Prometheus scrapes.
    gunicorn = (ROOT / "docker/gunicorn.conf.py").read_text()
    assert '"GUNICORN_BIND", "0.0.0.0:8000"' in gunicorn
    prometheus = yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["web:8000"]


def test_prometheus_gets_the_token_from_env_into_its_credentials_file(services):
    prometheus = yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text())
    token_file = prometheus["scrape_configs"][0]["authorization"]["credentials_file"]
    service = services["prometheus"]
    assert str(Path(token_file).parent) in service["tmpfs"]
    assert f'"$${{METRICS_BEARER_TOKEN}}" > {token_file}' in service["entrypoint"][-1]
    assert service["environment"]["METRICS_BEARER_TOKEN"].startswith("${METRICS_BEARER_TOKEN:?")
    web = services["web"]["environment"]
    assert web["METRICS_BEARER_TOKEN"] == service["environment"]["METRICS_BEARER_TOKEN"]
    assert "/etc/prometheus/rules/*.yml" in prometheus["rule_files"]
    assert "./monitoring/rules:/etc/prometheus/rules:ro" in service["volumes"]


def test_grafana_provisioning_points_at_the_mounted_dashboards(services):
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    provider = yaml.safe_load(
        (ROOT / "monitoring/grafana/provisioning/dashboards/dbarchitect.yml").read_text()
    )["providers"][0]
    assert mounts["./monitoring/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    datasource = yaml.safe_load(
        (ROOT / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == provider["options"]["path"] + "/dbarchitect.json"
    assert (ROOT / "monitoring/grafana/dashboards/dbarchitect.json").is_file()


def test_db_image_has_the_extensions_and_preloads_pg_stat_statements(services):
    dockerfile = (ROOT / "docker/db.Dockerfile").read_text()
    assert "FROM postgres:15" in dockerfile
    assert '"postgresql-${PG_MAJOR}-pgvector"' in dockerfile
    assert '"postgresql-${PG_MAJOR}-hypopg"' in dockerfile
    assert '"postgresql-${PG_MAJOR}-pg-qualstats"' in dockerfile
    command = services["db"]["command"]
    assert command[0] == "postgres"
    assert "shared_preload_libraries=pg_stat_statements,pg_qualstats" in command
    assert {"logging_collector=on", "log_destination=csvlog"} <= set(command)
    assert "pg_isready" in services["db"]["healthcheck"]["test"][1]


def test_app_services_run_the_right_processes(services):
    assert services["web"]["command"] == ["gunicorn", "-c", "docker/gunicorn.conf.py"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    beat = services["beat"]["command"]
    assert beat[:4] == ["celery", "-A", "config", "beat"]
    assert beat[beat.index("--scheduler") + 1] == "django_celery_beat.schedulers:DatabaseScheduler"
    assert services["seed"]["profiles"] == ["seed"]
    assert "seed_demo" in services["seed"]["command"][-1]
    for name in ("migrate", "web", "worker", "beat", "seed"):
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production", name
        assert env["DATABASE_URL"].endswith("@db:5432/${POSTGRES_DB:-dbarchitect}"), name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name


def test_no_secret_is_committed(services):
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("SECRET", "PASSWORD", "TOKEN", "API_KEY")):
                assert str(value).startswith("${"), (name, key)
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name in SECRETS:
        assert example[name] == "", name
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_env_example_documents_every_variable_compose_reads():
    example = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    read = set(VARIABLE.findall(COMPOSE.read_text()))
    assert read - example == set()


def test_init_env_fills_every_secret_once(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "docker").mkdir(parents=True)
    shutil.copy(ROOT / ".env.example", checkout)
    shutil.copy(ROOT / "docker/init-env.sh", checkout / "docker")
    subprocess.run(["sh", "docker/init-env.sh"], cwd=checkout, check=True, capture_output=True)
    values = dict(
        line.split("=", 1)
        for line in (checkout / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name in SECRETS:
        assert re.fullmatch(r"[0-9a-f]{64}", values[name]), name
    assert len({values[name] for name in SECRETS}) == len(SECRETS)
    assert oct((checkout / ".env").stat().st_mode & 0o777) == "0o600"
    before = (checkout / ".env").read_text()
    subprocess.run(["sh", "docker/init-env.sh"], cwd=checkout, check=True, capture_output=True)
    assert (checkout / ".env").read_text() == before


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@requires_tool(_compose_client() is not None, "a docker compose client (Debian: docker-compose)")
def test_compose_client_validates_the_file():
    client = _compose_client()
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **SECRET_VALUES}
    result = subprocess.run(
        [*client, "-f", str(COMPOSE), "config"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["services"]["web"]["environment"]["SECRET_KEY"] == SECRET_VALUES["SECRET_KEY"]
    # Without the secrets the client refuses, naming what is missing.
    env = {key: value for key, value in env.items() if key != "POSTGRES_PASSWORD"}
    result = subprocess.run(
        [*client, "-f", str(COMPOSE), "config"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr
