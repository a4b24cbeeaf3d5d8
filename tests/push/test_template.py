"""One event's notification is encoded once; each browser's plaintext only puts its
unsubscribe link in (render once per event, per recipient only what differs)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from app.push.message import MAX_PLAINTEXT_BYTES, Notification, NotificationTemplate

TEXT = st.text(max_size=200)


@given(
    title=TEXT,
    body=st.text(max_size=5000),
    url=TEXT,
    tag=TEXT,
    link=st.text(max_size=300),
)
def test_a_browsers_plaintext_is_the_notification_with_its_link(
    title: str, body: str, url: str, tag: str, link: str
) -> None:
    """Byte for byte what the notification with that link encodes to, long bodies
    (cut to fit one push message) and odd characters included."""
    shared = Notification(title=title, body=body, url=url, tag=tag)
    expected = replace(shared, unsubscribe_url=link).encode()
    assert NotificationTemplate.of(shared).encode(link) == expected


def test_the_shared_part_is_encoded_once() -> None:
    shared = Notification(
        title="Hikaru Nakamura is playing", body="180+2 blitz", url="https://x.test/g", tag="p"
    )
    template = NotificationTemplate.of(shared)
    assert template.head.startswith(b'{"title":"Hikaru Nakamura is playing"')
    assert template.tail == b"}"
    link = "https://helper.test/api/v1/unsubscribe?token=abc.def"
    assert template.encode(link) == template.head + b'"' + link.encode() + b'"}'


def test_a_body_too_long_for_one_message_is_still_cut_for_each_browser() -> None:
    shared = Notification(title="t", body="x" * MAX_PLAINTEXT_BYTES, url="u", tag="p")
    raw = NotificationTemplate.of(shared).encode("https://helper.test/u?token=" + "t" * 80)
    assert len(raw) <= MAX_PLAINTEXT_BYTES
    assert (
        raw == replace(shared, unsubscribe_url="https://helper.test/u?token=" + "t" * 80).encode()
    )
