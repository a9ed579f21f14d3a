"""What the paper exchange side of a backtest costs: per candle and per order, next to the engine's
own do-nothing candle measured in the same run.

Parts wired as `build_components` wires a backtest: `SimExchange` (no wallet file, no order delay),
`MemoryJournal`, `TradeExecutor`, the engine's `Broker` and `RiskManager`, on the real BTC hourly
seed candles. Timed in thread CPU time (the machine's other processes disturb it less than wall
time), best of --repeat:

- per candle, nothing open and with a position open (stop and take-profit set, not hit): the
  calls the engine step and the backtester make on every candle (`Broker.on_candle`,
  `get_balance`, `get_positions`, `RiskManager.check_limits`, `equity`, `direction`);
- per order: the risk manager's verdict on the entry, then the order through the executor
  (client order id journaled first, the exchange's fill, the ledger, the outcome journaled, the
  trade event) and the close the same way, one candle later; in microseconds per order;
- the peer: one candle of `engine_backtest` with a strategy that never trades (the engine floor).

    .venv/bin/python bench/exchange_path.py [--candles 4000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.engine.components import Broker  # noqa: E402
from bot.events import EventBus  # noqa: E402
from bot.exchange.executor import TradeExecutor  # noqa: E402
from bot.exchange.sim import SimExchange  # noqa: E402
from bot.journal.base import MemoryJournal  # noqa: E402
from bot.market.seed import load_seed  # noqa: E402
from bot.research.backtest import engine_backtest  # noqa: E402
from bot.safety.risk import RiskManager  # noqa: E402
from bot.strategies.base import FLAT, Decision, Strategy, StrategyContext  # noqa: E402
from bot.types import Candle  # noqa: E402
from config import load_settings  # noqa: E402


class _Hold(Strategy):
    name = "hold"

    def decide(self, ctx: StrategyContext) -> Decision:
        return Decision(FLAT)


def _best(run: Callable[[], float], repeat: int) -> float:
    return min(run() for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    settings = load_settings(None, environ={}, SIMULATION_ORDER_DELAY=0.0)
    frame = load_seed("BTCUSDT", "60").iloc[-args.candles:]
    rows = frame[["open", "high", "low", "close", "volume", "turnover"]].to_numpy().tolist()
    candles = [Candle("BTCUSDT", "60", int(t), *r) for t, r in zip(frame.index.tolist(), rows, strict=True)]
    now = [0.0]

    def parts() -> tuple[SimExchange, Broker, RiskManager]:
        sim = SimExchange(settings, clock=lambda: now[0], keep_closed=None)
        journal, bus = MemoryJournal(), EventBus()
        broker = Broker(sim, TradeExecutor(sim, journal, settings=settings, bus=bus))
        return sim, broker, RiskManager(settings, sizer=broker.size_for, journal=journal, bus=bus)

    def per_candle(with_position: bool) -> float:
        sim, broker, risk = parts()
        now[0] = candles[0].close_ms / 1000
        broker.on_candle(candles[0])
        if with_position:   # stops far outside the seed's range: the position stays open
            ok, why, _ = broker.open("BTCUSDT", "long", 10.0, stop_loss=1.0, take_profit=1e7, reason="signal")
            assert ok, why
        t = time.thread_time()
        for c in candles[1:]:
            for _f in broker.on_candle(c):
                pass
            bal = sim.get_balance()
            sim.get_positions()
            risk.check_limits(bal.equity, c.close_ms)
            sim.equity()
            sim.direction("BTCUSDT")
        return (time.thread_time() - t) / (len(candles) - 1) * 1e6

    def per_order() -> float:
        sim, broker, risk = parts()
        orders, spent = 0, 0.0
        for i, c in enumerate(candles):
            now[0] = c.close_ms / 1000
            broker.on_candle(c)
            t = time.thread_time()
            if i % 2 == 0:
                v = risk.evaluate_entry(symbol="BTCUSDT", side="long", price=c.close, atr=c.close * 0.01,
                                        equity=sim.get_balance().equity, positions=sim.get_positions(),
                                        regime="trending", atr_median=c.close * 0.01, time_ms=c.close_ms)
                ok, why, _ = broker.open("BTCUSDT", "long", v.notional, stop_loss=v.stop_loss,
                                         take_profit=v.take_profit, reason="signal")
            elif sim.direction("BTCUSDT"):
                ok, why, _ = broker.close("BTCUSDT", reason="signal")
            else:
                continue    # its stop or take-profit closed it inside the candle
            spent += time.thread_time() - t
            assert ok, why
            orders += 1
        return spent / orders * 1e6

    per_candle_flat = _best(lambda: per_candle(False), args.repeat)
    per_candle_open = _best(lambda: per_candle(True), args.repeat)
    order = _best(per_order, args.repeat)

    def floor() -> float:
        t = time.thread_time()
        engine_backtest(settings, _Hold(), frame, start=min(1000, len(frame) // 2))
        return (time.thread_time() - t) / len(frame) * 1e6

    engine = _best(floor, args.repeat)
    print(f"command: .venv/bin/python bench/exchange_path.py --candles {args.candles} --repeat {args.repeat}   "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; thread CPU time, best of {args.repeat})")
    print(f"peer: the engine's do-nothing candle (engine_backtest, a strategy that never trades): {engine:.2f} us")
    print(f"exchange side per candle, nothing open:   {per_candle_flat:.2f} us ({per_candle_flat / engine:.1%} of it)")
    print(f"exchange side per candle, position open:  {per_candle_open:.2f} us ({per_candle_open / engine:.1%} of it)")
    print(f"per order (risk verdict, executor, journal, fill, ledger, event): {order:.1f} us "
          f"(= {order / engine:.1f} do-nothing engine candles)")


if __name__ == "__main__":
    main()
