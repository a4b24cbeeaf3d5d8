"""Stable OpenAPI operation ids, decided in one place (issue 11).

Generated clients name their functions after operation ids, so they are part of the
contract: `players-get` becomes `players_get()`. FastAPI's default
(`get_player_api_v1_players__username__get`) changes whenever a handler is renamed or
moved. Here the id depends only on the method and the path: known operations take
their id from the table, and any other one gets `<static path segments>-<verb>`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.routing import APIRoute

from app.config import Settings
from app.urls import API_PREFIX, CONFIRM_ROUTE, ERASE_ROUTE, UNSUBSCRIBE_ROUTE
from app.webhooks.guard import PRIVATE_URL_PATTERN

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


# Where the models' schema differs from what this deployment accepts (SPEC §9, §11).
_URL_FIELDS = (("WebhookIn", "url"), ("PushIn", "endpoint"))
_TELEGRAM = "#/components/schemas/TelegramSubscribe"


def fit_to_deployment(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The document states the rules of this deployment, so that a schema-valid request
    is one it accepts: with `WEBHOOK_ALLOW_PRIVATE` a URL needs only http(s); without a
    Telegram bot, subscribing a Telegram chat is not offered at all (hidden, SPEC §11;
    such a body is then schema-invalid and its 422 is what the document says)."""
    components: dict[str, Any] = schema.get("components", {}).get("schemas", {})
    if settings.webhook_allow_private:
        for model, field in _URL_FIELDS:
            prop = components.get(model, {}).get("properties", {}).get(field)
            if prop is not None:
                prop["pattern"] = PRIVATE_URL_PATTERN
    if not settings.telegram_enabled:
        for name, component in components.items():
            choices = component.get("oneOf")
            if not isinstance(choices, list) or {"$ref": _TELEGRAM} not in choices:
                continue
            component["oneOf"] = [c for c in choices if c != {"$ref": _TELEGRAM}]
            examples = component.get("examples", [])
            component["examples"] = [e for e in examples if "telegram" not in e]
            if name == "SubscribeRequest":
                component["description"] = "Exactly one channel: `email`, `webhook` or `push`."
        if _TELEGRAM not in json.dumps(schema):
            components.pop("TelegramSubscribe", None)
    return schema
