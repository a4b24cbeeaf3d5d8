"""Outgoing events are documented in the OpenAPI document's `webhooks` (SPEC §9)."""

from __future__ import annotations

import json
from pathlib import Path

from app.main import create_app
from app.webhooks.payloads import LiveMatchMessage, render_body
from tests.conftest import make_settings
from tests.webhooks.test_payloads import live, stream


def test_webhooks_section_documents_signed_events(tmp_path: Path) -> None:
    app = create_app(make_settings("postgresql+asyncpg://u@127.0.0.1/unused", tmp_path))
    schema = app.openapi()
    hooks = schema["webhooks"]
    assert set(hooks) == {
        "live_match.started",
        "stream.started",
        "subscription.verification",
        "subscription.manage_link",
    }
    post = hooks["live_match.started"]["post"]
    headers = {p["name"] for p in post["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/LiveMatchEvent")
    assert "Standard Webhooks" in post["description"]
    # The documented model is what the json format posts.
    event = schema["components"]["schemas"]["LiveMatchEvent"]
    message: LiveMatchMessage = live()
    body = json.loads(render_body("json", message))
    assert set(body) == set(event["properties"])


def test_the_stream_event_is_documented_as_the_json_format_posts_it(tmp_path: Path) -> None:
    app = create_app(make_settings("postgresql+asyncpg://u@127.0.0.1/unused", tmp_path))
    schema = app.openapi()
    post = schema["webhooks"]["stream.started"]["post"]
    headers = {p["name"] for p in post["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/StreamStartedEvent")
    assert "Standard Webhooks" in post["description"]
    components = schema["components"]["schemas"]
    body = json.loads(render_body("json", stream()))
    assert set(body) == set(components["StreamStartedEvent"]["properties"])
    assert set(body["data"]) == set(components["StreamData"]["properties"])
    assert set(body["data"]["stream"]) == {"type", "url"}
    player = components["EventPlayer"]
    assert {"platform", "key"} <= set(player["required"])
    assert set(body["data"]["player"]) == set(player["properties"])
