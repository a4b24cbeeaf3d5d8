"""Stored payloads read back as their types (SPEC §5: the event table holds each payload
once); a digest stored before digests listed streams still reads."""

from __future__ import annotations

from app.models import NotificationType
from app.notifications.payloads import (
    Digest,
    LiveStream,
    StreamStarted,
    dump_payload,
    load_payload,
)

STREAM = StreamStarted(
    username="hikaru",
    name="Hikaru Nakamura",
    platform="chesscom",
    key="hikaru",
    started_at=1_795_300_000,
    stream=LiveStream("twitch", "https://twitch.tv/gmhikaru"),
)


def test_a_digest_with_streams_reads_back_as_it_was_stored() -> None:
    digest = Digest(local_date="2026-11-21", timezone="UTC", sessions=(), streams=(STREAM,))
    assert load_payload(NotificationType.digest, dump_payload(digest)) == digest


def test_a_digest_stored_before_streams_reads_with_none() -> None:
    stored = {"local_date": "2026-11-21", "timezone": "Europe/Berlin", "sessions": []}
    digest = load_payload(NotificationType.digest, stored)
    assert isinstance(digest, Digest) and digest.streams == ()
