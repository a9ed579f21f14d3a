"""A small headless bot for the crash-safety test: the real journal, recovery, executor and BybitExchange.

    python self_test/crash_driver.py long|flat SYMBOL USDT

Settings come from the environment like the real bot (HISTORICAL_DATA_PATH, BYBIT_BASE_URL,
BYBIT_API_KEY/SECRET, CRASH_AT). Each start does what `python -m bot live` does before trading:
open the journal (`Journal.for_settings`, which installs the CRASH_AT hook), `recover()`, then
move the symbol to the target with the executor (close, then open) and keep the journal's position
view in step, as the engine does. Prints a JSON line with what it did; exits 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> int:
    from bot.engine.recovery import recover
    from bot.events import EventBus
    from bot.exchange.bybit import BybitExchange
    from bot.exchange.executor import TradeExecutor
    from bot.journal.store import Journal
    from bot.log_setup import setup_logging
    from config import load_settings

    target_name, symbol, usdt = argv[0], argv[1], float(argv[2])
    target = {"long": 1, "flat": 0, "short": -1}[target_name]
    settings = load_settings(None)
    setup_logging(log_file=settings.log_path, level="INFO", secrets=settings.secret_values(), console=False)
    exchange = BybitExchange(settings, retries=3, retry_delay=0.05)
    journal = Journal.for_settings(settings)
    bus = EventBus()
    report = recover(settings, exchange=exchange, journal=journal, bus=bus, recheck_delay=0.2)
    executor = TradeExecutor(exchange, journal, settings=settings, bus=bus)
    price = exchange.get_price(symbol)
    stop = price * (1 - settings.STOP_LOSS_PCT) if target > 0 else price * (1 + settings.STOP_LOSS_PCT)
    results = []   # to the target: close what is there, then open the new side (never both at once)
    held = next((p.direction for p in exchange.get_positions() if p.symbol == symbol and p.size > 0), 0)
    if held not in (0, target):
        closed = executor.close_position(symbol, reason="signal")
        results.append(closed)
    if target not in (0, held) and all(r.ok for r in results):
        results.append(executor.open_position(symbol, "long" if target > 0 else "short", notional=usdt,
                                              stop_loss=stop))
    # The journal's view of positions follows each execution (the engine's TradeBook does this).
    for pos in exchange.get_positions():
        journal.upsert_position(pos, mode=exchange.mode)
    if not any(p.symbol == symbol for p in exchange.get_positions()):
        journal.remove_position(symbol, mode=exchange.mode)
    print(json.dumps({"recovered": [i.kind for i in report.items], "orders": [r.client_order_id for r in results],
                      "ok": all(r.ok for r in results)}))
    journal.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
