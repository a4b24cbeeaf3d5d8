"""`python -m tests.fakes.stack` (the README's first screen: the app against the
simulators): they come up on loopback, and the environment it prints is one the app
accepts."""

from __future__ import annotations

import httpx
import pytest

from app.config import Settings
from tests.fakes.stack import main, simulators


def test_the_stack_serves_every_simulator_and_an_env_the_app_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with simulators() as (scope, env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings()  # from the environment, as `make run` reads it
        assert settings.webhook_allow_private and settings.telegram_enabled
        scope["chesscom"].add_player("hikaru")
        scope["lichess"].add_user("DrNykterstein")
        player = httpx.get(
            f"{settings.chesscom_api_base}/player/hikaru",
            headers={"User-Agent": f"chesscom-helper ({settings.contact_email})"},
            timeout=5,
        )
        assert player.status_code == 200 and player.json()["username"] == "hikaru"
        lichess_base = str(settings.lichess_api_base).rstrip("/")
        user = httpx.get(f"{lichess_base}/api/user/drnykterstein", timeout=5)
        assert user.status_code == 200
        for served in ("push", "tg", "ntfy", "discord", "slack", "receiver"):
            assert scope[served].base_url.startswith("http://127.0.0.1:")


def test_the_console_runs_what_it_is_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = iter(['lichess.add_user("Zeta")', 'print("playing:", lichess.playing("Zeta"))'])

    def typed(prompt: str = "") -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", typed)
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "make run" in out and "playing: None" in out
