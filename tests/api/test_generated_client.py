"""A client generated from the live schema works as a REST client would use it (issue 11 §4).

openapi-python-client reads `/openapi.json` from the running API, writes a package into
a temporary directory, and the test imports it and talks to the API over a real
loopback socket: track a player, subscribe, and read a 404 as a typed error.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from app.main import create_app
from tests.conftest import make_settings
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.server import run_asgi_in_thread

pytestmark = pytest.mark.slow
PACKAGE = "chesscom_helper_client"


@pytest.fixture
def served(clean_db: str, tmp_path: Path) -> Iterator[str]:
    simulator = ChessComSimulator()
    simulator.add_player("Hikaru", name="Hikaru Nakamura", title="GM", player_id=15448422)
    app = create_app(
        make_settings(clean_db, tmp_path / "data"),
        chesscom_transport=simulator.transport(),
    )
    with run_asgi_in_thread(app) as base:
        yield base


@pytest.fixture
def client_package(served: str, tmp_path: Path) -> Iterator[ModuleType]:
    config = tmp_path / "client.yaml"
    config.write_text(
        f"project_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\npost_hooks: []\n"
    )
    out = tmp_path / "generated" / PACKAGE
    cli = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [
            str(cli),
            "generate",
            f"--url={served}/openapi.json",
            f"--output-path={out}",
            "--meta=none",
            f"--config={config}",
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(out.parent))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out.parent))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_generated_client_tracks_subscribes_and_reads_a_typed_404(
    client_package: ModuleType, served: str
) -> None:
    players_create = _module("api.players.players_create")
    players_get = _module("api.players.players_get")
    subscriptions_create = _module("api.subscriptions.subscriptions_create")
    models = _module("models")

    with client_package.Client(base_url=served, raise_on_unexpected_status=True) as client:
        created = players_create.sync_detailed(
            client=client, body=models.TrackByKey(username="Hikaru")
        )
        assert created.status_code == 201
        player = created.parsed
        assert isinstance(player, models.PlayerOut)
        assert (player.username, player.player_id, player.title) == ("hikaru", 15448422, "GM")

        again = players_get.sync(client=client, username="HIKARU")
        assert isinstance(again, models.PlayerOut) and again.player_id == 15448422

        subscribed = subscriptions_create.sync_detailed(
            client=client,
            # One schema per channel (the body is oneOf): the email one.
            body=models.EmailSubscribe(email="fan@example.com", username="hikaru"),
        )
        assert subscribed.status_code == 202
        assert isinstance(subscribed.parsed, models.SubscriptionStatus)
        assert subscribed.parsed.status.value == "pending_confirmation"

        missing = players_get.sync_detailed(client=client, username="nobody")
        assert missing.status_code == 404
        assert isinstance(missing.parsed, models.ErrorBody)
        assert missing.parsed.detail == "Player 'nobody' is not tracked"
