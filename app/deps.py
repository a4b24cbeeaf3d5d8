"""Annotated dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.chesscom.client import ChessComClient
from app.config import Settings
from app.db import SessionDep
from app.subscriptions.tokens import TokenSigner


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _chesscom(request: Request) -> ChessComClient:
    client: ChessComClient = request.app.state.chesscom
    return client


def _signer(request: Request) -> TokenSigner:
    signer: TokenSigner = request.app.state.signer
    return signer


SettingsDep = Annotated[Settings, Depends(_settings)]
ChessComDep = Annotated[ChessComClient, Depends(_chesscom)]
SignerDep = Annotated[TokenSigner, Depends(_signer)]

__all__ = ["ChessComDep", "SessionDep", "SettingsDep", "SignerDep"]
