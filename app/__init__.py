"""Chess.com Helper: track Chess.com players, email subscribers when they play live."""

__version__ = "0.1.0"
