"""Player keys, as the players package names them: the rule itself lives in
`app.player_keys` (a foundation module: schemas and platform clients use it too)."""

from app.player_keys import (
    CHESSCOM,
    CHESSCOM_USERNAME,
    KEY_DESCRIPTION,
    KEY_PATTERN,
    LICHESS,
    LICHESS_USERNAME,
    MAX_KEY_LENGTH,
    InvalidKey,
    Platform,
    PlayerKey,
    key_of,
    parse_key,
)

__all__ = [
    "CHESSCOM",
    "CHESSCOM_USERNAME",
    "KEY_DESCRIPTION",
    "KEY_PATTERN",
    "LICHESS",
    "LICHESS_USERNAME",
    "MAX_KEY_LENGTH",
    "InvalidKey",
    "Platform",
    "PlayerKey",
    "key_of",
    "parse_key",
]
