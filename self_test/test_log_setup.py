"""Logging: one setup, rotating file + console, and no secret in any log line (sentinel test)."""

from __future__ import annotations

import logging

import pytest

from bot.log_setup import redact, setup_logging

SENTINEL_KEY = "SENTINELKEY-9f8e7d6c5b"
SENTINEL_SECRET = "SENTINELSECRET-0a1b2c3d4e"
SENTINEL_TOKEN = "123456789:AAF-sentinelTOKENvalue_abcdefghijk"


@pytest.fixture(autouse=True)
def _remove_bot_handlers():
    """Handlers installed here point at this test's tmp dir and captured stderr: drop them after."""
    yield
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_bot_handler", False):
            root.removeHandler(h)
            h.close()


def test_secrets_never_reach_file_or_console(tmp_path, capsys):
    log_file = tmp_path / "logs" / "bot.log"
    setup_logging(log_file=log_file, level="DEBUG", secrets=[SENTINEL_KEY, SENTINEL_SECRET, SENTINEL_TOKEN])
    log = logging.getLogger("bot.test")
    log.info("placing order with key %s", SENTINEL_KEY)
    log.warning("headers: {'X-BAPI-API-KEY': '%s', 'X-BAPI-SIGN': 'abcdef0123'}", SENTINEL_KEY)
    try:
        raise RuntimeError(f"auth failed for secret={SENTINEL_SECRET}")
    except RuntimeError:
        log.exception("request failed")

    def nested(token: str) -> None:
        raise ValueError(f"POST https://api.telegram.org/bot{token}/sendMessage failed")

    try:
        nested(SENTINEL_TOKEN)
    except ValueError:
        log.error("telegram down", exc_info=True)
    for h in logging.getLogger().handlers:
        h.flush()
    text = log_file.read_text() + capsys.readouterr().err
    assert "request failed" in text and "Traceback" in text and "RuntimeError" in text
    for s in (SENTINEL_KEY, SENTINEL_SECRET, SENTINEL_TOKEN, "abcdef0123"):
        assert s not in text, f"secret {s[:8]}... leaked into the log"
    assert text.count("***") >= 4


def test_redact_patterns_without_registered_values():
    assert "zzz" not in redact("api_key=zzz&api_secret=zzz")
    assert "987654321:AAAAAAAAAAAAAAAAAAAAAAAAAAAA" not in redact(
        "https://api.telegram.org/bot987654321:AAAAAAAAAAAAAAAAAAAAAAAAAAAA/getMe")


def test_file_rotates(tmp_path):
    log_file = tmp_path / "bot.log"
    setup_logging(log_file=log_file, level="INFO", max_bytes=10_000, backup_count=2, console=False)
    log = logging.getLogger("bot.rotate")
    for i in range(400):
        log.info("line %d %s", i, "x" * 60)
    for h in logging.getLogger().handlers:
        h.flush()
    assert (tmp_path / "bot.log.1").exists()
    assert log_file.stat().st_size <= 10_000
