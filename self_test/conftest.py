"""Shared fixtures: settings in a temporary data folder, the real seed candles, the fake Bybit."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests never talk to anything but loopback: make sure no proxy reroutes 127.0.0.1.
os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ["no_proxy"] = "127.0.0.1,localhost"

from bot.market.seed import load_seed  # noqa: E402
from config import Settings, load_settings  # noqa: E402
from self_test.fakes.bybit_server import FakeBybit  # noqa: E402

FIXTURES = ROOT / "self_test" / "fixtures"


def make_settings(tmp_path: Path, environ: dict[str, str] | None = None, **overrides) -> Settings:
    """Settings isolated in `tmp_path`: no .env, no process environment, fast paper fills."""
    base = {"HISTORICAL_DATA_PATH": str(tmp_path / "data"), "LOG_FILE": str(tmp_path / "logs" / "bot.log"),
            "SIMULATION_ORDER_DELAY": 0.0}
    base.update(overrides)
    return load_settings(None, environ=environ or {}, **base)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def btc_hourly() -> pd.DataFrame:
    """The real Coinbase BTC-USD hourly candles shipped in historical_data/seed/."""
    return load_seed("BTCUSDT", "60")


@pytest.fixture(scope="session")
def btc_daily() -> pd.DataFrame:
    return load_seed("BTCUSDT", "D")


@pytest.fixture
def fake_bybit() -> Iterator[FakeBybit]:
    with FakeBybit() as fake:
        yield fake


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01,
             message: str = "condition") -> None:
    """Wait until `predicate()` is true, failing the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture(autouse=True)
def _reset_logger_levels() -> Iterator[None]:
    """CLI commands run in-process may quiet the `bot` logger or install handlers; no test
    inherits that."""
    import logging

    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("bot", "")}
    handlers = list(root.handlers)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    for h in list(root.handlers):  # handlers a test installed point at its tmp dir / captured stderr
        if h not in handlers and getattr(h, "_bot_handler", False):
            root.removeHandler(h)
            h.close()


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """Fail a test that leaves a non-daemon thread running (it would hang the suite)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
        if not extra:
            return
        time.sleep(0.05)
    raise AssertionError(f"test left non-daemon threads running: {[t.name for t in extra]}")
