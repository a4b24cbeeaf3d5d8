"""Discord, Slack and JSON bodies (issue 13 item 2); JSON signatures checked with the
`standardwebhooks` package as an independent verifier."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.notifications.payloads import GameRecord
from app.webhooks.events import (
    LiveMatchEvent,
    ManageLinkEvent,
    StreamStartedEvent,
    VerificationEvent,
)
from app.webhooks.payloads import (
    COLOURS,
    LiveMatchMessage,
    ManageLinkMessage,
    StreamMessage,
    VerificationMessage,
    WebhookFormat,
    render_body,
)
from app.webhooks.signing import new_secret, signed_headers
from tests.fakes.webhooks import discord_problem, slack_problem

UNSUB = "https://helper.example.org/api/v1/unsubscribe?token=abc.def"
CONFIRM = "https://helper.example.org/api/v1/subscriptions/confirm?token=xyz.123"
MANAGE = "https://helper.example.org/manage/webhook?token=mng.456"
T0 = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)


def game(n: int = 1, *, result: str | None = "win", opponent: str = "magnuscarlsen") -> GameRecord:
    end = int((T0 + timedelta(minutes=5 * n)).timestamp())
    return GameRecord(
        event_id=f"uuid-{n}",
        url=f"https://www.chess.com/game/live/{1000 + n}",
        end_time=end,
        start_time=end - 300,
        time_class="blitz",
        time_control="180+2",
        white="hikaru",
        black=opponent,
        black_rating=3280,
        white_result=result or "",
    )


def live(*games: GameRecord, name: str | None = "Hikaru Nakamura") -> LiveMatchMessage:
    return LiveMatchMessage(
        username="hikaru",
        player_name=name,
        games=games or (game(),),
        event_id="uuid-1",
        occurred_at=T0,
        unsubscribe_url=UNSUB,
        manage_url=MANAGE,
    )


VERIFY = VerificationMessage(
    username="hikaru", confirm_url=CONFIRM, unsubscribe_url=UNSUB, occurred_at=T0, manage_url=MANAGE
)


def test_discord_embed_carries_player_time_control_opponent_result_link_colour() -> None:
    body = json.loads(render_body("discord", live(game(1, result="win"), game(2, result="agreed"))))
    assert discord_problem(body) is None
    assert body["allowed_mentions"] == {"parse": []}
    assert "hikaru" in body["content"] and UNSUB in body["content"]
    first, second = body["embeds"]
    assert first["url"] == "https://www.chess.com/game/live/1001"
    assert first["author"]["name"] == "Hikaru Nakamura (hikaru)"
    fields = {f["name"]: f["value"] for f in first["fields"]}
    assert fields["Time control"] == r"3+2 \(blitz\)"
    assert fields["Opponent"] == r"magnuscarlsen \(3280\)"
    assert fields["Result"] == "Won"
    assert first["color"] == COLOURS["win"]
    assert second["color"] == COLOURS["draw"]
    assert {f["name"]: f["value"] for f in second["fields"]}["Result"] == "Draw by agreement"
    loss = json.loads(render_body("discord", live(game(result="resigned"))))["embeds"][0]
    assert loss["color"] == COLOURS["loss"]


def test_discord_hostile_names_neither_ping_nor_format() -> None:
    body = json.loads(
        render_body(
            "discord",
            live(game(opponent="@everyone"), name="**Boss** [click](https://evil.example) @here"),
        )
    )
    assert discord_problem(body) is None
    assert body["allowed_mentions"] == {"parse": []}
    assert "[click](https" not in body["content"]
    assert r"\*\*Boss\*\*" in body["content"]
    assert {f["name"]: f["value"] for f in body["embeds"][0]["fields"]}["Opponent"].startswith(
        r"\@everyone"
    )


def test_discord_many_games_fit_its_limits() -> None:
    body = json.loads(render_body("discord", live(*(game(n) for n in range(25)))))
    assert discord_problem(body) is None
    assert len(body["embeds"]) == 10
    assert "the last 10 of 25 games" in body["content"]
    assert body["embeds"][-1]["url"].endswith("/1024")  # the newest are shown


def test_slack_block_kit() -> None:
    body = json.loads(render_body("slack", live(game(1), game(2, result="timeout"))))
    assert slack_problem(body) is None
    assert body["text"].startswith("Hikaru Nakamura (hikaru) started playing live chess")
    header, g1, g2, footer = body["blocks"]
    assert "<https://www.chess.com/member/hikaru|" in header["text"]["text"]
    texts = [f["text"] for f in g1["fields"]]
    assert texts[0] == "*Time control*\n3+2 (blitz)"
    opponent = "<https://www.chess.com/member/magnuscarlsen|magnuscarlsen>"
    assert texts[1] == f"*Opponent*\n{opponent} (3280)"
    assert texts[2] == "*Result*\nWon"
    assert "<https://www.chess.com/game/live/1001|View on Chess.com>" in texts[3]
    assert g2["fields"][2]["text"] == "*Result*\nLost on time"
    assert f"<{UNSUB}|Unsubscribe>" in footer["elements"][0]["text"]
    assert f"<{MANAGE}|Pause or change filters>" in footer["elements"][0]["text"]


def test_slack_escapes_control_sequences() -> None:
    body = json.loads(render_body("slack", live(name="<!channel> & <https://evil|x>")))
    assert slack_problem(body) is None
    assert "<!channel>" not in json.dumps(body)
    assert "&lt;!channel&gt; &amp;" in body["blocks"][0]["text"]["text"]


def test_slack_many_games_fit_its_limits() -> None:
    body = json.loads(render_body("slack", live(*(game(n) for n in range(60)))))
    assert slack_problem(body) is None
    assert len(body["blocks"]) <= 50


def test_json_event_validates_against_the_documented_model() -> None:
    body = render_body("json", live(game(2, result="checkmated"), game(1)))
    event = LiveMatchEvent.model_validate_json(body)
    assert event.type == "live_match.started"
    assert event.timestamp == T0
    assert event.data.event_id == "uuid-1"
    assert event.data.player.username == "hikaru"
    assert [g.url[-4:] for g in event.data.games] == ["1001", "1002"]  # oldest first
    assert [g.outcome for g in event.data.games] == ["win", "loss"]
    assert event.data.links.unsubscribe == UNSUB
    assert event.data.links.manage == MANAGE


@pytest.mark.parametrize("fmt", list(WebhookFormat))
def test_verification_message_carries_confirm_and_unsubscribe_links(fmt: WebhookFormat) -> None:
    raw = render_body(fmt, VERIFY)
    text = raw.decode()
    assert CONFIRM in text and UNSUB in text and MANAGE in text
    body = json.loads(raw)
    if fmt is WebhookFormat.discord:
        assert discord_problem(body) is None
    elif fmt is WebhookFormat.slack:
        assert slack_problem(body) is None
    else:
        event = VerificationEvent.model_validate(body)
        assert event.data.links.confirm == CONFIRM
        assert event.data.links.manage == MANAGE


@pytest.mark.parametrize("fmt", list(WebhookFormat))
def test_manage_link_message_in_each_format(fmt: WebhookFormat) -> None:
    raw = render_body(fmt, ManageLinkMessage("hikaru", UNSUB, T0, MANAGE))
    assert MANAGE in raw.decode() and UNSUB in raw.decode()
    body = json.loads(raw)
    if fmt is WebhookFormat.discord:
        assert discord_problem(body) is None and "hikaru" in body["content"]
    elif fmt is WebhookFormat.slack:
        assert slack_problem(body) is None and "hikaru" in body["text"]
    else:
        event = ManageLinkEvent.model_validate(body)
        assert event.type == "subscription.manage_link"
        assert (event.data.links.manage, event.data.links.unsubscribe) == (MANAGE, UNSUB)


@pytest.mark.parametrize("fmt", list(WebhookFormat))
def test_every_live_message_carries_the_manage_and_unsubscribe_links(fmt: WebhookFormat) -> None:
    text = render_body(fmt, live()).decode()
    assert UNSUB in text and MANAGE in text


def test_rendering_is_deterministic() -> None:
    for fmt in WebhookFormat:
        assert render_body(fmt, live(game(1), game(2))) == render_body(fmt, live(game(1), game(2)))


def test_own_links_must_be_plain_urls() -> None:
    with pytest.raises(ValueError):
        render_body("slack", VerificationMessage("hikaru", "javascript:x", UNSUB, T0, MANAGE))
    with pytest.raises(ValueError):
        render_body("discord", VerificationMessage("hikaru", CONFIRM, UNSUB, T0, "x y"))


# -- signatures: verified by the standardwebhooks package ---------------------------


def test_signature_verifies_with_standardwebhooks() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    body = render_body("json", live())
    headers = signed_headers(secret, "msg_42", int(time.time()), body)
    assert Webhook(secret).verify(body, headers)["data"]["event_id"] == "uuid-1"


def test_tampered_body_old_timestamp_or_other_secret_fail_verification() -> None:
    secret = new_secret()
    body = render_body("json", live())
    now = int(time.time())
    headers = signed_headers(secret, "msg_42", now, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"hikaru", b"hikarU"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "msg_43"})
    stale = signed_headers(secret, "msg_42", now - 3600, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, stale)


def test_signature_over_non_ascii_body() -> None:
    secret = new_secret()
    body = render_body("json", live(name="Hikaru 中村"))
    assert "中村".encode() in body
    headers = signed_headers(secret, "msg_7", int(time.time()), body)
    assert Webhook(secret).verify(body, headers)["data"]["player"]["name"] == "Hikaru 中村"


# -- streams and Lichess (SPEC §10): the live URL in every format ------------------

TWITCH = "https://twitch.tv/gmhikaru"


def stream(
    url: str | None = TWITCH, *, kind: str = "twitch", platform: str = "chesscom"
) -> StreamMessage:
    username = "hikaru" if platform == "chesscom" else "drnykterstein"
    return StreamMessage(
        username=username,
        player_name="Hikaru Nakamura" if platform == "chesscom" else None,
        platform=platform,
        stream_type=kind,
        stream_url=url,
        event_id=f"stream:{platform}:{username}:2026-11-21T20:00:00Z",
        occurred_at=T0,
        unsubscribe_url=UNSUB,
        manage_url=MANAGE,
    )


def lichess_game(game_id: str = "q7ZvsdUF") -> GameRecord:
    start = int(T0.timestamp())
    return GameRecord(
        event_id=game_id,
        url=f"https://lichess.org/{game_id}",
        end_time=start,
        start_time=start,
        time_class="blitz",
        time_control="3+2",
        in_progress=True,
    )


def lichess_live() -> LiveMatchMessage:
    return LiveMatchMessage(
        username="drnykterstein",
        player_name=None,
        games=(lichess_game(),),
        event_id="q7ZvsdUF",
        occurred_at=T0,
        unsubscribe_url=UNSUB,
        manage_url=MANAGE,
        platform="lichess",
    )


@pytest.mark.parametrize("fmt", list(WebhookFormat))
def test_a_stream_alert_carries_the_live_url_and_the_links_in_every_format(
    fmt: WebhookFormat,
) -> None:
    raw = render_body(fmt, stream())
    text = raw.decode()
    assert TWITCH in text and UNSUB in text and MANAGE in text
    body = json.loads(raw)
    if fmt is WebhookFormat.discord:
        assert discord_problem(body) is None
        assert body["allowed_mentions"] == {"parse": []}
        assert body["content"].startswith(
            f"**Hikaru Nakamura \\(hikaru\\)** is live on Twitch: <{TWITCH}>"
        )
        (embed,) = body["embeds"]
        assert embed["url"] == TWITCH and embed["title"] == "Live on Twitch"
        assert embed["author"]["url"] == "https://www.chess.com/member/hikaru"
    elif fmt is WebhookFormat.slack:
        assert slack_problem(body) is None
        assert body["text"] == f"Hikaru Nakamura (hikaru) is live on Twitch: {TWITCH}"
        headline, watch, footer = body["blocks"]
        assert headline["text"]["text"].endswith("is live on Twitch*")
        assert watch["text"]["text"] == f"<{TWITCH}|Watch the stream>"
        assert f"<{UNSUB}|Unsubscribe>" in footer["elements"][0]["text"]
    else:
        event = StreamStartedEvent.model_validate_json(raw)
        assert event.type == "stream.started"
        assert event.timestamp == event.data.started_at == T0
        assert event.data.event_id == "stream:chesscom:hikaru:2026-11-21T20:00:00Z"
        assert (event.data.stream.type, event.data.stream.url) == ("twitch", TWITCH)
        player = event.data.player
        assert (player.username, player.platform, player.key) == ("hikaru", "chesscom", "hikaru")
        assert player.profile_url == "https://www.chess.com/member/hikaru"
        assert (event.data.links.unsubscribe, event.data.links.manage) == (UNSUB, MANAGE)


def test_a_lichess_stream_links_the_streamer_page_and_names_the_lichess_player() -> None:
    page = "https://lichess.org/streamer/drnykterstein"
    message = stream(page, kind="lichess", platform="lichess")
    event = StreamStartedEvent.model_validate_json(render_body("json", message))
    assert event.data.stream.url == page
    assert event.data.player.platform == "lichess"
    assert event.data.player.key == "lichess:drnykterstein"
    assert event.data.player.profile_url == "https://lichess.org/@/drnykterstein"
    discord = json.loads(render_body("discord", message))
    assert f"is live on Lichess: <{page}>" in discord["content"]
    assert discord_problem(discord) is None


@pytest.mark.parametrize("fmt", list(WebhookFormat))
def test_a_stream_without_a_usable_url_links_the_players_profile(fmt: WebhookFormat) -> None:
    for url in (None, "javascript:alert(1)", "https://evil.example/x>|<!channel>"):
        text = render_body(fmt, stream(url)).decode()
        assert "javascript:" not in text and "evil.example" not in text
        assert "https://www.chess.com/member/hikaru" in text


def test_hostile_stream_names_neither_ping_nor_format() -> None:
    message = dataclasses.replace(
        stream(kind="<!channel> @everyone"), player_name="**Boss** <!here>"
    )
    discord = json.loads(render_body("discord", message))
    assert discord["allowed_mentions"] == {"parse": []} and discord_problem(discord) is None
    assert r"\*\*Boss\*\*" in discord["content"]
    slack = json.loads(render_body("slack", message))
    assert slack_problem(slack) is None and "<!channel>" not in json.dumps(slack)
    assert "<!here>" not in json.dumps(slack)


def test_a_stream_event_is_signed_like_every_json_event() -> None:
    secret = new_secret()
    body = render_body("json", stream())
    headers = signed_headers(secret, "msg_9", int(time.time()), body)
    assert Webhook(secret).verify(body, headers)["data"]["stream"]["url"] == TWITCH
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"gmhikaru", b"gmhikarU"), headers)


def test_a_lichess_game_is_announced_as_it_starts_with_its_watch_link() -> None:
    event = LiveMatchEvent.model_validate_json(render_body("json", lichess_live()))
    player = event.data.player
    assert (player.platform, player.key) == ("lichess", "lichess:drnykterstein")
    assert player.profile_url == "https://lichess.org/@/drnykterstein"
    (g,) = event.data.games
    assert g.in_progress and g.url == "https://lichess.org/q7ZvsdUF"
    assert (g.time_class, g.time_control) == ("blitz", "3+2")
    assert g.opponent is None and g.result is None
    discord = json.loads(render_body("discord", lichess_live()))
    assert discord_problem(discord) is None
    assert "started playing live chess on Lichess" in discord["content"]
    (embed,) = discord["embeds"]
    assert embed["url"] == "https://lichess.org/q7ZvsdUF"
    assert embed["title"] == "Blitz game, playing now"
    slack = json.loads(render_body("slack", lichess_live()))
    assert slack_problem(slack) is None
    assert slack["text"] == "drnykterstein started playing live chess on Lichess"
    assert "<https://lichess.org/q7ZvsdUF|Watch live on Lichess>" in json.dumps(slack)


def test_a_chesscom_session_names_the_platform_and_the_player_key() -> None:
    event = LiveMatchEvent.model_validate_json(render_body("json", live()))
    assert (event.data.player.platform, event.data.player.key) == ("chesscom", "hikaru")
    assert not event.data.games[0].in_progress


@pytest.mark.parametrize("fmt", list(WebhookFormat))
def test_the_verification_of_a_lichess_player_names_lichess(fmt: WebhookFormat) -> None:
    message = dataclasses.replace(VERIFY, username="drnykterstein", platform="lichess")
    body = json.loads(render_body(fmt, message))
    if fmt is WebhookFormat.json:
        player = VerificationEvent.model_validate(body).data.player
        assert (player.platform, player.key) == ("lichess", "lichess:drnykterstein")
    else:
        assert "on Lichess" in json.dumps(body)
