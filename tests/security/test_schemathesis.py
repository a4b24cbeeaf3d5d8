"""Property-based run over the app's own OpenAPI schema (issue 4 §6, SPEC §8).

Every operation is fuzzed with schemathesis (valid and invalid inputs), anonymously and
with the admin token, against the app with a simulated Chess.com and no rate limits:
no 5xx, and every answer has a documented status code, content type and schema.
"""

from __future__ import annotations

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
from tests import db
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.fakes.chesscom import ChessComSimulator

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


@pytest.fixture(scope="module")
def fuzz_app(fuzz_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    simulator = ChessComSimulator()
    for name in ("hikaru", "magnus", "fabianocaruana"):
        simulator.add_player(name)
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    app = create_app(
        make_settings(fuzz_db, data_dir, rate_limit_enabled=False),
        chesscom_transport=httpx.ASGITransport(app=simulator),
    )
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
