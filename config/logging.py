import json
import logging
from datetime import UTC, datetime

from django.http import HttpRequest

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            if isinstance(value, HttpRequest):
                # django.request attaches the request; its repr carries the query string (phone numbers...)
                data["method"], data["path"] = value.method, value.path
            elif isinstance(value, str | int | float | bool | None):
                data[key] = value
            else:
                data[key] = type(value).__name__
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)
