"""Property-based runs over the app's own OpenAPI schema (issue 4 §6, issue 11 §3, SPEC §8).

Every operation is fuzzed with schemathesis (valid and invalid inputs), anonymously and
with the admin token, against the app with a simulated Chess.com and no rate limits:
no 5xx, and every answer has a documented status code, content type and schema.

`test_outside_fuzzer_with_every_check` runs the schemathesis CLI as an outside user
would, over a real socket, with every check and every phase (examples, coverage,
fuzzing, stateful), and must find nothing. One exclusion, and only one: operations
taking a signed link `token` skip positive-data acceptance. Their token is an opaque
string; a generator can only invent tokens, which are rightly refused with the
documented 400, so "schema-valid data must be accepted" cannot hold for them.

Both runs learn the schema's own string formats from `schemathesis_hooks` (a push key
must be a point on the P-256 curve), and the app resolves every webhook or push host
name to one public address without any I/O (`pretend_public`): whether a name exists
is no schema's business, and subscribing connects to nothing (the worker, which posts
the verification, does not run here).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app
from app.webhooks.guard import IPAddress
from tests import db
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.lichess import LichessSimulator
from tests.fakes.server import run_asgi_in_thread
from tests.security import schemathesis_hooks  # noqa: F401  (registers the formats)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
AUTH = {"anonymous": {}, "admin": {"Authorization": f"Bearer {ADMIN_TOKEN}"}}

# The schema is the app's own. Building it touches no database: routes do not depend on settings.
SCHEMA = schemathesis.openapi.from_dict(
    create_app(make_settings("postgresql+asyncpg://unused/unused", Path("/nonexistent"))).openapi()
)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module")
async def fuzz_db(database_url: str) -> AsyncIterator[str]:
    await db.truncate_all(database_url)
    yield database_url
    await db.truncate_all(database_url)


def _app(database_url: str, data_dir: Path) -> FastAPI:
    """The API over a Chess.com simulator with three players and a Lichess simulator
    with two, no rate limits, and no DNS query for webhook or push URLs."""
    simulator = ChessComSimulator()
    for name in ("hikaru", "magnus", "fabianocaruana"):
        simulator.add_player(name)
    lichess = LichessSimulator()
    for name in ("DrNykterstein", "ab"):
        lichess.add_user(name)
    app = create_app(
        make_settings(database_url, data_dir, rate_limit_enabled=False),
        chesscom_transport=simulator.transport(),
        lichess_transport=lichess.transport(),
    )
    app.state.webhook_resolver = pretend_public
    return app


async def pretend_public(host: str, port: int) -> list[IPAddress]:
    """Every name is one public address (example.com's), answered without a query."""
    return [ipaddress.IPv4Address("93.184.215.14")]


@pytest.fixture(scope="module")
def fuzz_app(fuzz_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    app = _app(fuzz_db, tmp_path_factory.mktemp("fuzz") / "data")
    # schemathesis' client starts the lifespan once, in its own event-loop thread, and
    # every generated request runs in that loop against the same engine. Stop it here.
    with asgi.get_client(app) as client:
        assert client.get("/api/v1/healthz").status_code == 200
        yield app
    asgi.shutdown_lifespans()


def test_every_operation_is_fuzzed() -> None:
    paths = {op.path for op in OPERATIONS}
    assert {"/api/v1/subscriptions", "/api/v1/subscribers/erase", "/api/v1/notifications"} <= paths
    assert len(OPERATIONS) >= 18


@pytest.mark.parametrize("auth", AUTH)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_operation_answers_as_documented(
    operation: schemathesis.APIOperation, auth: str, fuzz_app: FastAPI
) -> None:
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(
        max_examples=25,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(app=fuzz_app, headers=AUTH[auth], checks=CHECKS)

    check()


def token_operations(schema: dict[str, object]) -> list[str]:
    """Operation ids of the operations whose query carries a signed link token."""
    paths = schema["paths"]
    assert isinstance(paths, dict)
    return sorted(
        op["operationId"]
        for item in paths.values()
        for op in item.values()
        if any(p["name"] == "token" and p["in"] == "query" for p in op.get("parameters", []))
    )


@pytest.fixture(scope="module")
def served_api(fuzz_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = _app(fuzz_db, tmp_path_factory.mktemp("outside") / "data")
    with run_asgi_in_thread(app) as base:
        yield base


@pytest.mark.slow
@pytest.mark.parametrize("auth", AUTH)
def test_outside_fuzzer_with_every_check(served_api: str, auth: str, tmp_path: Path) -> None:
    schema = httpx.get(f"{served_api}/openapi.json").json()
    tokens = token_operations(schema)
    assert tokens == sorted(
        [
            "subscribers-erase",
            "subscribers-erase-page",
            "subscriptions-confirm",
            "subscriptions-confirm-page",
            "unsubscribe",
            "unsubscribe-page",
        ]
    )
    ids = ", ".join(f'"{op}"' for op in tokens)
    # Every check is on by default; the config only turns one off for the token operations.
    (tmp_path / "schemathesis.toml").write_text(
        f"[[operations]]\ninclude-operation-id = [{ids}]\n"
        "checks.positive_data_acceptance.enabled = false\n"
    )
    headers = [f"--header=Authorization: Bearer {ADMIN_TOKEN}"] if auth == "admin" else []
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(cli),
            "--config-file",
            str(tmp_path / "schemathesis.toml"),
            "--no-color",
            "run",
            f"{served_api}/openapi.json",
            "--max-examples=40",
            "--seed=11",
            *headers,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.security.schemathesis_hooks",
            "PYTHONPATH": str(Path(__file__).parents[2]),
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Selected: " in output and " passed" in output, output
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, output
