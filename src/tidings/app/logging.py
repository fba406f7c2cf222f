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
    # response URLs, a command's URL may hold a token of its own, and a webhook's URL
    # its receiver's token in the query (outbound/http.py): not even at info
    "httpx": logging.WARNING,
    "httpcore": logging.INFO,
    "redis": logging.INFO,
    "multipart": logging.INFO,
}
_HANDLER_NAME = "tidings"
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
    file their secret scan reads). Every line is rendered by structlog, the standard
    library's records too (uvicorn's, Alembic's, the drivers'): with `fmt="json"` each
    line is one JSON object, with the context of the request or connection it belongs to
    (`request_id`, `conn_id`, `user_id`: structlog's context variables)."""
    stream = stream or sys.stderr
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
    ]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)  # configured before (others' handlers, e.g. pytest's, stay)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Drivers log statements with their parameters, and the WebSocket library every frame,
    # at debug level (SQLAlchemy even at info): token hashes, TOTP secrets, auth frames,
    # names typed at login. Never that, whatever the level asked for.
    asked = logging.getLevelName(level.upper())
    for name, floor in _CHATTY_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, asked))
    # uvicorn's own loggers keep no handler of their own (log_config=None: app/server.py)
    # and pass their records up to the root's.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
