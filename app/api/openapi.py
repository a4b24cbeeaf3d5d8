"""Stable OpenAPI operation ids, decided in one place (issue 11).

Generated clients name their functions after operation ids, so they are part of the
contract: `players-get` becomes `players_get()`. FastAPI's default
(`get_player_api_v1_players__username__get`) changes whenever a handler is renamed or
moved. Here the id depends only on the method and the path: known operations take
their id from the table, and any other one gets `<static path segments>-<verb>`.
"""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from app.urls import API_PREFIX, CONFIRM_ROUTE, ERASE_ROUTE, UNSUBSCRIBE_ROUTE

OPERATION_IDS: dict[tuple[str, str], str] = {
    ("GET", "/players"): "players-list",
    ("POST", "/players"): "players-create",
    ("POST", "/players/refresh"): "players-refresh-all",
    ("GET", "/players/{username}"): "players-get",
    ("DELETE", "/players/{username}"): "players-delete",
    ("POST", "/players/{username}/refresh"): "players-refresh",
    ("GET", "/players/{username}/subscriptions"): "players-subscriptions-list",
    ("POST", "/subscriptions"): "subscriptions-create",
    ("GET", CONFIRM_ROUTE): "subscriptions-confirm-page",
    ("POST", CONFIRM_ROUTE): "subscriptions-confirm",
    ("GET", UNSUBSCRIBE_ROUTE): "unsubscribe-page",
    ("POST", UNSUBSCRIBE_ROUTE): "unsubscribe",
    ("DELETE", "/subscribers/{email}"): "subscribers-delete",
    ("POST", "/subscribers/erase-request"): "subscribers-erase-request",
    ("GET", ERASE_ROUTE): "subscribers-erase-page",
    ("POST", ERASE_ROUTE): "subscribers-erase",
    ("GET", "/notifications"): "notifications-list",
    ("GET", "/healthz"): "ops-healthz",
    ("GET", "/readyz"): "ops-readyz",
    ("GET", "/metrics"): "ops-metrics",
}

# The verb of an operation the table does not name, by method and by whether the path
# ends on one item (`/things/{id}`) or on a collection (`/things`).
_ITEM_VERBS = {"GET": "get", "PUT": "replace", "PATCH": "update", "DELETE": "delete"}
_COLLECTION_VERBS = {"GET": "list", "POST": "create", "PUT": "replace", "PATCH": "update"}
_NOT_A_WORD = re.compile(r"[^a-z0-9]+")


def operation_id_for(method: str, path: str) -> str:
    """The operation id of `method path` (path with or without the API prefix)."""
    method = method.upper()
    if path.startswith(API_PREFIX + "/"):
        path = path[len(API_PREFIX) :]
    known = OPERATION_IDS.get((method, path))
    if known is not None:
        return known
    segments = [s for s in path.split("/") if s]
    words = [_NOT_A_WORD.sub("-", s.lower()).strip("-") for s in segments if s[:1] != "{"]
    on_item = bool(segments) and segments[-1].startswith("{")
    verbs = _ITEM_VERBS if on_item else _COLLECTION_VERBS
    verb = verbs.get(method, method.lower())
    return "-".join([w for w in words if w] + [verb]) or verb


def operation_id(route: APIRoute) -> str:
    """FastAPI's `generate_unique_id_function`: one id per (method, path)."""
    return operation_id_for(min(route.methods or {"GET"}), route.path_format)
