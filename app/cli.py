"""Operator CLI: `python -m app.cli tokens create NAME | list | revoke NAME`,
`python -m app.cli prune [--dry-run]` and `python -m app.cli vapid-key`.

A created token is printed once; only its SHA-256 is stored. `prune` applies
NOTIFICATION_RETENTION_DAYS now (the worker does it at start and hourly).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.admin_tokens import hash_token, new_token
from app.config import load_settings
from app.db import create_engine, create_session_factory
from app.models import ApiToken
from app.notifications.retention import prune
from app.push.vapid import application_server_key, b64url


async def _create(name: str) -> int:
    settings = load_settings()
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        token = new_token()
        async with create_session_factory(engine)() as session, session.begin():
            session.add(ApiToken(name=name, token_hash=hash_token(token)))
    except IntegrityError:
        print(f"a token named {name!r} exists already; revoke it first", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(token)
    print(f"token {name!r} created; it is shown only once", file=sys.stderr)
    return 0


async def _list() -> int:
    settings = load_settings()
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with create_session_factory(engine)() as session:
            rows = (await session.execute(select(ApiToken).order_by(ApiToken.name))).scalars()
            print(f"{'NAME':<30} {'CREATED':<26} LAST USED")
            for t in rows:
                used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never"
                print(f"{t.name:<30} {t.created_at.isoformat(timespec='seconds'):<26} {used}")
    finally:
        await engine.dispose()
    return 0


async def _revoke(name: str) -> int:
    settings = load_settings()
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            result = await session.execute(
                delete(ApiToken).where(ApiToken.name == name).returning(ApiToken.id)
            )
            gone = result.first() is not None
    finally:
        await engine.dispose()
    if not gone:
        print(f"no token named {name!r}", file=sys.stderr)
        return 1
    print(f"token {name!r} revoked", file=sys.stderr)
    return 0


async def _prune(dry_run: bool) -> int:
    settings = load_settings()
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        report = await prune(
            create_session_factory(engine), settings.notification_retention_days, dry_run=dry_run
        )
    finally:
        await engine.dispose()
    print(
        f"{report.summary()} (sent/failed older than "
        f"{settings.notification_retention_days} days; pending rows are kept)"
    )
    return 0


def _vapid_key() -> int:
    """Print a new VAPID private key (raw, base64url) for VAPID_PRIVATE_KEY; needs no
    database and no settings."""
    key = ec.generate_private_key(ec.SECP256R1())
    print(b64url(key.private_numbers().private_value.to_bytes(32, "big")))
    print(f"public (applicationServerKey): {application_server_key(key)}", file=sys.stderr)
    return 0


def _name(value: str) -> str:
    value = value.strip()
    if not (1 <= len(value) <= 100) or not value.isprintable():
        raise argparse.ArgumentTypeError("a name is 1-100 printable characters")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__)
    sub = parser.add_subparsers(dest="group", required=True)
    tokens = sub.add_parser("tokens", help="admin API tokens")
    actions = tokens.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a token and print it once")
    create.add_argument("name", type=_name)
    actions.add_parser("list", help="list tokens (names and use, never the secrets)")
    revoke = actions.add_parser("revoke", help="delete a token")
    revoke.add_argument("name", type=_name)
    prune_cmd = sub.add_parser(
        "prune", help="delete sent/failed logs older than NOTIFICATION_RETENTION_DAYS"
    )
    prune_cmd.add_argument(
        "--dry-run", action="store_true", help="report what would be deleted, delete nothing"
    )
    sub.add_parser("vapid-key", help="print a new VAPID_PRIVATE_KEY for Web Push")
    args = parser.parse_args(argv)
    if args.group == "vapid-key":
        return _vapid_key()
    if args.group == "prune":
        return asyncio.run(_prune(args.dry_run))
    if args.action == "create":
        return asyncio.run(_create(args.name))
    if args.action == "list":
        return asyncio.run(_list())
    return asyncio.run(_revoke(args.name))


if __name__ == "__main__":
    raise SystemExit(main())
