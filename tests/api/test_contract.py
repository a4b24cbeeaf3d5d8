"""The OpenAPI contract (issue 11 §3): operation ids, Allow on 405, strict parameters."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from app.api.openapi import OPERATION_IDS, operation_id_for
from app.main import create_app
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    app = create_app(make_settings("postgresql+asyncpg://unused/unused", Path("/nonexistent")))
    return app.openapi()


def operations(schema: dict[str, object]) -> dict[tuple[str, str], dict[str, object]]:
    paths = schema["paths"]
    assert isinstance(paths, dict)
    return {
        (method.upper(), path): op
        for path, item in paths.items()
        for method, op in item.items()
        if method != "parameters"
    }


def test_operation_ids_are_the_stable_kebab_case_names(schema: dict[str, object]) -> None:
    ops = operations(schema)
    ids = [str(op["operationId"]) for op in ops.values()]
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    for op_id in ids:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", op_id), op_id
    by_route = {
        (m, p.removeprefix("/api/v1")): str(op["operationId"]) for (m, p), op in ops.items()
    }
    for route, op_id in OPERATION_IDS.items():
        if route in by_route:
            assert by_route[route] == op_id
    assert by_route[("GET", "/players/{username}")] == "players-get"
    assert by_route[("GET", "/players")] == "players-list"
    assert by_route[("POST", "/players")] == "players-create"
    assert by_route[("POST", "/subscriptions")] == "subscriptions-create"


def test_operations_the_table_does_not_name_get_a_derived_id() -> None:
    assert operation_id_for("GET", "/api/v1/me") == "me-list"
    assert operation_id_for("PATCH", "/api/v1/me/subscriptions/{id}") == "me-subscriptions-update"
    assert operation_id_for("DELETE", "/api/v1/me/subscriptions/{id}") == "me-subscriptions-delete"
    assert operation_id_for("POST", "/api/v1/me/link") == "me-link-create"


def test_every_parameter_is_documented_with_its_constraints(schema: dict[str, object]) -> None:
    ops = operations(schema)
    params = {
        (m, p, prm["name"]): prm
        for (m, p), op in ops.items()
        for prm in op.get("parameters", [])  # type: ignore[attr-defined]
    }
    since = params[("GET", "/api/v1/notifications", "since")]["schema"]
    assert {"type": "string", "format": "date-time"}.items() <= _non_null(since).items()
    email = _non_null(params[("GET", "/api/v1/notifications", "email")]["schema"])
    assert email["format"] == "email" and email["maxLength"] == 254
    erase = params[("DELETE", "/api/v1/subscribers/{email}", "email")]["schema"]
    assert erase["format"] == "email"
    username = params[("GET", "/api/v1/players/{username}", "username")]["schema"]
    # A player key wherever a username is accepted (SPEC §4, issue 19).
    assert username["pattern"] == (
        "^(?:[A-Za-z0-9_-]{3,25}|[Ll][Ii][Cc][Hh][Ee][Ss][Ss]:[A-Za-z0-9_-]{2,30})$"
    )
    for (method, path, name), prm in params.items():
        if name == "token":
            # An opaque string: no format or pattern a client could check it against,
            # and the 400 its operation answers for a bad one is documented.
            assert prm["schema"] == {"type": "string", "maxLength": 1000, **_described(prm)}
            assert "opaque" in str(prm["description"])
            assert "400" in ops[(method, path)]["responses"]  # type: ignore[operator]


def _non_null(schema: dict[str, object]) -> dict[str, object]:
    for option in schema.get("anyOf", [schema]):  # type: ignore[attr-defined]
        if option.get("type") != "null":
            return dict(option)
    raise AssertionError(schema)


def _described(prm: dict[str, object]) -> dict[str, object]:
    schema = prm["schema"]
    assert isinstance(schema, dict)
    return {k: v for k, v in schema.items() if k in {"description", "title"}}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/v1/players", "GET, POST"),
        ("PUT", "/api/v1/players/hikaru", "DELETE, GET"),
        ("OPTIONS", "/api/v1/players/refresh", "POST"),
        ("DELETE", "/api/v1/subscribers/erase", "GET, POST"),
        ("DELETE", "/api/v1/subscribers/erase-request", "POST"),
        ("OPTIONS", "/api/v1/unsubscribe", "GET, POST"),
        ("PATCH", "/api/v1/subscribers/fan@example.com", "DELETE"),
    ],
)
async def test_405_names_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    r = await client.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allow


async def test_405_body_keeps_the_error_shape(client: httpx.AsyncClient) -> None:
    r = await client.request("OPTIONS", "/api/v1/players")
    assert r.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize(
    "since",
    ["0.5", "1700000000", "2026-11-27", "2026-11-27T10:00:00", "yesterday", "2026-13-01T00:00:00Z"],
)
async def test_since_takes_an_rfc3339_date_time_only(
    client: httpx.AsyncClient, admin: dict[str, str], since: str
) -> None:
    r = await client.get("/api/v1/notifications", params={"since": since}, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "since"]


@pytest.mark.parametrize("since", ["2026-11-27T10:00:00Z", "2026-11-27T10:00:00.25+01:00"])
async def test_since_accepts_date_times_with_an_offset(
    client: httpx.AsyncClient, admin: dict[str, str], since: str
) -> None:
    r = await client.get("/api/v1/notifications", params={"since": since}, headers=admin)
    assert r.status_code == 200, r.text


async def test_email_parameters_are_checked_like_their_format(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    bad = await client.get("/api/v1/notifications", params={"email": "nope"}, headers=admin)
    assert bad.status_code == 422
    # A syntactically valid address on a special-use domain is an address (format: email).
    ok = await client.get("/api/v1/notifications", params={"email": "a@b.test"}, headers=admin)
    assert ok.status_code == 200
    # Well-formed, so looked up: nothing is stored about it (404), not a 422.
    gone = await client.delete("/api/v1/subscribers/Fan@Example.test", headers=admin)
    assert gone.status_code == 404
    assert gone.json()["detail"] == "Nothing is stored about this address"
    assert (await client.delete("/api/v1/subscribers/a@b", headers=admin)).status_code == 422
    assert (await client.delete("/api/v1/subscribers/a@b@c.com", headers=admin)).status_code == 422
    # No `@`: not an address, so no such resource.
    assert (await client.delete("/api/v1/subscribers/0", headers=admin)).status_code == 404
