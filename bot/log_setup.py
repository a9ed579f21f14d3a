"""One logging setup for the whole program: rotating file + console, secrets redacted.

The redaction filter replaces every known secret value (and anything that looks like a
Bybit signature header or a Telegram bot-token URL) with `***` in the message, its arguments,
and the formatted exception text and traceback, before any handler writes the record.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["setup_logging", "RedactingFilter", "redact", "add_secrets"]

_LOG_FORMAT = "%(asctime)s %(levelname)-8s %(threadName)s %(name)s: %(message)s"

# Patterns that carry credentials whatever their value: signed headers and token URLs.
_PATTERNS = [
    re.compile(r"(X-BAPI-(?:API-KEY|SIGN)['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+", re.IGNORECASE),
    re.compile(r"(api_key['\"]?\s*[:=]\s*['\"]?)[^'\",\s}&]+", re.IGNORECASE),
    re.compile(r"(api_secret['\"]?\s*[:=]\s*['\"]?)[^'\",\s}&]+", re.IGNORECASE),
    re.compile(r"(/bot)\d{5,}:[A-Za-z0-9_-]{20,}"),  # Telegram https://api.telegram.org/bot<token>/
    re.compile(r"(Authorization['\"]?\s*[:=]\s*['\"]?Bearer\s+)[^'\",\s}]+", re.IGNORECASE),
]

_SECRETS: set[str] = set()


def add_secrets(values: Iterable[str]) -> None:
    """Register secret values to redact from every log line (keys, secrets, tokens)."""
    for v in values:
        if v and len(v) >= 4:
            _SECRETS.add(v)


def redact(text: str) -> str:
    """`text` with every registered secret and credential pattern replaced by ***."""
    if not text:
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    for pat in _PATTERNS:
        text = pat.sub(lambda m: m.group(1) + "***", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record so that no secret survives into any handler's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string must not drop the record
            msg = str(record.msg)
        record.msg = redact(msg)
        record.args = None
        if record.exc_info:
            # Format the traceback now, redacted, and drop exc_info so no handler re-formats it raw.
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class OneLineFormatter(logging.Formatter):
    """The console's format when there is a log file: an error is its one line there, its
    traceback goes to the log file only (a person reads the line, a developer the file)."""

    def format(self, record: logging.LogRecord) -> str:
        kept = record.exc_text
        record.exc_text = None
        try:
            text = super().format(record)
        finally:
            record.exc_text = kept
        return text + ("  (details in the log file)" if kept else "")


def setup_logging(*, log_file: str | Path | None, level: str = "INFO", secrets: Iterable[str] = (),
                  max_bytes: int = 5_000_000, backup_count: int = 5, console: bool = True) -> logging.Logger:
    """Configure the root logger once: rotating file + console, both behind the redaction filter.

    Calling it again replaces the handlers it installed before (tests, restarts).
    """
    add_secrets(secrets)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_bot_handler", False):
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    fmt = logging.Formatter(_LOG_FORMAT)
    handlers: list[logging.Handler] = []
    if log_file:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes,
                                                             backupCount=backup_count, encoding="utf-8"))
    if console:
        handlers.append(logging.StreamHandler(sys.stderr))
    for h in handlers:
        h._bot_handler = True  # type: ignore[attr-defined]
        console_with_file = log_file and isinstance(h, logging.StreamHandler) and \
            not isinstance(h, logging.FileHandler)
        h.setFormatter(OneLineFormatter(_LOG_FORMAT) if console_with_file else fmt)
        h.addFilter(RedactingFilter())
        root.addHandler(h)
    # Third-party loggers that echo requests (with headers) stay quiet unless we debug.
    for noisy in ("urllib3", "httpx", "httpcore", "telegram", "pybit", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING)
                                          if isinstance(logging.getLevelName(level), int) else logging.WARNING)
    return root


def install_filter_on(handler: logging.Handler) -> logging.Handler:
    """Put the redaction filter on a handler added later (e.g. the UI's log panel)."""
    handler.addFilter(RedactingFilter())
    return handler
