"""The ASGI application: `app.main:app` (SPEC §1). The API itself is the `app.api` package."""

from __future__ import annotations

from fastapi import FastAPI

from app.api.app import create_app
from app.config import load_settings
from app.logging import configure_logging

__all__ = ["create_app"]


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` is built on first access, so importing this module reads no settings.
    if name == "app":
        # The server imports this in each of its WEB_CONCURRENCY processes: the logging
        # set up by `python -m app` in the parent does not carry over to them.
        settings = load_settings()
        configure_logging(settings)
        application = create_app(settings)
        application.state.freeze_gc = True  # a server process: see freeze_startup_objects
        globals()["app"] = application
        return application
    raise AttributeError(name)
