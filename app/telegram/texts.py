"""What the bot says (SPEC §11): alerts in Telegram's HTML parse mode, every piece of
outside text escaped (a player's name, an opponent, a URL), and the replies to the
commands. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

HELP = (
    "I send an alert the moment a chess player you follow starts playing or streaming.\n"
    "To follow a player, open the player's page on the site and choose Telegram.\n\n"
    "/list: the players this chat follows\n"
    "/stop: stop every alert to this chat"
)
STARTED = "Done: this chat now gets an alert when <b>{player}</b> starts playing.\n" + (
    "/list shows what this chat follows, /stop ends every alert."
)
ALREADY = "This chat already gets alerts about <b>{player}</b>."
MANAGE_LABEL = "Pause, filter or unsubscribe"
BAD_TOKEN = (
    "Sorry, this link is not valid (it may be mistyped or incomplete). "
    "Please subscribe again from the site to get a fresh link."
)
EXPIRED_TOKEN = (
    "Sorry, this link has expired. Please subscribe again from the site to get a fresh link."
)
USED_TOKEN = (
    "This link was already used in another chat. "
    "Please subscribe again from the site to get a link for this chat."
)
GONE_SUBSCRIPTION = "This subscription no longer exists. Please subscribe again from the site."
NOTHING = "This chat follows no players. Open a player's page on the site to follow one."
STOPPED = "Stopped: this chat gets no more alerts ({count} subscription{s} ended)."
STOPPED_NONE = "This chat had no alerts to stop."


def _with_manage_link(reply: str, manage_url: str | None) -> str:
    """A reply ending with the chat's manage link (its page: every control per player)."""
    return reply if not manage_url else f"{reply}\n{link(manage_url, MANAGE_LABEL)}"


def started(player: str, manage_url: str | None = None) -> str:
    return _with_manage_link(STARTED.format(player=escape(player)), manage_url)


def already(player: str, manage_url: str | None = None) -> str:
    return _with_manage_link(ALREADY.format(player=escape(player)), manage_url)


def stopped(count: int) -> str:
    return STOPPED_NONE if count == 0 else STOPPED.format(count=count, s="" if count == 1 else "s")


def listing(players: Sequence[tuple[str, bool]], manage_url: str | None = None) -> str:
    """/list: (player, paused) per active subscription of the chat, and its manage link."""
    if not players:
        return _with_manage_link(NOTHING, manage_url)
    lines = [
        f"• <b>{escape(name)}</b>" + (" (paused)" if paused else "") for name, paused in players
    ]
    reply = "This chat follows:\n" + "\n".join(lines) + "\n\n/stop ends every alert."
    return _with_manage_link(reply, manage_url)


def link(url: str, label: str) -> str:
    return f'<a href="{escape(url, quote=True)}">{escape(label)}</a>'


def alert(
    headline: str, details: Sequence[str], watch_url: str, watch_label: str,
    unsubscribe_url: str | None,
) -> str:  # fmt: skip
    """One alert: the headline in bold, a few detail lines, the watch link, and how to
    stop (the unsubscribe link for this player, /stop for everything)."""
    parts = [f"<b>{escape(headline)}</b>"]
    parts.extend(escape(line) for line in details[:10])
    parts.append(link(watch_url, watch_label))
    footer = "/stop ends every alert"
    if unsubscribe_url:
        footer = link(unsubscribe_url, "Unsubscribe from this player") + " · " + footer
    parts.append(footer)
    return "\n".join(parts)
