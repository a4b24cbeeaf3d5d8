"""Operations (SPEC §4): probes, metrics, OpenAPI docs, and errors that never leak internals."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from tests import db
from tests.conftest import make_settings

pytestmark = pytest.mark.usefixtures("clean_db")

LEAKS = ("Traceback", 'File "', "asyncpg", "sqlalchemy", "Error:", "/work/", "site-packages")


@asynccontextmanager
async def serve(settings: Settings, app: FastAPI | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app of our own; unexpected exceptions become responses, as in uvicorn."""
    app = app or create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


def assert_no_leak(response: httpx.Response, *secrets: str) -> None:
    for needle in (*LEAKS, *secrets):
        assert needle not in response.text, f"{needle!r} leaked: {response.text}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- probes -------------------------------------------------------------------------------


async def test_healthz(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_on_the_migrated_database(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "migrations": "head"}


async def test_probes_also_answer_at_the_root(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


async def test_readyz_is_503_on_a_database_behind_head(scratch_url: str, tmp_path: Path) -> None:
    await db.upgrade(scratch_url)
    await db.downgrade(scratch_url, "base")  # alembic_version exists, holds no revision
    async with serve(make_settings(scratch_url, tmp_path)) as c:
        r = await c.get("/api/v1/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "database": "ok", "migrations": "behind"}


async def test_readyz_is_503_on_a_never_migrated_database(scratch_url: str, tmp_path: Path) -> None:
    async with serve(make_settings(scratch_url, tmp_path)) as c:
        r = await c.get("/api/v1/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["migrations"] != "head"
    assert_no_leak(r, "alembic_version")


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://app:hunter2-secret@127.0.0.1:{closed_port()}/chess"
    async with serve(make_settings(url, tmp_path)) as c:
        r = await c.get("/api/v1/readyz")
        assert r.status_code == 503
        assert r.json() == {
            "status": "unavailable",
            "database": "unreachable",
            "migrations": "unknown",
        }
        assert_no_leak(r, "hunter2-secret", "Connect call failed")

        # An ordinary route with the database down: an error body, no internals.
        r = await c.get("/api/v1/players")
        assert r.status_code >= 500
        assert set(r.json()) == {"detail"}
        assert_no_leak(r, "hunter2-secret", "Connect call failed")


# -- metrics and docs -----------------------------------------------------------------------


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/healthz")
    await client.get("/api/v1/players/zzmetricsprobe")  # 404, a templated route
    r = await client.get("/api/v1/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE chesscom_helper_http_requests_total counter" in r.text
    samples = [
        line
        for line in r.text.splitlines()
        if line.startswith("chesscom_helper_http_requests_total{")
    ]
    assert any('status="200"' in line and "healthz" in line for line in samples)
    assert any('status="404"' in line and "{username}" in line for line in samples)
    # Labels are route templates, never raw paths (unbounded cardinality, personal data).
    assert "zzmetricsprobe" not in r.text


async def test_docs_page_is_html(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "swagger" in r.text.lower()
    assert "/openapi.json" in r.text
    # Its script and styles are served by the app, never fetched from a CDN.
    assert "cdn" not in r.text.lower() and "//" not in r.text.replace("://", "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f'"/docs/assets/{asset}"' in r.text
        served = await client.get(f"/docs/assets/{asset}")
        assert served.status_code == 200 and len(served.content) > 10_000


# -- the OpenAPI document -------------------------------------------------------------------

SPEC_ROUTES = {
    ("post", "/api/v1/players"),
    ("get", "/api/v1/players"),
    ("get", "/api/v1/players/{username}"),
    ("post", "/api/v1/players/{username}/refresh"),
    ("delete", "/api/v1/players/{username}"),
    ("post", "/api/v1/players/refresh"),
    ("post", "/api/v1/subscriptions"),
    ("get", "/api/v1/subscriptions/confirm"),
    ("post", "/api/v1/subscriptions/confirm"),
    ("get", "/api/v1/unsubscribe"),
    ("post", "/api/v1/unsubscribe"),
    ("get", "/api/v1/players/{username}/subscriptions"),
    ("delete", "/api/v1/subscribers/{email}"),
    ("get", "/api/v1/notifications"),
    ("get", "/api/v1/healthz"),
    ("get", "/api/v1/readyz"),
    ("get", "/api/v1/metrics"),
}
ADMIN_ROUTES = {
    ("delete", "/api/v1/players/{username}"),
    ("post", "/api/v1/players/refresh"),
    ("get", "/api/v1/players/{username}/subscriptions"),
    ("delete", "/api/v1/subscribers/{email}"),
    ("get", "/api/v1/notifications"),
}
DOCUMENTED_ERRORS = {
    ("post", "/api/v1/players"): {"404", "422", "503"},
    ("get", "/api/v1/players/{username}"): {"404"},
    ("post", "/api/v1/players/{username}/refresh"): {"404", "503"},
    ("post", "/api/v1/subscriptions"): {"404", "422", "503"},
    ("post", "/api/v1/subscriptions/confirm"): {"400"},
    ("post", "/api/v1/unsubscribe"): {"400"},
    ("get", "/api/v1/readyz"): {"503"},
}
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    spec: dict[str, Any] = r.json()
    return spec


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def has_examples(obj: dict[str, Any]) -> bool:
    return bool(obj.get("example") or obj.get("examples"))


def property_names(spec: dict[str, Any], schema: dict[str, Any], seen: set[str]) -> set[str]:
    """Every property name reachable from a schema (through $ref, arrays, unions)."""
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return set()
        seen.add(schema["$ref"])
        return property_names(spec, resolve(spec, schema), seen)
    names = set(schema.get("properties", {}))
    children = list(schema.get("properties", {}).values())
    children += [
        schema[k] for k in ("items", "additionalProperties") if isinstance(schema.get(k), dict)
    ]
    for key in ("anyOf", "oneOf", "allOf"):
        children += schema.get(key, [])
    for child in children:
        names |= property_names(spec, child, seen)
    return names


async def test_every_spec_route_is_documented(openapi: dict[str, Any]) -> None:
    missing = SPEC_ROUTES - set(operations(openapi))
    assert not missing, f"routes of SPEC §4 missing from /openapi.json: {sorted(missing)}"


async def test_every_operation_has_a_summary(openapi: dict[str, Any]) -> None:
    for key, op in operations(openapi).items():
        assert op.get("summary", "").strip(), f"{key} has no summary"


async def test_error_responses_are_documented(openapi: dict[str, Any]) -> None:
    ops = operations(openapi)
    for key, codes in DOCUMENTED_ERRORS.items():
        documented = set(ops[key]["responses"])
        assert codes <= documented, f"{key} documents only {sorted(documented)}"
    error = ops[("post", "/api/v1/players")]["responses"]["404"]
    schema = resolve(openapi, error["content"]["application/json"]["schema"])
    assert "detail" in schema["properties"]


async def test_admin_routes_document_401_and_bearer_auth(openapi: dict[str, Any]) -> None:
    ops = operations(openapi)
    for key in ADMIN_ROUTES:
        assert "401" in ops[key]["responses"], f"{key} does not document 401"
        assert ops[key].get("security"), f"{key} does not declare its bearer auth"
    schemes = openapi["components"]["securitySchemes"].values()
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes)


async def test_request_bodies_have_examples(openapi: dict[str, Any]) -> None:
    with_body = {k: op for k, op in operations(openapi).items() if "requestBody" in op}
    assert {("post", "/api/v1/players"), ("post", "/api/v1/subscriptions")} <= set(with_body)
    for key, op in with_body.items():
        for media_type, content in op["requestBody"]["content"].items():
            schema = resolve(openapi, content.get("schema", {}))
            fields = [resolve(openapi, f) for f in schema.get("properties", {}).values()]
            # An example for the whole body, or one per field (Swagger UI assembles those).
            has_example = (
                has_examples(content)
                or has_examples(schema)
                or (bool(fields) and all(has_examples(f) for f in fields))
            )
            assert has_example, f"{key} {media_type} body has no example"


async def test_anonymous_responses_never_carry_an_email(openapi: dict[str, Any]) -> None:
    for key, op in operations(openapi).items():
        if op.get("security"):
            continue
        for code, response in op["responses"].items():
            for content in response.get("content", {}).values():
                names = property_names(openapi, content.get("schema", {}), set())
                assert "email" not in names, f"{key} {code} can answer with an email address"


# -- bad input and errors -------------------------------------------------------------------


async def test_a_one_megabyte_body_is_413(client: httpx.AsyncClient) -> None:
    body = b'{"username": "' + b"a" * 1_000_000 + b'"}'
    r = await client.post(
        "/api/v1/players", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert set(r.json()) == {"detail"}
    assert (await client.get("/api/v1/players")).json()["total"] == 0


async def test_a_chunked_body_over_the_cap_is_413(client: httpx.AsyncClient) -> None:
    """No Content-Length to trust: the cap still holds while the body streams in."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 10_000

    r = await client.post(
        "/api/v1/players", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert r.status_code == 413
    assert set(r.json()) == {"detail"}


async def test_a_chunked_body_under_the_cap_reaches_the_route(
    client: httpx.AsyncClient, hikaru: object
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"username": '
        yield b'"hikaru"}'

    r = await client.post(
        "/api/v1/players", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 201, r.text


async def test_an_unknown_route_is_404_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/no/such/route")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"detail"}


async def test_a_wrong_method_is_405_json(client: httpx.AsyncClient) -> None:
    r = await client.put("/api/v1/healthz")
    assert r.status_code == 405
    assert set(r.json()) == {"detail"}


async def test_a_server_error_never_leaks_a_traceback(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/api/v1/_boom")
    async def boom() -> None:
        raise RuntimeError("internal detail: password=hunter2 at /srv/app/secret.py")

    async with serve(settings, app) as c:
        r = await c.get("/api/v1/_boom")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"detail": "Internal server error"}
    assert_no_leak(r, "hunter2", "RuntimeError", "secret.py")
