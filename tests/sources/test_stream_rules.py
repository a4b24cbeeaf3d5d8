"""The stream rules of SPEC §10 and Chess.com's streamer list as we read it."""

from __future__ import annotations

import pytest

from app.chesscom.streamers import Streamer, Streamers, live_stream, live_streams
from app.notifications.payloads import LiveStream
from worker.sources.streams import (
    RESUME_GRACE_SECONDS,
    StreamState,
    observe_stream,
    stream_event_key,
)

TWITCH = LiveStream("twitch", "https://twitch.tv/gmhikaru")


def run(reads: list[tuple[float, LiveStream | None]]) -> list[float | None]:
    state = StreamState()
    out: list[float | None] = []
    previous: float | None = None
    for now, live in reads:
        state, start = observe_stream(state, live, now=now, previous_read=previous)
        out.append(None if start is None else start.started_at)
        previous = now
    return out


@pytest.mark.parametrize(
    ("reads", "starts"),
    [
        # Baseline: already live when first read never alerts, nor while it goes on.
        ([(0, TWITCH), (60, TWITCH)], [None, None]),
        # Not live at the baseline, then live: one alert at that read.
        ([(0, None), (60, TWITCH), (120, TWITCH)], [None, 60, None]),
        # Stops and resumes within 10 minutes: the same stream.
        (
            [(0, None), (60, TWITCH), (120, None), (60 + RESUME_GRACE_SECONDS, TWITCH)],
            [None, 60, None, None],
        ),
        # Resumes later than that: a new stream.
        (
            [(0, None), (60, TWITCH), (120, None), (61 + RESUME_GRACE_SECONDS, TWITCH)],
            [None, 60, None, 61 + RESUME_GRACE_SECONDS],
        ),
        # Live at the baseline, off for long, live again: alerts.
        ([(0, TWITCH), (60, None), (3600, TWITCH)], [None, None, 3600]),
    ],
)
def test_stream_transitions(
    reads: list[tuple[float, LiveStream | None]], starts: list[float | None]
) -> None:
    assert run(reads) == starts


def test_streaming_state_says_the_url_while_live_only() -> None:
    state, _ = observe_stream(StreamState(), None, now=0)
    state, _ = observe_stream(state, TWITCH, now=60)
    assert state.live and state.url == TWITCH.url
    state, _ = observe_stream(state, None, now=120)
    assert not state.live and state.url is None


def test_a_steady_state_is_not_rewritten() -> None:
    live, _ = observe_stream(StreamState(), TWITCH, now=0)
    assert observe_stream(live, TWITCH, now=60, previous_read=0)[0] is live
    off, _ = observe_stream(StreamState(checked=True), None, now=0)
    assert observe_stream(off, None, now=60, previous_read=0)[0] is off


def test_the_event_key_names_platform_player_and_start() -> None:
    assert stream_event_key("chesscom", "Hikaru", 1_700_000_000) == (
        "stream:chesscom:hikaru:2023-11-14T22:13:20Z"
    )


def entry(**fields: object) -> Streamer:
    return Streamer.model_validate({"username": "Hikaru", **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"is_live": False}, None),
        (
            {"is_live": True, "twitch_url": "https://twitch.tv/gmhikaru"},
            ("twitch", "https://twitch.tv/gmhikaru"),
        ),
        (
            {
                "is_live": False,
                "platforms": [
                    {"type": "twitch", "stream_url": "https://twitch.tv/a", "is_live": True},
                    {
                        "type": "youtube",
                        "stream_url": "https://youtube.com/a",
                        "is_live": True,
                        "is_main_live_platform": True,
                    },
                ],
            },
            ("youtube", "https://youtube.com/a"),
        ),
        (
            {
                "is_live": False,
                "platforms": [
                    {"type": "kick", "channel_url": "https://kick.com/a", "is_live": True}
                ],
            },
            ("kick", "https://kick.com/a"),
        ),
        (
            {
                "is_live": False,
                "platforms": [
                    {"type": "twitch", "stream_url": "https://twitch.tv/a", "is_live": False}
                ],
            },
            None,
        ),
    ],
)
def test_who_is_live_and_where(fields: dict[str, object], expected: tuple[str, str] | None) -> None:
    stream = live_stream(entry(**fields))
    assert (None if stream is None else (stream.type, stream.url)) == expected


def test_the_list_is_matched_by_username_case_insensitively() -> None:
    listed = Streamers.model_validate(
        {
            "streamers": [
                {"username": "GMHikaru", "is_live": True, "twitch_url": "https://t/1"},
                {"username": "other", "is_live": False},
            ]
        }
    )
    assert set(live_streams(listed)) == {"gmhikaru"}
