"""Log lines: plain text or one JSON object a line (`--log-format json`), and the request id
of the request a line was logged while handling.

The API sets `REQUEST_ID` as it starts on a request (api.app); the context travels with
the request to the worker thread that serves it, so every line logged meanwhile, by any
module, carries it. A JSON line holds `time` (ISO 8601, UTC), `level`, `logger`,
`message`, `request_id` when there is one, and `exception` with the traceback when one is
logged.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

TEXT, JSON = "text", "json"
FORMATS = (TEXT, JSON)
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "dwsched_request_id", default=None
)
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the request id of its context."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    """The text format, with ` request_id=...` when the line was logged while handling a
    request and does not say it already."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = REQUEST_ID.get()
        if request_id is not None and request_id not in text:
            return f"{text} request_id={request_id}"
        return text


def configure(level: str, log_format: str = TEXT) -> None:
    """Log to stderr at `level` (debug, info, ...) in `log_format` (text or json)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == JSON else _TextFormatter(_TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
