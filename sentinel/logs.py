"""Structured logging: a fixed event name plus key=value fields, to a file under home."""

from __future__ import annotations

import logging
from pathlib import Path

LOGGER_NAME = "sentinel"


class KeyValueFormatter(logging.Formatter):
    """``2026-01-05T02:00:01 INFO sentinel.warehouse event key=value …``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        text = f"{stamp} {record.levelname} {record.name} {record.getMessage()}"
        return f"{text} {extra}" if extra else text


def configure_logging(logs_dir: Path, level: int = logging.INFO) -> None:
    """Send Sentinel's log records to ``logs_dir/sentinel.log`` (created if missing)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    target = (logs_dir / "sentinel.log").resolve()
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == target:
            return
    logs_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(KeyValueFormatter())
    logger.addHandler(handler)


def log_event(logger: logging.Logger, event: str, **fields: object) -> None:
    """Log one structured event at INFO level."""
    logger.info(event, extra={"fields": fields})
