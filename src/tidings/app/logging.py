"""structlog: JSON lines in production, key-value in development. Never log secrets."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_CHATTY_LOGGERS = {
    "aiosqlite": logging.INFO,
    "asyncpg": logging.INFO,
    "sqlalchemy": logging.WARNING,
    "alembic": logging.INFO,
    "websockets": logging.INFO,
    "uvicorn.error": logging.INFO,
    "uvicorn.error.websocket": logging.WARNING,  # a line per connection (app/ws_protocol.py)
    # a line per request with its whole URL: the outgoing calls of integrations carry
    # response URLs, and a command's URL may hold a token of its own
    "httpx": logging.WARNING,
    "httpcore": logging.INFO,
    "redis": logging.INFO,
    "multipart": logging.INFO,
}
_SECRET_KEYS = {
    "password",
    "token",
    "authorization",
    "totp",
    "secret",
    "admin_password",
    "secret_keys",
}


def _drop_secrets(
    _logger: object, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def configure_logging(
    level: str = "info", fmt: str = "json", stream: TextIO | None = None
) -> None:
    """Log to `stream` (default: standard error; the tests' in-process servers log to a
    file their secret scan reads)."""
    stream = stream or sys.stderr
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    logging.basicConfig(stream=stream, level=level.upper(), format="%(message)s")
    # Drivers log statements with their parameters, and the WebSocket library every frame,
    # at debug level (SQLAlchemy even at info): token hashes, TOTP secrets, auth frames,
    # names typed at login. Never that, whatever the level asked for.
    asked = logging.getLevelName(level.upper())
    for name, floor in _CHATTY_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, asked))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
