"""Golden messages: rendered emails keep their headers and parts.

`golden/<type>.eml` are today's messages; `golden/<type>.before.eml` were rendered by
the renderer before rendering became "prepare once per event, fill in per recipient"
(one EmailMessage built per recipient). Both are compared by what a mail client sees:
every header (the MIME boundary aside) and every part's headers and decoded content.
Against the old renderer the only differences allowed are the ones made on purpose:
`List-Id` names the tracked player, and every email carries a manage link.

Regenerate today's files after a deliberate change with `GOLDEN_UPDATE=1 pytest …`.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from app.notifications.payloads import GameRecord, NoPayload, live_session
from tests.emails.conftest import parse, render_message

GOLDEN = Path(__file__).parent / "golden"
DATE = datetime(2026, 11, 21, 20, 30, tzinfo=UTC)
SENDER = "Chess.com Helper <alerts@helper.example>"
BASE = "https://helper.example"
MANAGE = f"{BASE}/manage?token=MANAGE.TOKEN"

GAMES = [
    GameRecord(
        "uuid-101", "https://www.chess.com/game/live/101", 1795292102, 1795291900, "blitz",
        "180+2", "hikaru", "MagnusCarlsen", None, 2830, "win", "resigned", True,
    ),
    GameRecord(
        "uuid-102", "https://www.chess.com/game/live/102", 1795292400, 1795292340, "bullet",
        "60", "Firouzja2003", "hikaru", None, None, "win", "timeout", False,
    ),
]  # fmt: skip

MESSAGES: dict[str, dict[str, Any]] = {
    "live_match": {
        "payload": live_session("hikaru", "Hikaru Nakamura", 1795291900, GAMES),
        "key": "uuid-101",
        "row_id": 42,
        "links": {
            "unsubscribe_url": f"{BASE}/api/v1/unsubscribe?token=UNSUB.TOKEN",
            "manage_url": MANAGE,
        },
    },
    "confirmation": {
        "payload": NoPayload(),
        "key": "confirm:abc",
        "row_id": 43,
        "player_username": "hikaru",
        "links": {
            "confirm_url": f"{BASE}/api/v1/subscriptions/confirm?token=CONFIRM.TOKEN",
            "manage_url": MANAGE,
        },
    },
    "erase_request": {
        "payload": NoPayload(),
        "key": "erase:def",
        "row_id": 44,
        "links": {
            "erase_url": f"{BASE}/api/v1/subscribers/erase?token=ERASE.TOKEN",
            "manage_url": MANAGE,
        },
    },
}  # fmt: skip


def render(kind: str) -> bytes:
    spec = dict(MESSAGES[kind])
    return render_message(
        kind,
        spec.pop("payload"),
        sender=SENDER,
        public_base_url=BASE,
        list_domain=None,
        date=DATE,
        to="fan@example.com",
        **spec,
    )


def _headers(part: EmailMessage) -> list[tuple[str, str]]:
    return [
        (name, re.sub(r'boundary="[^"]*"', 'boundary="…"', str(value)))
        for name, value in part.items()
    ]


def shape(data: bytes) -> dict[str, Any]:
    """What a mail client sees: headers, then each part's headers and decoded text."""
    message = parse(data)
    assert not message.defects
    parts = []
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage) and not part.defects
        parts.append({"headers": _headers(part), "content": part.get_content()})
    return {"headers": _headers(message), "parts": parts}


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_messages_match_their_golden_file(kind: str) -> None:
    path = GOLDEN / f"{kind}.eml"
    data = render(kind)
    if os.environ.get("GOLDEN_UPDATE"):
        path.write_bytes(data)
    assert shape(data) == shape(path.read_bytes())
    # Same bytes too, but for the random MIME boundary.
    boundary = re.compile(rb"={15}\d+==")
    assert boundary.sub(b"B", data) == boundary.sub(b"B", path.read_bytes())


def _without_manage_link(content: str) -> str:
    lines = [line for line in content.split("\n") if "Manage your emails" not in line]
    return "\n".join(lines)


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_only_deliberate_changes_since_the_per_recipient_renderer(kind: str) -> None:
    before = shape((GOLDEN / f"{kind}.before.eml").read_bytes())
    now = shape(render(kind))
    list_ids = {h[1] for h in now["headers"] if h[0] == "List-Id"}
    if kind == "erase_request":  # about an address, not a player
        assert list_ids == {"Chess.com Helper <notifications.helper.example>"}
    else:
        assert list_ids == {"hikaru on Chess.com Helper <hikaru.players.helper.example>"}
    assert [h for h in now["headers"] if h[0] != "List-Id"] == [
        h for h in before["headers"] if h[0] != "List-Id"
    ]
    assert len(now["parts"]) == len(before["parts"]) == 2
    for new, old in zip(now["parts"], before["parts"], strict=True):
        assert new["headers"] == old["headers"]
        assert MANAGE in new["content"]
        assert _without_manage_link(new["content"]) == old["content"]
