"""docker-compose.yml and the Dockerfile (SPEC §2): the production shape, checked statically.

There is no Docker engine in the test environment; these tests read the files.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from app.api.ratelimit import RateLimiter
from app.config import Environment, Settings

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "api", "worker")
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}
INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    pairs = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        pairs.append((instruction.upper(), args.strip()))
    return pairs


def instructions(name: str) -> list[str]:
    return [args for instr, args in dockerfile_instructions() if instr == name]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution; a required (`?`) variable missing from env fails."""

    def substitute(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"], m["arg"]
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if present:
            return env[name]
        if op and op.endswith("?"):
            raise AssertionError(f"compose requires {name}: {arg}")
        return arg if op else ""

    return INTERPOLATION.sub(substitute, value)


def as_command(value: str | list[str]) -> str:
    return value if isinstance(value, str) else " ".join(value)


# -- services ---------------------------------------------------------------------------


def test_the_services_of_the_spec_exist(services: dict[str, Any]) -> None:
    assert {"db", "migrate", "api", "worker", "mailpit", "redis"} <= set(services)


def test_db_is_postgres_with_a_healthcheck_and_a_named_volume(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    db = services["db"]
    assert db["image"].startswith("postgres:15")
    assert "pg_isready" in as_command(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "the database must live in a named volume"


def test_postgres_admits_every_pool_at_full_load(services: dict[str, Any]) -> None:
    """Two API processes and three workers, every pool full, still get connections."""
    command = as_command(services["db"]["command"])
    match = re.search(r"max_connections=(\d+)", command)
    assert match, "the db service must size max_connections for the pools"
    shared = services["api"]["environment"]
    web_concurrency = int(INTERPOLATION.sub(lambda m: m["arg"] or "", shared["WEB_CONCURRENCY"]))
    settings = Settings.model_construct()  # the defaults compose leaves in place
    per_api = 2 * settings.db_pool_size + settings.db_max_overflow
    per_worker = settings.db_pool_size + settings.db_max_overflow + 1  # + LISTEN
    workers, migrate, superuser_reserved = 3, 1, 3
    needed = web_concurrency * per_api + workers * per_worker + migrate + superuser_reserved
    assert needed <= int(match[1]), needed


def test_migrate_is_a_one_shot_alembic_upgrade_after_the_db_is_healthy(
    services: dict[str, Any],
) -> None:
    migrate = services["migrate"]
    assert as_command(migrate["command"]) == "alembic upgrade head"
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["api", "worker"])
def test_api_and_worker_wait_for_the_migration(services: dict[str, Any], name: str) -> None:
    condition = services[name]["depends_on"]["migrate"]["condition"]
    assert condition == "service_completed_successfully"


def test_api_publishes_port_8000_and_has_a_healthcheck(services: dict[str, Any]) -> None:
    api = services["api"]
    assert any(str(p).endswith("8000:8000") for p in api["ports"])
    assert "/api/v1/healthz" in as_command(api["healthcheck"]["test"])
    assert "curl" not in as_command(api["healthcheck"]["test"])  # not in the slim image


def test_worker_runs_python_m_worker_and_can_scale(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert as_command(worker["command"]) == "python -m worker"
    assert worker["deploy"]["replicas"] >= 1
    # A fixed container name or a published port would make `--scale worker=3` fail.
    assert "container_name" not in worker
    assert "ports" not in worker


def test_jobs_without_http_do_not_inherit_the_images_http_healthcheck(
    services: dict[str, Any],
) -> None:
    assert services["migrate"]["healthcheck"] == {"disable": True}


def test_worker_uses_its_own_health_endpoint(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    # The image's healthcheck asks the API; the worker answers on WORKER_METRICS_PORT.
    shared = compose["x-app-env"]
    port = shared["WORKER_METRICS_PORT"]
    check = as_command(services["worker"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert "python" in check and "curl" not in check
    # Reachable from Prometheus in another container, not only from inside.
    assert shared["WORKER_METRICS_HOST"] == "0.0.0.0"
    assert "disable" not in services["worker"]["healthcheck"]


def test_prometheus_and_grafana_start_under_the_monitoring_profile(
    services: dict[str, Any],
) -> None:
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name
    mounts = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for path in (
        "./deploy/prometheus/prometheus.yml",
        "./deploy/prometheus/alerts.yml",
        "./deploy/grafana/provisioning",
        "./deploy/grafana/dashboards",
    ):
        assert path in mounts, path
        assert (ROOT / path).exists(), path
    # The app's services run without the profile.
    for name in ("db", "migrate", "api", "worker"):
        assert "profiles" not in services[name], name


def test_mailpit_catches_smtp_on_1025_with_its_ui_on_8025(services: dict[str, Any]) -> None:
    mailpit = services["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit")
    assert any(str(p).endswith("8025:8025") for p in mailpit.get("ports", []))
    assert "1025" in [str(p) for p in mailpit.get("expose", [])] + [
        str(p).rsplit(":", 1)[-1] for p in mailpit.get("ports", [])
    ]


def test_redis_backs_the_rate_limits(services: dict[str, Any]) -> None:
    assert services["redis"]["image"].startswith("redis:7")
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"


# -- one shared environment -------------------------------------------------------------


def test_api_worker_and_migrate_share_one_environment(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    shared = compose["x-app-env"]
    for name in APP_SERVICES:
        assert services[name]["environment"] == shared, name
    assert shared["APP_ENV"] == "production"
    assert "@db:5432/" in shared["DATABASE_URL"]
    assert shared["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "mailpit" in shared["SMTP_HOST"]
    assert "1025" in shared["SMTP_PORT"]
    assert shared["RATE_LIMIT_STORAGE_URI"] == "redis://redis:6379/0"
    # Several API processes per container, sharing their rate limits through redis.
    assert shared["WEB_CONCURRENCY"].startswith("${WEB_CONCURRENCY:-")
    assert {"CONTACT_EMAIL", "ADMIN_TOKEN", "PUBLIC_BASE_URL"} <= set(shared)


def test_secrets_are_required_not_defaulted(compose: dict[str, Any]) -> None:
    shared = compose["x-app-env"]
    for name in ("SECRET_KEY", "DATABASE_URL", "VAPID_PRIVATE_KEY"):
        ops = [m["op"] for m in INTERPOLATION.finditer(shared[name])]
        assert ops and all(op and op.endswith("?") for op in ops), f"{name} must use ${{VAR:?...}}"


def test_every_variable_compose_sets_is_a_setting(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        unknown = {k for k in environment if k.lower() not in Settings.model_fields}
        assert not unknown, f"{name} sets variables the app ignores: {sorted(unknown)}"


def test_the_compose_environment_passes_production_validation(
    compose: dict[str, Any], services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = {
        "SECRET_KEY": "k" * 48,
        "POSTGRES_PASSWORD": "0123456789abcdef",
        "CONTACT_EMAIL": "ops@example.com",
        "ADMIN_TOKEN": "t" * 32,
        "VAPID_PRIVATE_KEY": "AGQ1VPz0GuNnuaOuxkbU4dGJ5dQeGCqh2gjHnsbz-mQ",
    }
    for name in list(os.environ):
        if name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)
    for key, value in compose["x-app-env"].items():
        monkeypatch.setenv(key, interpolate(str(value), operator))
    settings = Settings()
    assert settings.app_env is Environment.production
    url = make_url(settings.effective_database_url or "")
    assert (url.host, url.password) == ("db", "0123456789abcdef")
    db_env = services["db"]["environment"]
    assert (url.username, url.database) == (db_env["POSTGRES_USER"], db_env["POSTGRES_DB"])
    assert interpolate(db_env["POSTGRES_PASSWORD"], operator) == url.password
    assert settings.smtp_host == "mailpit" and settings.smtp_port == 1025


def test_the_api_can_build_its_rate_limit_storage_from_compose(compose: dict[str, Any]) -> None:
    # The venv holds the image's dependencies (`.[dev,redis]` vs `.[redis]`); building the
    # storage does not connect, so no Redis server is needed to know the API would start.
    uri = compose["x-app-env"]["RATE_LIMIT_STORAGE_URI"]
    limiter = RateLimiter(Settings(rate_limit_storage_uri=uri, rate_limit_enabled=True))
    assert limiter.enabled


def test_a_missing_secret_stops_compose(compose: dict[str, Any]) -> None:
    with pytest.raises(AssertionError, match="SECRET_KEY"):
        interpolate(compose["x-app-env"]["SECRET_KEY"], {})


# -- the image --------------------------------------------------------------------------


def test_app_services_build_this_image_and_none_runs_as_root(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        assert services[name]["build"] == ".", name
        assert str(services[name].get("user", "app")) not in {"root", "0", "0:0"}, name
    users = instructions("USER")
    assert users, "the Dockerfile must switch to an unprivileged USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    # The switch happens after every RUN: nothing later runs as root.
    order = [instr for instr, _ in dockerfile_instructions()]
    last_user = len(order) - 1 - order[::-1].index("USER")
    assert "RUN" not in order[last_user:]


def test_dockerfile_builds_from_python_slim_and_installs_the_project() -> None:
    assert instructions("FROM") == ["python:3.11-slim"]
    runs = " ".join(instructions("RUN"))
    assert re.search(r"pip install (\"|')?\.(\[[a-z,]*\])?", runs)


def test_dockerfile_installs_redis_support_when_compose_uses_redis(
    compose: dict[str, Any],
) -> None:
    if compose["x-app-env"]["RATE_LIMIT_STORAGE_URI"].startswith("redis://"):
        assert re.search(r"pip install (\"|')?\.\[[a-z,]*redis", " ".join(instructions("RUN")))


def test_dockerfile_copies_the_code_migrations_and_alembic_ini() -> None:
    copied = " ".join(instructions("COPY"))
    for source in ("app/", "worker/", "migrations/", "alembic.ini", "pyproject.toml"):
        assert source in copied, f"the image lacks {source}"


def test_dockerfile_exposes_8000_with_a_python_healthcheck() -> None:
    assert "8000" in instructions("EXPOSE")
    (healthcheck,) = instructions("HEALTHCHECK")
    assert "python" in healthcheck and "/api/v1/healthz" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck


def test_dockerfile_serves_the_api_with_python_m_app_on_all_interfaces() -> None:
    # `python -m app` (uvicorn without its own proxy-header rewriting) in exec form, so
    # that python is PID 1 and receives SIGTERM; it listens on HOST:PORT.
    (cmd,) = instructions("CMD")
    assert json.loads(cmd) == ["python", "-m", "app"]
    env = " ".join(instructions("ENV"))
    assert "HOST=0.0.0.0" in env and "PORT=8000" in env
    assert "uvicorn" not in cmd and "--proxy-headers" not in cmd


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".data", ".git", "__pycache__", ".pytest_cache"} <= ignored
    for needed in ("app", "worker", "migrations", "alembic.ini", "pyproject.toml"):
        assert needed not in ignored
