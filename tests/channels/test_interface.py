"""The channel interface (issue 18 item 1, SPEC §11): one module per medium, one line in
the registry, and a pipeline that names none of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.channels.base import Channel, ConfirmBy, InvalidAddress
from app.channels.email import EmailChannel
from app.channels.registry import CHANNELS, build_channels, subscription_columns
from app.channels.webhook import WebhookChannel
from app.config import Settings
from app.emails.mailer import FileMailer
from app.models import Channel as ChannelName
from app.models import EmailSubscription
from app.tokens import TokenSigner
from tests.conftest import make_settings
from tests.fakes.webhooks import offline_resolver

ROOT = Path(__file__).resolve().parents[2]
# What the pipeline must not know: a medium's modules, or its name.
MEDIUM_MODULES = ("app.emails", "app.webhooks", "aiosmtplib", "httpx")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings("postgresql+asyncpg://unused@127.0.0.1/unused", tmp_path)


@pytest.fixture
def signer(settings: Settings) -> TokenSigner:
    return TokenSigner(settings.resolved_secret_key())


def test_every_registered_channel_is_a_channel_under_its_own_name() -> None:
    assert set(CHANNELS) == {c.value for c in ChannelName}
    for name, cls in CHANNELS.items():
        assert issubclass(cls, Channel)
        assert cls.name == name
        assert Path(__import__(cls.__module__).__file__ or "").exists()
        assert cls.__module__ == f"app.channels.{name}", "one module per channel"


def test_the_claim_reads_exactly_the_columns_the_channels_name() -> None:
    table = set(EmailSubscription.__table__.columns.keys())
    wanted = subscription_columns()
    assert set(wanted) <= table
    assert set(wanted) == {c for cls in CHANNELS.values() for c in cls.columns}


def _imports_and_names(path: Path) -> tuple[set[str], set[str]]:
    tree = ast.parse(path.read_text())
    modules: set[str] = set()
    strings: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.add(node.value)
    return modules, strings


@pytest.mark.parametrize("path", sorted((ROOT / "worker" / "outbox").glob("*.py")))
def test_the_pipeline_names_no_channel(path: Path) -> None:
    modules, strings = _imports_and_names(path)
    medium = {m for m in modules if m.startswith(MEDIUM_MODULES)}
    channel_modules = {
        m for m in modules if m.startswith("app.channels.") and m.split(".")[2] in CHANNELS
    }
    assert not medium and not channel_modules, (path.name, medium | channel_modules)
    assert not strings & set(CHANNELS), (path.name, strings & set(CHANNELS))


async def test_email_addresses_are_checked_and_stored_in_their_canonical_form(
    settings: Settings, signer: TokenSigner
) -> None:
    channel = EmailChannel(settings, signer)
    address = await channel.check_address({"email": "Fan@Example.COM"})
    assert address.recipient == "fan@example.com"
    assert dict(address.columns) == {"email": "fan@example.com"}
    for bad in ({"email": "not an address"}, {"email": None}, {}):
        with pytest.raises(InvalidAddress):
            await channel.check_address(bad)
    assert channel.confirmation().by is ConfirmBy.message
    await channel.aclose()


async def test_webhook_addresses_are_refused_before_any_connection(
    settings: Settings, signer: TokenSigner
) -> None:
    channel = WebhookChannel(settings, signer, resolver=offline_resolver)
    for given, why in [
        ({"url": "http://hooks.example.com/x", "format": "json"}, "https"),
        ({"url": "https://127.0.0.1/x", "format": "discord"}, "refused"),
        ({"url": "https://hooks.example.com/x", "format": "telex"}, "format"),
        ({"format": "slack"}, "required"),
    ]:
        with pytest.raises(InvalidAddress, match=why):
            await channel.check_address(given)
    assert channel.confirmation().by is ConfirmBy.message
    await channel.aclose()


async def test_build_channels_makes_one_of_each_with_a_part_given(
    settings: Settings, signer: TokenSigner, tmp_path: Path
) -> None:
    mailer = FileMailer(tmp_path / "outbox")
    channels = build_channels(settings, signer, {"email": {"mailer": mailer}})
    assert set(channels) == set(CHANNELS)
    assert channels["email"].mailer is mailer  # type: ignore[attr-defined]
    for channel in channels.values():
        assert not channel.outage.down
        await channel.aclose()
