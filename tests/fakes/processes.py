"""What every child process of the tests shares: a free loopback port, and an environment
built explicitly, so that no setting leaks in from the developer's shell."""

from __future__ import annotations

import os
import socket

from app.config import Settings

_SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env(**values: str) -> dict[str, str]:
    """The shell's environment without any of our settings, then `values` (and unbuffered
    output, so a child's log is complete when it is read)."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTING_NAMES}
    env.update(PYTHONUNBUFFERED="1", **values)
    return env
