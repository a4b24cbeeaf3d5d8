"""Every simulator on loopback, for trying the product by hand: `make run` against them.

    .venv/bin/python -m tests.fakes.stack          # simulators + a console; prints the env
    .venv/bin/python -m tests.fakes.stack --run    # ... and runs `make run` with that env

The simulators are the tests' own (Chess.com, Lichess, a Web Push service that checks
VAPID and decrypts, Telegram's Bot API, an ntfy server, and webhook receivers in the
Discord, Slack and generic flavours), served on 127.0.0.1 until the console ends. The
console is a Python prompt with them in scope, for example::

    chesscom.add_player("hikaru")
    chesscom.add_game("hikaru", end_time=int(time.time()) - 60, time_control="180+2")
    chesscom.set_streamer("gothamchess", live=False); chesscom.start_stream("gothamchess")
    lichess.add_user("DrNykterstein"); lichess.start_game("DrNykterstein", "3+2")
    discord.url("/hook")   # a webhook URL to subscribe; discord.requests: what it got
    ntfy.url("my_topic"); ntfy.topic("my_topic")
    tg.user_sends(42, "/start <token>"); tg.to(42)   # a chat pressing Start, its messages
    push.messages          # Web Push messages received (decrypted when the key is known)

Nothing here reaches beyond the machine: every server listens on 127.0.0.1, and the app
is told to accept loopback webhook and push URLs (WEBHOOK_ALLOW_PRIVATE=true).
"""

from __future__ import annotations

import argparse
import code
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.lichess import LichessSimulator
from tests.fakes.ntfy import serve_ntfy
from tests.fakes.push_service import serve_push_service
from tests.fakes.server import run_asgi_in_thread
from tests.fakes.telegram import TOKEN, serve_telegram
from tests.fakes.webhooks import serve_receiver

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def simulators() -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """The simulators, served; what the console names them, and the app's environment."""
    with ExitStack() as stack:
        chesscom, lichess = ChessComSimulator(), LichessSimulator()
        chesscom_url = stack.enter_context(run_asgi_in_thread(chesscom))
        lichess_url = stack.enter_context(run_asgi_in_thread(lichess))
        tg = stack.enter_context(serve_telegram())
        scope: dict[str, Any] = {
            "time": time,
            "chesscom": chesscom,
            "lichess": lichess,
            "push": stack.enter_context(serve_push_service()),
            "tg": tg,
            "ntfy": stack.enter_context(serve_ntfy()),
            "discord": stack.enter_context(serve_receiver("discord")),
            "slack": stack.enter_context(serve_receiver("slack")),
            "receiver": stack.enter_context(serve_receiver("generic")),
        }
        env = {
            "CHESSCOM_API_BASE": f"{chesscom_url}/pub",
            "LICHESS_API_BASE": lichess_url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": tg.base_url,
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "CONTACT_EMAIL": os.environ.get("CONTACT_EMAIL", "you@example.com"),
            # The streamer list is read every 60 s by default; a minute is long by hand.
            "STREAMERS_POLL_SECONDS": os.environ.get("STREAMERS_POLL_SECONDS", "5"),
        }
        yield scope, env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.stack", description=__doc__)
    parser.add_argument("--run", action="store_true", help="also run `make run` with the env")
    args = parser.parse_args(argv)
    with simulators() as (scope, env):
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        print(f"Simulators up. Run the app against them with:\n\n  {exports} make run\n")
        app = None
        if args.run:
            app = subprocess.Popen(
                ["make", "run"], cwd=ROOT, env={**os.environ, **env}, start_new_session=True
            )
            scope["app"] = app
        try:
            code.interact(
                banner="In scope: " + ", ".join(scope) + " (Ctrl-D ends everything)",
                local=scope,
                exitmsg="",
            )
        finally:
            if app is not None and app.poll() is None:
                os.killpg(app.pid, signal.SIGTERM)
                app.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
