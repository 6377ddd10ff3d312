"""One JSON object per log line, on stderr."""

from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    """Every line names its service, so the logs of all processes can be merged and grepped for
    one send's message_id or status_id (fields that the services add with `extra={"fields": ...}`)."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "service": self.service,
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


SENDS = logging.getLogger("mailstream.sends")


def log_send(step: str, **ids: object) -> None:
    """One line per send and step (accepted, rendered, delivered, opened...) with its message_id and
    status_id, so that `grep <id> .mailstream/logs/*.log` follows one send through every service."""
    if SENDS.isEnabledFor(logging.INFO):
        SENDS.info(step, extra={"fields": ids})


def configure_logging(service: str, level: str = "INFO", *, send_log: bool = True) -> logging.Logger:
    """send_log=False silences log_send (~18 us per line; Postfix, the peer, also logs every message)."""
    SENDS.setLevel(logging.NOTSET if send_log else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every reconnect attempt at ERROR; keep it at WARNING.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    return logging.getLogger(f"mailstream.{service}")
